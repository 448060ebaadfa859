"""Shared fixtures: the seed index, the Flask app, and a real gunicorn server.

Markers are set here, not written on tests: a test is `browser` when it reaches
`support.launch_chromium`, and `live` when it reaches `support.gunicorn_server`;
"reaches" meaning the test function, a fixture it uses (directly or through other
fixtures), or a function or class of tests/ that those name, calls it. So a new test
is marked by what it does, whichever file it is in and however it starts the server.
Not seen: a fixture asked for by name at run time (`request.getfixturevalue`).
"""

from __future__ import annotations

import functools
import inspect
import types
from pathlib import Path

import pytest
import support
from postgres_support import postgres_server
from support import ROOT, gunicorn_server

from qa_service.config import ENVIRONMENT, load_config
from qa_service.core.corpus import read_corpus
from qa_service.index import build_index, configured_engine
from qa_service.web.app import create_app

SEEDS = ROOT / "seeds"
QUESTIONS = Path(__file__).parent / "data" / "questions.jsonl"


@pytest.fixture(scope="session")
def seeds_dir() -> Path:
    """The repository's seed articles (read only)."""
    return SEEDS


@pytest.fixture(scope="session")
def questions_path() -> Path:
    """The project's copy of the evaluation questions with gold spans."""
    return QUESTIONS


@pytest.fixture(scope="session")
def seed_texts() -> dict[str, str]:
    """Seed article texts by name, read the way any client would read them."""
    return {path.name: path.read_text(encoding="utf-8") for path in sorted(SEEDS.glob("*.txt"))}


@pytest.fixture(scope="session")
def index_dir(tmp_path_factory) -> Path:
    """An index of the seed articles, built once for the session."""
    folder = tmp_path_factory.mktemp("index")
    build_index(SEEDS, folder)
    return folder


@pytest.fixture(scope="session")
def postgres_index(seeds_dir):
    """The seed articles indexed into a PostgreSQL server of their own (QA_* settings)."""
    with postgres_server() as server:
        settings = {"QA_BACKEND": "postgres", "QA_DATABASE_URL": server.url}
        build_index(seeds_dir, configured_engine(load_config(_as_config(settings))))
        yield settings


def _as_config(environment: dict[str, str]) -> dict[str, str]:
    return {ENVIRONMENT[name]: value for name, value in environment.items()}


# The engines every API, page, client and serving test runs against.
BACKENDS = ["whoosh", "postgres"]


@pytest.fixture(scope="session", params=BACKENDS)
def backend_settings(request, index_dir) -> dict[str, str]:
    """QA_* settings that serve the seed index from one engine, then the other."""
    if request.param == "postgres":
        return request.getfixturevalue("postgres_index")
    return {"QA_BACKEND": "whoosh", "QA_INDEX": str(index_dir)}


@pytest.fixture()
def app(backend_settings):
    return create_app({**_as_config(backend_settings), "TESTING": True})


@pytest.fixture()
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def live_server(index_dir, backend_settings, tmp_path_factory):
    """The production gunicorn config serving the seed index on a free loopback port."""
    log_path = tmp_path_factory.mktemp("gunicorn") / "error.log"
    with gunicorn_server(index_dir, log_path, **backend_settings) as url:
        yield url


@pytest.fixture(scope="session")
def seed_articles():
    return read_corpus(SEEDS)


# --- markers: what a test needs, found from what it reaches (see the module docstring)

# Each marker, and the function whose use gives it.
MARKED_BY = {"browser": support.launch_chromium, "live": support.gunicorn_server}
TESTS = Path(__file__).resolve().parent


def pytest_addoption(parser):
    parser.addoption(
        "--update-docs",
        action="store_true",
        help="tests/test_docs.py: write the service's answers into the docs' examples",
    )


def pytest_collection_modifyitems(items):
    for item in items:
        if not isinstance(item, pytest.Function):
            continue
        functions = [item.function]
        # Every definition of each fixture in its closure, overridden ones included
        # (pytest has no public name for this mapping).
        for definitions in item._fixtureinfo.name2fixturedefs.values():
            functions.extend(definition.func for definition in definitions)
        reached = set().union(*(_reached(function) for function in functions))
        for marker, function in MARKED_BY.items():
            if function in reached:
                item.add_marker(marker)


@functools.cache
def _reached(function) -> frozenset:
    """The functions `function` names, and on through those of tests/ and their classes."""
    function = inspect.unwrap(getattr(function, "__func__", function))
    found, seen, pending = set(), set(), [function]
    while pending:
        current = pending.pop()
        if current in seen or not inspect.isfunction(current):
            continue
        seen.add(current)
        found.add(current)
        for value in _named(current):
            if inspect.isfunction(value):
                found.add(value)  # as named: support.gunicorn_server is a contextmanager
                if _in_tests(inspect.unwrap(value)):
                    pending.append(inspect.unwrap(value))
            elif inspect.isclass(value) and _in_tests(value):
                members = (getattr(member, "__func__", member) for member in vars(value).values())
                pending.extend(member for member in members if inspect.isfunction(member))
    return frozenset(found)


def _named(function):
    """The objects the global names in `function`'s code (nested code too) stand for."""
    codes, names = [function.__code__], set()
    while codes:
        code = codes.pop()
        names.update(code.co_names)
        codes.extend(const for const in code.co_consts if isinstance(const, types.CodeType))
    namespace = function.__globals__
    modules = [value for value in namespace.values() if inspect.ismodule(value)]
    for name in names:
        if name in namespace:
            yield namespace[name]
        # `support.gunicorn_server(...)`: an attribute of a module of tests/.
        for module in modules:
            if _in_tests(module) and hasattr(module, name):
                yield getattr(module, name)


def _in_tests(thing) -> bool:
    try:
        return _under_tests(inspect.getfile(thing))
    except TypeError:  # built-in
        return False


@functools.cache
def _under_tests(filename: str) -> bool:
    return Path(filename).resolve().is_relative_to(TESTS)
