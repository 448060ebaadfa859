"""Building an index from a folder of articles, as a new generation of an engine.

The build is the same for every engine: read the articles, split them into
passages, analyse their terms (retrieval/analysis.py), lay out postings and
vectors, link passages that state the same facts; then the engine writes the
result as a new generation and swaps it in (a `retrieval.store.Engine`, from
the registry in engines/__init__.py).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np

from qa_service.core.corpus import Article, read_corpus
from qa_service.core.corroboration import link_passages
from qa_service.core.furniture import furniture_lines
from qa_service.core.passages import Passage, split_passages
from qa_service.core.tables import header_of_row
from qa_service.engines import engine_for, layered
from qa_service.engines.generations import INDEX_FORMAT
from qa_service.index import kept
from qa_service.retrieval.analysis import ANALYSIS_VERSION, passage_tokens
from qa_service.retrieval.nearest import build_vector_index
from qa_service.retrieval.postings import build_postings
from qa_service.retrieval.semantic import DIMENSIONS, model_id
from qa_service.retrieval.store import Engine, IndexUnavailable, Layer, PassageStore, PreparedIndex

# A write layers the articles that differ from the last full build over it while they
# hold at most this share of its passages: beyond, the layer's cost (it is prepared
# again at each write) nears a full build's, and the base's statistics grow stale.
LAYER_SHARE = 0.1
# The modules whose code decides what an index holds, by package path: any change
# to them (a constant of the splitter, of corroboration, of the champion lists, of
# an engine's writer) is a new content hash, so a build never reports "unchanged"
# over an index they would now build differently. tests/test_index.py checks that
# every engine's writer is listed.
CONTENT_MODULES = (
    "qa_service.core.corpus",
    "qa_service.core.corroboration",
    "qa_service.core.furniture",
    "qa_service.core.layout",
    "qa_service.core.passages",
    "qa_service.core.sentences",
    "qa_service.core.tables",
    "qa_service.retrieval.analysis",
    "qa_service.retrieval.nearest",
    "qa_service.retrieval.postings",
    "qa_service.retrieval.semantic",
    "qa_service.engines.layered",
    "qa_service.engines.whoosh.write",
    "qa_service.engines.postgres.schema",
    "qa_service.engines.postgres.write",
    "qa_service.index.build",
)


@dataclass(frozen=True)
class BuildReport:
    """What `build_index` did."""

    generation: str
    built: bool
    articles: int
    passages: int


def build_index(
    seeds_dir: Path | str, index: Engine | Path | str, *, force: bool = False
) -> BuildReport:
    """Index the articles of `seeds_dir` into a new generation and make it current.

    `index` is an engine, or the folder of a Whoosh index. Does nothing when the
    articles and the code that indexes them are unchanged since the current
    generation, unless `force`. A failed build leaves the current generation
    untouched.
    """
    engine = engine_for(index)
    articles = _articles(seeds_dir)
    content_hash = corpus_hash(articles)
    # Checked before taking the lock: an unchanged index needs no write, so a
    # read-only index folder (a container's baked index) can be "built" at start.
    seen = engine.current_name()
    if not force and (unchanged := engine.unchanged(content_hash)):
        return BuildReport(unchanged[0], False, len(articles), unchanged[1])
    with engine.build_lock():
        # Again only if another build swapped in a generation while this one waited.
        if (
            not force
            and engine.current_name() != seen
            and (unchanged := engine.unchanged(content_hash))
        ):
            return BuildReport(unchanged[0], False, len(articles), unchanged[1])
        prepared = prepare(articles, engine.kept_dir)
        name = engine.publish(prepared, content_hash)
    return BuildReport(name, True, len(articles), len(prepared.passages))


def update_index(
    seeds_dir: Path | str,
    index: Engine | Path | str,
    current: PassageStore | None = None,
    *,
    layer_share: float = LAYER_SHARE,
) -> BuildReport:
    """Index the articles of `seeds_dir` after a write, in seconds when few changed.

    The articles that differ from the last full build become a layer over it
    (layered.py) while the layer holds at most `layer_share` of that build's
    passages (and hides at most as many); beyond, everything is built again,
    which makes the statistics exact. `current` is the generation this process
    has open: its base is used as it is in memory. As `build_index` otherwise.
    """
    engine = engine_for(index)
    articles = _articles(seeds_dir)
    content_hash = corpus_hash(articles)
    with engine.build_lock():
        if unchanged := engine.unchanged(content_hash):
            return BuildReport(unchanged[0], False, len(articles), unchanged[1])
        if current is None or current.info.name != engine.current_name():
            with contextlib.suppress(IndexUnavailable):
                # Only to lay a layer over: a write's builder reads no more of it.
                current = engine.open(reuse=current, whole=False)
        base = layered.full_build_of(current)
        prepared = None
        if base is not None:
            # The folder's furniture, as a full build of it finds it.
            furniture = kept.furniture((article.text for article in articles), engine.kept_dir)
            changed, hidden = layered.changed_articles(articles, base, furniture)
            room = layer_share * base.info.passage_count
            # (An empty layer is the base again: a write undone by the next one.)
            if layered.hidden_passages(hidden) <= room:
                prepared = prepare_layer(
                    changed, base, hidden, furniture, engine.kept_dir, max_passages=room
                )
        if prepared is None:
            prepared = prepare(articles, engine.kept_dir)
            name = engine.publish(prepared, content_hash)
            return BuildReport(name, True, len(articles), len(prepared.passages))
        name = engine.publish(prepared, content_hash, Layer(base.info.name, hidden))
    served = layered.served_passages(base.info.passage_count, hidden, len(prepared.passages))
    return BuildReport(name, True, len(articles), served)


def _articles(seeds_dir: Path | str) -> list[Article]:
    articles = read_corpus(seeds_dir)
    if not articles:
        raise ValueError(f"no readable .txt or .md articles in {seeds_dir}")
    return articles


def indexable(seeds_dir: Path | str) -> bool:
    """Whether a build of `seeds_dir` would find passages to index (split only: no encoding)."""
    articles = read_corpus(seeds_dir)
    boilerplate = furniture_lines(article.text for article in articles)
    return any(split_passages(a.text, a.name, boilerplate=boilerplate) for a in articles)


def prepare(articles: list[Article], kept_dir: Path | None = None) -> PreparedIndex:
    """Everything an index holds, computed from the articles, for an engine to write;
    texts encoded before are taken from `kept_dir` (index/kept.py)."""
    # Lines shared by articles that otherwise differ are the sites' furniture, not their text.
    boilerplate = kept.furniture((article.text for article in articles), kept_dir)
    sources, passages = _split(articles, boilerplate)
    tokens = [passage_tokens(passage) for passage in passages]
    postings = build_postings(tokens)
    fallback = math.log(len(passages)) + 1
    links = link_passages(passages, tokens, lambda term: postings.idf_of(term, fallback))
    vectors, sentence_vectors = _embeddings(passages, articles, kept_dir, kept.FULL)
    return PreparedIndex(sources, passages, postings, links, vectors, sentence_vectors, boilerplate)


def prepare_layer(
    articles: list[Article],
    base: PassageStore,
    hidden: Mapping[str, tuple[int, int]],
    boilerplate: frozenset[str],
    kept_dir: Path | None = None,
    *,
    max_passages: float = math.inf,
) -> PreparedIndex | None:
    """What a layer over `base` holds (layered.py): `articles`, split with `boilerplate`
    (the whole corpus's furniture), scored and linked as part of the whole corpus, where
    `hidden` are the base's articles no longer in it; None when the articles make more
    than `max_passages` passages."""
    sources, passages = _split(articles, boilerplate, empty_ok=True)
    if len(passages) > max_passages:
        return None
    tokens = [passage_tokens(passage) for passage in passages]
    # The base's idf of the layer's terms, read once (for their BM25 over the whole corpus
    # and for the links); the linked base passages' other terms as they come.
    in_base = base.terms(list(dict.fromkeys(t.term for each in tokens for t in each))).idf
    postings = build_postings(tokens, surroundings=layered.surroundings(base, in_base))
    shift = layered.idf_shift(base.info.passage_count, len(passages))

    def idf(term: str) -> float:
        if term not in in_base:
            in_base.update(base.terms([term]).idf)
        return postings.idf_of(term, in_base[term] + shift)

    links = layered.layer_links(passages, tokens, idf, base, hidden)
    vectors, sentence_vectors = _embeddings(passages, articles, kept_dir, kept.LAYER)
    return PreparedIndex(sources, passages, postings, links, vectors, sentence_vectors, boilerplate)


def _split(
    articles: list[Article], boilerplate: frozenset[str], *, empty_ok: bool = False
) -> tuple[list[dict], list[Passage]]:
    """The articles as sources (metadata and text) and their passages, in order."""
    passages: list[Passage] = []
    sources = []
    for article in articles:
        article_passages = split_passages(article.text, article.name, boilerplate=boilerplate)
        passages.extend(article_passages)
        sources.append(
            {
                "name": article.name,
                "title": article.title,
                "publisher": article.publisher,
                "date": article.date,
                "url": article.url,
                "passages": len(article_passages),
                "sha256": article.sha256,
                "text": article.text,
            }
        )
    if not passages and not empty_ok:
        raise ValueError("no sentence in the articles to index")
    return sources, passages


def _embeddings(passages: list[Passage], articles: list[Article], kept_dir: Path | None, part: str):
    """The vector index of the passages and the vectors of their sentences, in turn."""
    meant = _as_meant(passages, {article.name: article.text for article in articles})
    sentences = [
        meant[i] if len(p.sentences) == 1 else p.text[s - p.start : e - p.start]
        for i, p in enumerate(passages)
        for s, e in p.sentences
    ]
    # Most passages are one sentence, and documentation repeats itself: each
    # distinct text is encoded once (the encoder is most of a build's time).
    texts = list(dict.fromkeys([*meant, *sentences]))
    if not texts:  # a layer that only hides articles
        empty = np.zeros((0, DIMENSIONS), dtype=np.float32)
        return build_vector_index(empty), empty
    row = {text: i for i, text in enumerate(texts)}
    vectors = kept.encode_texts(texts, kept_dir, part)
    return (
        build_vector_index(vectors[[row[text] for text in meant]]),
        vectors[[row[text] for text in sentences]],
    )


def _as_meant(passages: list[Passage], texts: Mapping[str, str]) -> list[str]:
    """Each passage's text as its meaning is encoded: a table's row under its header
    ("Released 2022-10-24" says more than "2022-10-24"), any other passage as it is."""
    meant = []
    for passage in passages:
        text = texts[passage.source]
        header = header_of_row(text, passage.start)
        meant.append(
            f"{text[header.start : header.end]}\n{passage.text}" if header else passage.text
        )
    return meant


def corpus_hash(articles: list[Article]) -> str:
    """Fingerprint of everything that decides the index's content."""
    digest = hashlib.sha256(
        f"format={INDEX_FORMAT};{ANALYSIS_VERSION};model={model_id()};"
        f"numpy={version('numpy')};code={_code_digest()}".encode()
    )
    for article in articles:
        meta = (article.name, article.sha256, article.title, article.publisher, article.date)
        digest.update(json.dumps([*meta, article.url]).encode())
    return digest.hexdigest()


@functools.cache
def _code_digest() -> str:
    digest = hashlib.sha256()
    for name in CONTENT_MODULES:
        # The source as found, not imported: the PostgreSQL writer needs a driver to import.
        digest.update(Path(importlib.util.find_spec(name).origin).read_bytes())
    return digest.hexdigest()
