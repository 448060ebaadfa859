"""A PostgreSQL generation, opened: rows read per question, through bounded caches.

A question reads its terms' champion lists, its candidates' rows and the
vectors of the clusters it probes; each call of the store protocol is one to
three round trips, whatever the number of candidates.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

import numpy as np

from qa_service.core.corroboration import links_from_rows
from qa_service.core.passages import Passage, Token
from qa_service.retrieval.nearest import best, probe, shortlist
from qa_service.retrieval.postings import bm25, stored_length
from qa_service.retrieval.semantic import DIMENSIONS, MODEL_DIR, SentenceEncoder
from qa_service.retrieval.store import (
    CandidateFeatures,
    Candidates,
    GenerationInfo,
    IndexUnavailable,
    Query,
    Terms,
    similarity_beside,
    with_neighbours,
)

from .cache import BoundedCache
from .reader import Reader
from .schema import integer_array, schema_of, storable
from .sources import Sources

# Bytes kept per worker between questions, least recently used first out: passage
# rows, the vectors of probed clusters, article texts, and terms.
CACHED_PASSAGE_BYTES = 32 << 20
CACHED_VECTOR_BYTES = 64 << 20
CACHED_WHOLE_VECTOR_BYTES = 32 << 20
CACHED_SOURCE_BYTES = 32 << 20
CACHED_TERM_BYTES = 8 << 20


def _row_bytes(row: dict) -> int:
    """About what a cached passage row holds, in bytes."""
    terms = len(row["columns"][0])
    return (
        sys.getsizeof(row["passage"].text)
        + 3 * 36 * terms + sys.getsizeof(row["links"])
    )  # fmt: skip


class PostgresGeneration:
    """One generation in the database (a `store.PassageStore`); rows are read when asked for."""

    def __init__(self, name: str, url: str, encoder: SentenceEncoder | None = None):
        self._schema = schema_of(name)
        self._reader = Reader(url, self._schema)
        self._query, self._damaged = self._reader.query, self._reader.damaged
        facts = dict(self._query(f"SELECT key, value FROM {self._schema}.facts"))
        self.info = GenerationInfo(
            name=name,
            passage_count=int(facts["passages"]),
            mean_length=float(facts["mean_length"]),
            boilerplate=frozenset(facts["boilerplate"]),
            encoder=encoder or SentenceEncoder(MODEL_DIR),
        )
        centres = self._query(f"SELECT vector FROM {self._schema}.centres ORDER BY cluster")
        self._centres = np.array(
            [np.frombuffer(row[0], dtype=np.float32) for row in centres], dtype=np.float32
        ).reshape(len(centres), DIMENSIONS)
        self._cluster_sizes = np.array(facts["cluster_sizes"], dtype=np.int64)
        # The clusters hold the passages' vectors projected on these directions (no
        # columns: the whole vectors, compared exactly).
        projection = facts.get("projection", [])  # none in generations of earlier versions
        self._projection = np.array(projection, dtype=np.float32).reshape(DIMENSIONS, -1)
        self._rows = BoundedCache(CACHED_PASSAGE_BYTES, _row_bytes)
        self._cluster_vectors = BoundedCache(
            CACHED_VECTOR_BYTES, lambda pair: pair[0].nbytes + pair[1].nbytes
        )
        # Passages' sources and whole vectors: what the nearest's shortlist and the passages
        # beside a candidate need of a row, without its text, terms and sentences.
        self._vectors = BoundedCache(
            CACHED_WHOLE_VECTOR_BYTES, lambda pair: sys.getsizeof(pair[0]) + pair[1].nbytes + 64
        )
        self.sources = Sources(self._reader, CACHED_SOURCE_BYTES)
        # Terms by name (None: no passage holds it) and by id, each as (id or name, idf).
        self._term_by_name = BoundedCache(CACHED_TERM_BYTES, lambda entry: 64)
        self._term_by_id = BoundedCache(
            CACHED_TERM_BYTES, lambda entry: sys.getsizeof(entry[0]) + 64
        )

    def _rows_of(self, positions: Sequence[int]) -> dict[int, dict]:
        """The rows of these passages: cached, and the others read in one query."""
        found = self._rows.recall_many(positions)
        wanted = [p for p in dict.fromkeys(positions) if p not in found]
        if not wanted:
            return found
        rows = self._passage_rows(
            'position, id, source, start, "end", text, byte_start, byte_end, line_start,'
            " line_end, sentences, heading, terms, starts, ends, links",
            wanted,
        )
        for row in rows:
            position, _, source, start, end, text, *located = row[:10]
            sentences, heading, terms, starts, ends, links = row[10:]
            passage = Passage(
                source=source, start=start, end=end, text=text, byte_start=located[0],
                byte_end=located[1], line_start=located[2], line_end=located[3],
                sentences=tuple(zip(sentences[::2], sentences[1::2], strict=True)),
                heading=heading,
            )  # fmt: skip
            found[position] = self._rows.remember(
                position,
                {
                    "passage": passage,
                    "columns": (terms, starts, ends),
                    # JSON, read when the passage is ranked (most candidates never are).
                    "links": links,
                },
            )
        missing = [p for p in wanted if p not in found]
        if missing:
            raise self._damaged(f"no passage at positions {missing[:5]}")
        return found

    def _passage_rows(self, columns: str, positions: list[int]) -> list[tuple]:
        """These columns of the passages at these positions."""
        sql = f"SELECT {columns} FROM {{table}} WHERE position = ANY(%s::integer[])"
        return self._reader.on_parts("passages", sql, (integer_array(positions),))

    def _terms_by_name(self, terms: Sequence[str]) -> dict[str, tuple[int, float]]:
        """Id and idf of each term some passage holds: cached, the others read in one query."""
        found, missing = {}, []
        for term in dict.fromkeys(terms):
            if term in self._term_by_name:
                if (cached := self._term_by_name.recall(term)) is not None:
                    found[term] = cached
            elif storable(term):
                missing.append(term)
        if missing:
            rows = self._query(
                f"SELECT term, id, idf FROM {self._schema}.terms WHERE term = ANY(%s)", (missing,)
            )
            read = {term: (term_id, idf) for term, term_id, idf in rows}
            for term in missing:
                if (entry := self._term_by_name.remember(term, read.get(term))) is not None:
                    found[term] = entry
        return found

    def _terms_by_id(self, term_ids: Sequence[int]) -> dict[int, tuple[str, float]]:
        """Term and idf of each id: cached (a bounded number), the others read in one query."""
        found = self._term_by_id.recall_many(term_ids)
        missing = sorted(set(term_ids) - found.keys())
        if missing:
            rows = self._query(
                f"SELECT id, term, idf FROM {self._schema}.terms WHERE id = ANY(%s::integer[])",
                (integer_array(missing),),
            )
            for term_id, term, idf in rows:
                found[term_id] = self._term_by_id.remember(term_id, (term, idf))
        return found

    def terms(self, terms: Sequence[str]) -> Terms:
        """The idf and ids of analysed terms; a term the corpus lacks weighs most."""
        found = self._terms_by_name(terms)
        return Terms(
            idf={term: found[term][1] if term in found else self.info.max_idf for term in terms},
            ids={found[term][0]: term for term in terms if term in found},
        )

    def candidates(self, query: Query, limit: int) -> Candidates:
        """The best passages by BM25 (champion lists; within sources, every posting) and the
        nearest by meaning (the probed clusters)."""
        found = self._terms_by_name(query.terms)
        by_words = self._best_passages(dict(found.values()), limit, query.sources)
        if query.vector is None:
            return Candidates(by_words, [])
        return Candidates(by_words, self._nearest(query.vector, limit, query.sources))

    def _best_passages(
        self, ids: dict[int, float], limit: int, sources: Sequence[str] | None
    ) -> dict[int, float]:
        """Up to `limit` passages by BM25 over the terms with these ids (and idf)."""
        if not ids:
            return {}
        if not sources:
            # Each shard holds all of a passage's champion entries (both are partitioned by
            # position), so the best of each shard's best are the best.
            rows = self._reader.on_parts(
                "champions",
                "SELECT position, sum(score) AS total FROM {table}"
                " WHERE term = ANY(%s::integer[])"
                " GROUP BY position ORDER BY total DESC, position LIMIT %s",
                (integer_array(ids), limit),
            )
            return dict(sorted(rows, key=lambda row: (-row[1], row[0]))[:limit])
        rows = self._reader.on_parts(
            "passages",
            "SELECT position, terms FROM {table} WHERE source = ANY(%s) AND terms && %s::integer[]",
            (list(sources), integer_array(ids)),
        )
        scores = {}
        for position, passage_terms in rows:
            length = stored_length(len(passage_terms)) / self.info.mean_length
            scores[position] = sum(
                bm25(idf, frequency, length)
                for term, idf in ids.items()
                if (frequency := passage_terms.count(term))
            )
        best = sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:limit]
        return dict(best)

    def _vectors_of_clusters(self, clusters: Sequence[int]) -> list[tuple[np.ndarray, np.ndarray]]:
        """The positions and compared vectors of the passages of each of these clusters:
        cached, or read."""
        found = self._cluster_vectors.recall_many(clusters)
        missing = [cluster for cluster in clusters if cluster not in found]
        if missing:
            rows = self._reader.on_parts(
                "clusters",
                "SELECT cluster, positions, vectors FROM {table}"
                " WHERE cluster = ANY(%s::integer[])",
                (integer_array(missing),),
            )
            width = self._projection.shape[1] or DIMENSIONS
            for cluster, positions, vectors in rows:
                found[cluster] = self._cluster_vectors.remember(
                    cluster,
                    (
                        np.frombuffer(positions, dtype=np.int32).astype(np.int64),
                        np.frombuffer(vectors, dtype=np.float32).reshape(-1, width),
                    ),
                )
        return [found[cluster] for cluster in clusters]

    def _nearest(self, vector: np.ndarray, limit: int, sources: Sequence[str] | None) -> list[int]:
        """The positions of up to `limit` passages nearest in meaning, best first."""
        clusters = probe(self._centres, self._cluster_sizes, vector) if len(self._centres) else [0]
        parts = self._vectors_of_clusters(clusters)
        compared = vector @ self._projection if self._projection.shape[1] else vector
        positions = np.concatenate([part[0] for part in parts])
        similarity = np.concatenate([part[1] @ compared for part in parts])
        if sources:
            allowed = {
                row[0]
                for row in self._reader.on_parts(
                    "passages",
                    "SELECT position FROM {table} WHERE source = ANY(%s)",
                    (list(sources),),
                )
            }
            keep = np.array([p in allowed for p in positions.tolist()], dtype=bool)
            positions, similarity = positions[keep], similarity[keep]
        if self._projection.shape[1]:
            positions = positions[shortlist(similarity, limit)]
            found = self._vectors_of(positions.tolist())
            similarity = _stacked([found[p][1] for p in positions.tolist()]) @ vector
        return best(positions, similarity, limit)

    def _vectors_of(self, positions: Sequence[int]) -> dict[int, tuple[str, np.ndarray]]:
        """The source and whole vector of each of these passages: cached, the others read in
        one query."""
        found = self._vectors.recall_many(positions)
        wanted = [p for p in positions if p not in found]
        if wanted:
            for position, source, vector in self._passage_rows("position, source, vector", wanted):
                found[position] = self._vectors.remember(
                    position, (sys.intern(source), np.frombuffer(vector, dtype=np.float32))
                )
        if len(found) < len(positions):
            raise self._damaged("a passage named by the index is not there")
        return found

    def features(
        self,
        positions: Sequence[int],
        vector: np.ndarray,
        *,
        idf: bool = False,
        sentences: bool = False,
    ) -> dict[int, CandidateFeatures]:
        """What the second stage reads about these passages: their rows in one query, their
        and their neighbours' sources and vectors in one more, their terms' idf and their
        sentences' vectors in at most one more each."""
        rows = self._rows_of(positions)
        by_sentence = self._sentence_similarity(positions, vector) if sentences else {}
        around = self._vectors_of(with_neighbours(positions, self.info.passage_count))
        sources = {p: source for p, (source, _) in around.items()}
        vectors = _stacked([v for _, v in around.values()])
        similarity = dict(zip(around, (vectors @ vector).tolist(), strict=True))
        terms = (
            self._terms_by_id([t for p in positions for t in rows[p]["columns"][0]]) if idf else {}
        )
        found = {}
        for position in positions:
            row = rows[position]
            term_ids, starts, ends = row["columns"]
            found[position] = CandidateFeatures(
                passage=row["passage"],
                terms=term_ids,
                starts=starts,
                ends=ends,
                idf=[terms[term][1] for term in term_ids] if idf else None,
                similarity=similarity[position],
                beside=similarity_beside(position, sources, similarity),
                sentence_similarity=by_sentence.get(position),
                links=_Links(row["links"]),
            )
        return found

    def _sentence_similarity(
        self, positions: Sequence[int], vector: np.ndarray
    ) -> dict[int, list[float]]:
        """The cosine of `vector` with each sentence of these passages, in order (one query:
        the few passages an answer cites, so nothing is cached)."""
        rows = self._passage_rows("position, sentence_vectors", list(dict.fromkeys(positions)))
        return {
            position: (
                np.frombuffer(vectors, dtype=np.float32).reshape(-1, DIMENSIONS) @ vector
            ).tolist()
            for position, vectors in rows
        }

    def passages(self, positions: Sequence[int]) -> dict[int, Passage]:
        """The passages at these positions, read in one query."""
        return {position: row["passage"] for position, row in self._rows_of(positions).items()}

    def tokens(self, positions: Sequence[int]) -> dict[int, tuple[Token, ...]]:
        """These passages' analysed terms with the source offsets of their words."""
        rows = self._rows_of(positions)
        names = self._terms_by_id([t for row in rows.values() for t in row["columns"][0]])
        return {
            position: tuple(
                Token(names[term][0], start, end)
                for term, start, end in zip(*row["columns"], strict=True)
            )
            for position, row in rows.items()
        }

    def known_words(self, words: Sequence[str]) -> set[str]:
        """Which of these lower-cased words the articles use as written (one query)."""
        words = [word for word in words if storable(word)]
        if not words:
            return set()
        rows = self._query(f"SELECT word FROM {self._schema}.words WHERE word = ANY(%s)", (words,))
        return {row[0] for row in rows}

    def words_like(self, word: str) -> tuple[Sequence[str], Sequence[float]]:
        """The articles' words with the first letter of `word` and a length within two of
        its, and their frequencies."""
        if not word or not storable(word):
            return (), ()
        rows = self._query(
            f"SELECT word, frequency FROM {self._schema}.words WHERE word LIKE %s"
            " AND length(word) BETWEEN %s AND %s",
            (word[0] + "%", len(word) - 2, len(word) + 2),
        )
        return [row[0] for row in rows], [row[1] for row in rows]

    def damage(self) -> str | None:
        """Why the database (or one of its shards) cannot serve this generation, or None."""
        try:
            self._reader.check()
        except IndexUnavailable as exc:
            return str(exc)
        return self._reader.damage


class _Links(Sequence):
    """A passage's links, parsed from their JSON when first read (most candidates never are)."""

    def __init__(self, text: str):
        self._text, self._links = text, None

    def _parsed(self) -> list:
        if self._links is None:
            self._links = links_from_rows(json.loads(self._text))
        return self._links

    def __len__(self) -> int:
        return len(self._parsed())

    def __getitem__(self, index):
        return self._parsed()[index]


def _stacked(vectors: Sequence[np.ndarray]) -> np.ndarray:
    """These whole vectors as the rows of one matrix."""
    return np.array(vectors, dtype=np.float32).reshape(-1, DIMENSIONS)
