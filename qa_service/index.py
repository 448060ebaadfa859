"""Building an index from a folder of articles, opening it, and following it in a worker.

The build is the same for every engine: read the articles, split them into
passages, analyse their terms (analysis.py), lay out postings and vectors,
link passages that state the same facts; then the engine writes the result
as a new generation and swaps it in (an `store.Engine`: whoosh_store.WhooshEngine,
which keeps generations as folders, generations.py).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import json
import logging
import math
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np

from . import layered
from .analysis import ANALYSIS_VERSION, passage_tokens
from .config import DEFAULTS
from .corpus import Article, read_corpus
from .corroboration import link_passages
from .generations import INDEX_FORMAT
from .nearest import build_vector_index
from .passages import Passage, repeated_lines, split_passages
from .postings import build_postings
from .semantic import DIMENSIONS, MODEL_DIR, SentenceEncoder, model_id
from .store import Engine, IndexUnavailable, Layer, PassageStore, PreparedIndex
from .whoosh_store import WhooshEngine

log = logging.getLogger(__name__)

# How often a worker checks that the files of the generation it serves are unchanged.
FILE_CHECK_SECONDS = 1.0
# A write layers the articles that differ from the last full build over it while they
# hold at most this share of its passages: beyond, the layer's cost (it is prepared
# again at each write) nears a full build's, and the base's statistics grow stale.
LAYER_SHARE = 0.1
# The modules whose code decides what an index holds: any change to them (a
# constant of the splitter, of corroboration, of the champion lists) is a new
# content hash, so a build never reports "unchanged" over an index they would
# now build differently.
_CONTENT_MODULES = (
    "analysis.py", "corpus.py", "corroboration.py", "index.py", "layered.py", "nearest.py",
    "passages.py", "postings.py", "semantic.py", "whoosh_store.py",
)  # fmt: skip


@dataclass(frozen=True)
class BuildReport:
    """What `build_index` did."""

    generation: str
    built: bool
    articles: int
    passages: int


def configured_engine(config: Mapping) -> Engine:
    """The engine the settings name: BACKEND "whoosh" (INDEX_DIR) or "postgres" (DATABASE_URL);
    settings not given take their defaults."""
    config = {**DEFAULTS, **config}
    if config["BACKEND"] == "postgres":
        # psycopg is needed only here: the `postgres` extra of the package.
        from .postgres_store import PostgresEngine

        shards = [name.strip() for name in config["DATABASE_SHARDS"].split(",") if name.strip()]
        return PostgresEngine(config["DATABASE_URL"], shards, config["VERSIONS_DAYS"])
    if config["BACKEND"] != "whoosh":
        raise ValueError(f"unknown backend {config['BACKEND']!r}: whoosh or postgres")
    return WhooshEngine(config["INDEX_DIR"], config["VERSIONS_DAYS"])


def engine_for(index: Engine | Path | str) -> Engine:
    """The engine holding an index: as given, or the Whoosh folder at a path."""
    return WhooshEngine(index) if isinstance(index, (Path, str)) else index


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
        prepared = prepare(articles)
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
        if current is None or current.name != engine.current_name():
            with contextlib.suppress(IndexUnavailable):
                current = engine.open(reuse=current)
        base = layered.full_build_of(current)
        prepared = None
        if base is not None:
            changed, hidden = layered.changed_articles(articles, base)
            room = layer_share * base.passage_count
            # (An empty layer is the base again: a write undone by the next one.)
            if layered.hidden_passages(hidden) <= room:
                prepared = prepare_layer(changed, base, hidden, max_passages=room)
        if prepared is None:
            prepared = prepare(articles)
            name = engine.publish(prepared, content_hash)
            return BuildReport(name, True, len(articles), len(prepared.passages))
        name = engine.publish(prepared, content_hash, Layer(base.name, hidden))
    visible = base.passage_count - layered.hidden_passages(hidden)
    return BuildReport(name, True, len(articles), visible + len(prepared.passages))


def _articles(seeds_dir: Path | str) -> list[Article]:
    articles = read_corpus(seeds_dir)
    if not articles:
        raise ValueError(f"no readable .txt or .md articles in {seeds_dir}")
    return articles


def prepare(articles: list[Article]) -> PreparedIndex:
    """Everything an index holds, computed from the articles, for an engine to write."""
    # Lines shared by several articles are the sites' furniture, not their text.
    boilerplate = repeated_lines(article.text for article in articles)
    sources, passages = _split(articles, boilerplate)
    tokens = [passage_tokens(passage) for passage in passages]
    postings = build_postings(tokens)
    fallback = math.log(len(passages)) + 1
    links = link_passages(passages, tokens, lambda term: postings.idf_of(term, fallback))
    vectors, sentence_vectors = _embeddings(passages)
    return PreparedIndex(sources, passages, postings, links, vectors, sentence_vectors, boilerplate)


def prepare_layer(
    articles: list[Article],
    base: PassageStore,
    hidden: Mapping[str, tuple[int, int]],
    *,
    max_passages: float = math.inf,
) -> PreparedIndex | None:
    """What a layer over `base` holds (layered.py): `articles`, scored and linked as part
    of the whole corpus, where `hidden` are the base's articles no longer in it; None
    when the articles make more than `max_passages` passages."""
    # The base's furniture, and what these articles share; a line one of them shares
    # with one base article only is kept until the next full build.
    boilerplate = base.boilerplate | repeated_lines(article.text for article in articles)
    sources, passages = _split(articles, boilerplate, empty_ok=True)
    if len(passages) > max_passages:
        return None
    tokens = [passage_tokens(passage) for passage in passages]
    postings = build_postings(tokens, surroundings=layered.surroundings(base))
    shift = layered.idf_shift(base.passage_count, len(passages))

    def idf(term: str) -> float:
        return postings.idf_of(term, base.term_idf(term) + shift)

    links = layered.layer_links(passages, tokens, idf, base, hidden)
    vectors, sentence_vectors = _embeddings(passages)
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


def _embeddings(passages: list[Passage]):
    """The vector index of the passages and the vectors of their sentences, in turn."""
    sentences = [p.text[s - p.start : e - p.start] for p in passages for s, e in p.sentences]
    # Most passages are one sentence, and documentation repeats itself: each
    # distinct text is encoded once (the encoder is most of a build's time).
    texts = list(dict.fromkeys([*(p.text for p in passages), *sentences]))
    if not texts:  # a layer that only hides articles
        empty = np.zeros((0, DIMENSIONS), dtype=np.float32)
        return build_vector_index(empty), empty
    row = {text: i for i, text in enumerate(texts)}
    started = time.perf_counter()
    vectors = SentenceEncoder(MODEL_DIR).encode(texts, threads=os.cpu_count() or 1)
    log.info("encoded %d distinct texts in %.1f s", len(texts), time.perf_counter() - started)
    return (
        build_vector_index(vectors[[row[p.text] for p in passages]]),
        vectors[[row[text] for text in sentences]],
    )


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
    for name in _CONTENT_MODULES:
        digest.update((Path(__file__).parent / name).read_bytes())
    return digest.hexdigest()


def open_generation(index: Engine | Path | str) -> PassageStore:
    """Open the current generation of an index, or raise IndexUnavailable."""
    return engine_for(index).open()


def check_index(index: Engine | Path | str) -> str:
    """The current generation's name if it can be served, else raise IndexUnavailable (cheap)."""
    return engine_for(index).check()


