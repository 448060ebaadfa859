"""The passages an index serves depend on the folder alone, never on the writes that led
there: random histories of writes, on both engines, against a fresh full build."""

from __future__ import annotations

import itertools
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from postgres_support import postgres_server

from qa_service.engines.layered import LayeredStore
from qa_service.index import IndexHandle, build_index, configured_engine
from qa_service.index.writes import delete_source, put_source

# Lines a site prints on many of its articles, prose and heading alike.
FURNITURE = (
    "The City Desk is funded by its readers.",
    "By the City Desk staff",
    "Photos by the Harbour Authority press office.",
)
NAMES = tuple(f"{letter}.txt" for letter in "abcdef")
# How a change reaches the index: the write API, a file changed then the handle's update
# (what a write does), or a file changed then `qa-service index`.
HOW = st.sampled_from(["api", "update", "index"])
PLACES = ("Oakland", "Fresno", "the harbour", "the old mill", "Riverside")
THINGS = ("workers", "permits", "complaints", "trucks", "visitors")


@st.composite
def article_plans(draw) -> tuple[int, list[int | None]]:
    """An article as how many sentences of its own and where furniture lines go (None: a
    sentence of its own, a number: that furniture line)."""
    own = draw(st.integers(1, 4))
    furniture = draw(st.lists(st.integers(0, len(FURNITURE) - 1), max_size=2, unique=True))
    lines = [None] * own + furniture
    return draw(st.permutations(lines))


class HistoryFree(RuleBasedStateMachine):
    """An index under random writes, compared at every step with a fresh full build."""

    # Set by the test: a callable giving a fresh (engine, reference engine) pair.
    engines = None

    def __init__(self):
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="history-free-"))
        self.corpus = self.folder / "corpus"
        self.corpus.mkdir()
        self.engine, self.reference = type(self).engines(self.folder)
        self.handle = IndexHandle(self.engine, layer_share=1.0)
        self.serial = itertools.count()
        self.reported: int | None = None

    def teardown(self):
        shutil.rmtree(self.folder, ignore_errors=True)

    def _text(self, plan: list[int | None]) -> str:
        """An article: a title and sentences of its own (never seen before), furniture between."""
        number = next(self.serial)
        lines = [f"Harbour report {number}", ""]
        for index, line in enumerate(plan):
            if line is None:
                place, thing = PLACES[(number + index) % 5], THINGS[(number * 3 + index) % 5]
                lines.append(f"In {place} the count of {thing} reached {number * 10 + index}.")
            else:
                lines.append(FURNITURE[line])
        return "\n".join(lines) + "\n"

    def _names(self) -> list[str]:
        return sorted(path.name for path in self.corpus.glob("*.txt"))

    def _put(self, name: str, text: str, how: str) -> None:
        if how == "api":
            pending = put_source(self.corpus, name, text, {})
            self.reported = pending.index(self.engine, layer_share=1.0).passages
            return
        (self.corpus / name).write_text(text, encoding="utf-8")
        self._index(how)

    def _index(self, how: str) -> None:
        update = self.handle.update if how == "update" else self._index_run
        self.reported = update(self.corpus).passages

    def _index_run(self, corpus: Path):
        return build_index(corpus, self.engine)  # `qa-service index`

    @initialize(plans=st.lists(article_plans(), min_size=2, max_size=3))
    def full_build(self, plans):
        for name, plan in zip(NAMES, plans, strict=False):
            (self.corpus / name).write_text(self._text(plan), encoding="utf-8")
        self.reported = build_index(self.corpus, self.engine).passages

    @rule(name=st.sampled_from(NAMES), plan=article_plans(), how=HOW)
    def write(self, name, plan, how):
        """Add an article, or replace one by another."""
        self._put(name, self._text(plan), how)

    @rule(pick=st.integers(0, 10), name=st.sampled_from(NAMES), extra=st.booleans(), how=HOW)
    def copy(self, pick, name, extra, how):
        """Copy an article (a syndicated story), whole or with a line of its own added."""
        names = self._names()
        text = (self.corpus / names[pick % len(names)]).read_text(encoding="utf-8")
        if extra:
            text += f"Reprinted with permission, note {next(self.serial)}.\n"
        self._put(name, text, how)

    @precondition(lambda self: len(self._names()) > 1)
    @rule(pick=st.integers(0, 10), how=HOW)
    def delete(self, pick, how):
        """Delete an article."""
        names = self._names()
        name = names[pick % len(names)]
        if how == "api":
            pending = delete_source(self.corpus, name)
            self.reported = pending.index(self.engine, layer_share=1.0).passages
            return
        (self.corpus / name).unlink()
        self._index(how)

    @rule()
    def index_again(self):
        """`qa-service index` with nothing changed: it may say unchanged, never differ."""
        self._index("index")

    @invariant()
    def serves_what_a_fresh_full_build_serves(self):
        if self.reported is None:  # before the first build
            return
        build_index(self.corpus, self.reference, force=True)
        fresh, served = self.reference.open(), self.handle.generation()
        assert _served(served) == _served(fresh)
        assert served.info.boilerplate == fresh.info.boilerplate
        assert self.reported == fresh.info.passage_count


