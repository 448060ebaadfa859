"""Writing a prepared index into a Whoosh generation's folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from whoosh import index as whoosh_index
from whoosh.analysis import RegexTokenizer
from whoosh.fields import ID, TEXT, Schema

from qa_service.core.corroboration import links_as_rows
from qa_service.core.passages import Passage
from qa_service.retrieval.analysis import WORDS_ANALYZER
from qa_service.retrieval.semantic import write_encoder
from qa_service.retrieval.store import PreparedIndex

LINKS = "links.json"
SENTENCE_VECTORS = "sentence-vectors.npy"
BOILERPLATE = "boilerplate.json"
SORT_BUFFER_MB = 512

# The build has analysed every passage already (retrieval/analysis.py): Whoosh indexes
# those terms, one per line (a term is a word's stem, never a line break). Searches are
# by terms, never phrases: no positions.
_TERMS = "\n"
SCHEMA = Schema(
    id=ID(stored=True, unique=True),
    source=ID(stored=True),
    text=TEXT(analyzer=RegexTokenizer(f"[^{_TERMS}]+"), phrase=False),
    words=TEXT(analyzer=WORDS_ANALYZER, phrase=False),
)
# Where each passage stands in its source, as arrays (a passage's text is its source's
# text between its offsets): read back in one step when a generation opens.
PASSAGES = "passages.npz"


def write(folder: Path, prepared: PreparedIndex, *, encoder: bool = True) -> None:
    """Write a prepared index into `folder`: the Whoosh index, then what the build computed
    (and the encoder the vectors came from, unless told not to)."""
    ix = whoosh_index.create_in(str(folder), SCHEMA)
    vocabulary = np.array(prepared.postings.vocabulary, dtype=object)
    token_rows = prepared.postings.token_rows
    # In position order: one writer, one segment, so Whoosh's document numbers are positions.
    # The writer commits on success and cancels if anything raises; its sort buffer is
    # large enough for a large corpus's postings in memory (no runs merged from disk).
    with ix.writer(limitmb=SORT_BUFFER_MB) as writer:
        for position, passage in enumerate(prepared.passages):
            terms = prepared.postings.token_terms[token_rows[position] : token_rows[position + 1]]
            writer.add_document(
                id=passage.id,
                source=passage.source,
                text=_TERMS.join(vocabulary[terms]),
                words=passage.text,
            )
    _save_passages(folder, prepared.passages)
    prepared.postings.save(folder)
    rows = [links_as_rows(passage_links) for passage_links in prepared.links]
    (folder / LINKS).write_text(json.dumps(rows), encoding="utf-8")
    prepared.vectors.save(folder)
    np.save(folder / SENTENCE_VECTORS, prepared.sentence_vectors)
    (folder / BOILERPLATE).write_text(json.dumps(sorted(prepared.boilerplate)), encoding="utf-8")
    if encoder:
        write_encoder(folder)


def _save_passages(folder: Path, passages: list[Passage]) -> None:
    names = list(dict.fromkeys(passage.source for passage in passages))
    number = {name: i for i, name in enumerate(names)}
    column = {
        name: np.array([getattr(passage, name) for passage in passages], dtype=np.int64)
        for name in ("start", "end", "byte_start", "byte_end", "line_start", "line_end")
    }
    spans = [span for passage in passages for span in passage.sentences]
    np.savez(
        folder / PASSAGES,
        names=np.array(names, dtype=str),
        source=np.array([number[passage.source] for passage in passages], dtype=np.int64),
        heading=np.array([passage.heading for passage in passages], dtype=bool),
        sentence_rows=np.cumsum([0] + [len(passage.sentences) for passage in passages]),
        sentence_spans=np.array(spans, dtype=np.int64).reshape(-1, 2),
        **column,
    )