class IndexHandle:
    """A per-process view of an index folder that follows the `current` generation.

    Open it after gunicorn forks: Whoosh file handles must not be shared
    between processes. Each request takes the generation once from `generation()`.
    """

    def __init__(self, index: Engine | Path | str, *, layer_share: float = LAYER_SHARE):
        self.engine = engine_for(index)
        self.layer_share = layer_share
        self._lock = threading.Lock()
        self._generation: PassageStore | None = None
        self._checked_at = 0.0
        self._damage: str | None = None

    @property
    def loaded(self) -> PassageStore | None:
        """The generation this process has open, without opening or checking anything."""
        return self._generation

    def update(self, seeds_dir: Path | str) -> BuildReport:
        """Index the articles after a write (`update_index`), over what this process has open."""
        return update_index(seeds_dir, self.engine, self._generation, layer_share=self.layer_share)

    def generation(self) -> PassageStore:
        """The current generation, reopened when a build has swapped in a new one.

        Raises IndexUnavailable when there is none, or when the files of the one
        this process serves have changed since it opened them (checked at most
        every FILE_CHECK_SECONDS). A worker could go on answering from what it
        read into memory, but it refuses instead: workers that opened the
        generation before the damage and after it must agree on readiness, and
        the operator must see the fault (503 and one log line) and rebuild.
        """
        current = self.engine.current_name()
        loaded = self._generation
        if loaded is not None and loaded.name == current:
            now = time.monotonic()
            if now - self._checked_at >= FILE_CHECK_SECONDS:
                self._damage, self._checked_at = loaded.damage(), now
            if self._damage:
                raise IndexUnavailable(f"{self._damage}: run `qa-service index --force`")
            return loaded
        del loaded  # nothing here may keep the generation being replaced alive
        with self._lock:
            if self._generation is None or self._generation.name != current:
                self._generation = self.engine.open(reuse=self._generation)
                self._damage, self._checked_at = None, time.monotonic()
                _out_of_the_collector_s_sight()
            return self._generation


def _out_of_the_collector_s_sight() -> None:
    """Let the cyclic garbage collector skip what a worker holds for as long as it serves.

    A generation is about ten objects per passage (half a million for the
    Python documentation), and a full collection walks every one: a 0.1 s
    pause in whichever request sets it off. They are moved to the permanent
    generation (gc.freeze) once opened; the generation they replace (and any
    garbage among them) is collected once here, on a swap, instead.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()
