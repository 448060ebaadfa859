"""The documentation: its JSON examples are what the running service answers (as Datasette
checks its docs), it names every setting, its links lead somewhere, and the README stays short.

Each example, in README.md or a page of docs/, is a fenced `json` block right after a
comment naming its request:

    <!-- example: POST /api/v1/ask {"question": "What damages are sought?", "k": 1} -->

Each is sent to the production gunicorn server on the seed index, with the default
settings, and the page's JSON must equal the answer: the same fields and structure,
the same values but for the VOLATILE fields'. To write the service's answers into
the pages after a change: `pytest tests/test_docs.py --update-docs`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
from support import ROOT, gunicorn_server

from qa_service import config

README = ROOT / "README.md"
DOCS = ROOT / "docs"
# Every page the tests read: the README and the site's pages.
PAGES = [README, *sorted(DOCS.glob("*.md"))]
EXAMPLE = re.compile(
    r"<!-- example: (?P<method>GET|POST) (?P<path>\S+)(?: (?P<body>\{[^\n]*\}))? -->\n"
    r"```json\n(?P<json>.*?)\n```",
    re.DOTALL,
)
# Fields whose values change from one request or build to the next; compared by
# presence only. Request ids and the generation's name also arrive as headers,
# which the examples do not show.
VOLATILE = {
    "took_ms": "how long this request took",
    "generation": "the index generation's name, made from the build's time",
}
# The examples assume the defaults of the settings that change answers, whatever
# the environment the tests run in says.
DEFAULTS = {"QA_BACKEND": "whoosh", "QA_PUBLIC_URL": "", "QA_READ_NEEDS_KEY": "0"}
# How wide a line of a page's JSON may be before an object or list is broken up.
WIDTH = 100
# The README is the front door; the rest belongs in docs/.
README_BYTES = 12_000
# A Markdown link or image: [text](target) or ![alt](target "title").
LINK = re.compile(r"!?\[[^\]]*\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
# Fenced code blocks and code spans, where brackets are not links.
CODE = re.compile(r"^```.*?^```|`[^`\n]*`", re.DOTALL | re.MULTILINE)


def _name(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


def examples(page: Path) -> list[re.Match]:
    """Every marked example of a page as it is now."""
    return list(EXAMPLE.finditer(page.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def service(index_dir, tmp_path_factory):
    """The production gunicorn server on the seed index, with the defaults the pages show."""
    log = tmp_path_factory.mktemp("docs") / "gunicorn.log"
    with gunicorn_server(index_dir, log, **DEFAULTS) as url:
        # Every worker's first question loads what answering needs: not the timing to show.
        for _ in range(4):
            httpx.get(f"{url}/api/v1/ask", params={"q": "Who filed the lawsuit?"}, timeout=30)
        yield url


@pytest.mark.parametrize(
    ("page", "marker"),
    [(page, example[0].split("\n")[0]) for page in PAGES for example in examples(page)],
    ids=lambda value: (
        _name(value)
        if isinstance(value, Path)
        else value.removeprefix("<!-- example: ").removesuffix(" -->")
    ),
)
def test_example_is_what_the_service_answers(service, page, marker, request):
    example = next(example for example in examples(page) if example[0].startswith(marker))
    body = example["body"] and json.loads(example["body"])
    response = httpx.request(example["method"], service + example["path"], json=body, timeout=30)
    answered = response.json()
    assert response.headers["Content-Type"] == "application/json"
    assert response.status_code == answered.get("error", {}).get("status", 200)
    shown = _shown(example)
    if request.config.getoption("--update-docs"):
        if shown != steady(answered):  # else the page keeps the timings it shows
            _rewrite(page, marker, formatted(answered))
        return
    assert shown is not None, f"{_name(page)}: the example's JSON does not parse"
    assert shown == steady(answered)


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_every_json_example_is_checked(page):
    text = page.read_text(encoding="utf-8")
    blocks = text.count("```json\n")
    assert blocks == len(examples(page)), "a ```json block without an <!-- example: … --> line"


def test_volatile_fields_are_ones_the_examples_hold():
    # A name left here after its field went would hide nothing, and say something untrue.
    shown = set()
    for page in PAGES:
        for example in examples(page):
            shown |= _keys(json.loads(example["json"]))
    assert set(VOLATILE) <= shown


@pytest.mark.parametrize("name", [*config.DEFAULTS, *config.ENVIRONMENT])
def test_configuration_page_names_every_setting(name):
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    # The name on its own: BACKEND inside QA_BACKEND does not count.
    assert re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", text), f"{name} is not documented"


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_links_into_docs_lead_to_files(page):
    """Relative links from the README into docs/, and between the pages of docs/, name
    files that exist (a page of docs/ may link nowhere else: the site holds only docs/)."""
    text = CODE.sub("", page.read_text(encoding="utf-8"))
    broken = []
    for link in LINK.finditer(text):
        target = link["target"].split("#")[0]
        if not target or re.match(r"[a-z][a-z0-9+.-]*:", target):
            continue  # an anchor on the same page, or another site
        path = (page.parent / target).resolve()
        inside = path.is_relative_to(DOCS)
        if (inside or page.parent == DOCS) and not (inside and path.is_file()):
            broken.append(link["target"])
    assert not broken, f"{_name(page)} links to no file of docs/: {broken}"


def test_readme_is_a_front_door():
    size = len(README.read_bytes())
    assert size <= README_BYTES, f"README.md is {size} bytes: move detail into docs/"


def steady(value):
    """`value` with each VOLATILE field's value replaced by the field's name."""
    if isinstance(value, dict):
        return {k: f"<{k}>" if k in VOLATILE else steady(v) for k, v in value.items()}
    if isinstance(value, list):
        return [steady(item) for item in value]
    return value


def formatted(value, indent: int = 0, taken: int = 0) -> str:
    """JSON as the pages show it: a value on one line when it fits, else its items on
    lines of their own, short ones packed together."""
    flat = json.dumps(value, ensure_ascii=False)
    if not value or not isinstance(value, dict | list) or indent + taken + len(flat) <= WIDTH:
        return flat
    inner = indent + 2
    if isinstance(value, dict):
        items = [
            f"{json.dumps(key)}: {formatted(item, inner, len(json.dumps(key)) + 2)}"
            for key, item in value.items()
        ]
    else:
        items = [formatted(item, inner) for item in value]
    lines = [items[0]]
    for item in items[1:]:
        packed = f"{lines[-1]}, {item}"
        if "\n" in packed or inner + len(packed) + 1 > WIDTH:
            lines.append(item)
        else:
            lines[-1] = packed
    opening, closing = ("{", "}") if isinstance(value, dict) else ("[", "]")
    body = ",\n".join(" " * inner + line for line in lines)
    return f"{opening}\n{body}\n{' ' * indent}{closing}"


def _shown(example: re.Match):
    """The example's JSON as `steady` makes it, or None when it does not parse."""
    try:
        return steady(json.loads(example["json"]))
    except json.JSONDecodeError:
        return None


def _rewrite(page: Path, marker: str, json_text: str) -> None:
    text = page.read_text(encoding="utf-8")
    example = next(example for example in EXAMPLE.finditer(text) if example[0].startswith(marker))
    start, end = example.span("json")
    page.write_text(text[:start] + json_text + text[end:], encoding="utf-8")


def _keys(value) -> set[str]:
    if isinstance(value, dict):
        return set(value).union(*(_keys(item) for item in value.values()))
    if isinstance(value, list):
        return set().union(*(_keys(item) for item in value))
    return set()