def _served(store) -> list[tuple[str, int, int, str]]:
    """Every passage a generation serves (a layer's base less what it hides), sorted."""
    hidden: set[int] = set()
    if isinstance(store, LayeredStore):
        for start, end in store.hidden.values():
            hidden.update(range(start, end))
    positions = [p for p in range(store.info.passage_count) if p not in hidden]
    return sorted((p.source, p.start, p.end, p.text) for p in store.passages(positions).values())


def test_a_copy_written_then_deleted_leaves_the_original_whole(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    story = "Wire story\n" + "".join(
        f"Crew {n} finished section {n} of the tunnel on Monday.\n" for n in range(8)
    )
    (corpus / "story.txt").write_text(story + FURNITURE[0] + "\n", encoding="utf-8")
    (corpus / "other.txt").write_text(
        f"Mill\nThe mill reopened.\n{FURNITURE[0]}\n", encoding="utf-8"
    )
    engine = configured_engine({"INDEX_DIR": tmp_path / "index"})
    build_index(corpus, engine)
    handle = IndexHandle(engine, layer_share=1.0)
    original = [p[1:] for p in _served(handle.generation()) if p[0] == "story.txt"]
    assert len(original) == 9 and FURNITURE[0] not in {p[2] for p in original}

    # The story's lines, twice now.
    put_source(corpus, "copy.txt", story, {}).index(engine, layer_share=1.0)
    for force in (False, True):  # the write's layer, then a full build
        build_index(corpus, engine, force=force)
        served = _served(handle.generation())
        for name in ("story.txt", "copy.txt"):
            assert [p[1:] for p in served if p[0] == name] == original
    # A layer over the full build with the copy.
    delete_source(corpus, "copy.txt").index(engine, layer_share=1.0)
    again = build_index(corpus, engine)  # `qa-service index`: nothing to do
    assert not again.built and _served(handle.generation()) == _served(engine.open())
    assert [p[1:] for p in _served(handle.generation()) if p[0] == "story.txt"] == original


@pytest.fixture(params=["whoosh", "postgres"])
def engines(request):
    """A maker of (engine, reference) pairs of one kind, the engine fresh for each history
    (a reference built with force is a fresh full build whatever it held)."""
    if request.param == "whoosh":
        yield lambda folder: tuple(
            configured_engine({"INDEX_DIR": folder / name}) for name in ("index", "reference")
        )
        return
    with postgres_server() as server:
        reference = configured_engine({"BACKEND": "postgres", "DATABASE_URL": server.url})
        databases = itertools.count()

        def make(folder):
            database = f"history{next(databases)}"
            server.sql(f"CREATE DATABASE {database}", database="postgres")
            url = server.url.rsplit("/", 1)[0] + f"/{database}"
            return configured_engine({"BACKEND": "postgres", "DATABASE_URL": url}), reference

        yield make


def test_served_passages_are_a_fresh_full_builds_whatever_the_writes(engines):
    machine = type("History", (HistoryFree,), {"engines": staticmethod(engines)})
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=8,
            stateful_step_count=8,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
