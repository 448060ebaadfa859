"""Writing a prepared index into a PostgreSQL generation's tables (COPY)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np

from qa_service.core.corroboration import links_as_rows
from qa_service.core.passages import Passage
from qa_service.retrieval.analysis import WORD
from qa_service.retrieval.store import PreparedIndex


def write(connection, schema: str, prepared: PreparedIndex) -> None:
    """Copy every table of a prepared index into `schema`."""
    postings, vectors = prepared.postings, prepared.vectors
    sentence_rows = np.cumsum([0] + [len(p.sentences) for p in prepared.passages])
    with connection.cursor() as cursor:
        with cursor.copy(
            f'COPY {schema}.passages (position, id, source, start, "end", text, byte_start,'
            " byte_end, line_start, line_end, sentences, heading, terms, starts, ends, vector,"
            " sentence_vectors, links) FROM STDIN"
        ) as copy:
            for position, passage in enumerate(prepared.passages):
                terms, starts, ends = postings.token_columns(position)
                copy.write_row((
                    position, passage.id, passage.source, passage.start, passage.end,
                    passage.text, passage.byte_start, passage.byte_end, passage.line_start,
                    passage.line_end, [edge for span in passage.sentences for edge in span],
                    passage.heading,
                    terms, starts, ends,
                    vectors.vectors[vectors.position[position]].astype(np.float32).tobytes(),
                    prepared.sentence_vectors[
                        sentence_rows[position] : sentence_rows[position + 1]
                    ].astype(np.float32).tobytes(),
                    json.dumps(links_as_rows(prepared.links[position])),
                ))  # fmt: skip
        with cursor.copy(f"COPY {schema}.champions (term, position, score) FROM STDIN") as copy:
            for term in range(len(postings.vocabulary)):
                first, last = postings.champion_rows[term], postings.champion_rows[term + 1]
                for position, score in zip(
                    postings.champion_passages[first:last].tolist(),
                    postings.champion_scores[first:last].tolist(),
                    strict=True,
                ):
                    copy.write_row((term, position, score))
        with cursor.copy(f"COPY {schema}.terms (term, id, idf) FROM STDIN") as copy:
            for term_id, term in enumerate(postings.vocabulary):
                copy.write_row((term, term_id, float(postings.idf[term_id])))
        with cursor.copy(f"COPY {schema}.words (word, frequency) FROM STDIN") as copy:
            for word, frequency in _word_frequencies(prepared.passages).items():
                copy.write_row((word, frequency))
        with cursor.copy(
            f"COPY {schema}.sources (name, title, publisher, date, url, passages, text, ordinal,"
            " sha256) FROM STDIN"
        ) as copy:
            for ordinal, source in enumerate(prepared.sources):
                copy.write_row((
                    source["name"], source["title"], source["publisher"], source["date"],
                    source["url"], source["passages"], source["text"], ordinal, source["sha256"],
                ))  # fmt: skip
        # What a question's probe compares: the projected vectors when the passages are
        # clustered (a third of the bytes; the best are then compared whole), else the whole.
        compared = vectors.projected if vectors.projection.shape[1] else vectors.vectors
        clusters = f"COPY {schema}.clusters (cluster, positions, vectors) FROM STDIN"
        with cursor.copy(clusters) as copy:
            for cluster in range(len(vectors.cluster_rows) - 1):
                first, last = vectors.cluster_rows[cluster], vectors.cluster_rows[cluster + 1]
                copy.write_row((
                    cluster,
                    vectors.order[first:last].astype(np.int32).tobytes(),
                    compared[first:last].astype(np.float32).tobytes(),
                ))  # fmt: skip
        with cursor.copy(f"COPY {schema}.centres (cluster, vector) FROM STDIN") as copy:
            for cluster, centre in enumerate(vectors.centres):
                copy.write_row((cluster, centre.astype(np.float32).tobytes()))
        facts = {
            "passages": len(prepared.passages),
            "cluster_sizes": np.diff(vectors.cluster_rows).tolist(),
            "projection": vectors.projection.astype(np.float32).tolist(),
            "mean_length": float(postings.mean_length),
            "boilerplate": sorted(prepared.boilerplate),
        }
        for key, value in facts.items():
            cursor.execute(
                f"INSERT INTO {schema}.facts (key, value) VALUES (%s, %s)", (key, json.dumps(value))
            )


def _word_frequencies(passages: Sequence[Passage]) -> dict[str, float]:
    """Every word as written (lower-cased), with how often the passages use it."""
    counts: dict[str, float] = {}
    for passage in passages:
        for word in WORD.findall(passage.text.lower()):
            counts[word] = counts.get(word, 0.0) + 1.0
    return counts
