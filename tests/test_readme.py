"""The README's JSON examples are what the running service answers (as Datasette checks its docs).

Each example is a fenced `json` block right after a comment naming its request:

    <!-- example: POST /api/v1/ask {"question": "What damages are sought?", "k": 1} -->

Each is sent to the production gunicorn server on the seed index, with the default
settings, and the README's JSON must equal the answer: the same fields and structure,
the same values but for the VOLATILE fields'. To write the service's answers into
the README after a change: `pytest tests/test_readme.py --update-readme`.
"""

from __future__ import annotations

import json
import re

import httpx
import pytest
from support import ROOT, gunicorn_server

README = ROOT / "README.md"
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
# How wide a line of the README's JSON may be before an object or list is broken up.
WIDTH = 100


def examples() -> list[re.Match]:
    """Every marked example of the README as it is now."""
    return list(EXAMPLE.finditer(README.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def service(index_dir, tmp_path_factory):
    """The production gunicorn server on the seed index, with the defaults the README shows."""
    log = tmp_path_factory.mktemp("readme") / "gunicorn.log"
    with gunicorn_server(index_dir, log, **DEFAULTS) as url:
        # Every worker's first question loads what answering needs: not the timing to show.
        for _ in range(4):
            httpx.get(f"{url}/api/v1/ask", params={"q": "Who filed the lawsuit?"}, timeout=30)
        yield url


@pytest.mark.parametrize(
    "marker",
    [example[0].split("\n")[0] for example in examples()],
    ids=lambda marker: marker.removeprefix("<!-- example: ").removesuffix(" -->"),
)
def test_example_is_what_the_service_answers(service, marker, request):
    example = next(example for example in examples() if example[0].startswith(marker))
    body = example["body"] and json.loads(example["body"])
    response = httpx.request(example["method"], service + example["path"], json=body, timeout=30)
    answered = response.json()
    assert response.headers["Content-Type"] == "application/json"
    assert response.status_code == answered.get("error", {}).get("status", 200)
    shown = _shown(example)
    if request.config.getoption("--update-readme"):
        if shown != steady(answered):  # else the README keeps the timings it shows
            _rewrite(marker, formatted(answered))
        return
    assert shown is not None, "the README's JSON does not parse"
    assert shown == steady(answered)


def test_every_json_example_is_checked():
    text = README.read_text(encoding="utf-8")
    blocks = text.count("```json\n")
    assert blocks == len(examples()), "a ```json block without an <!-- example: … --> line"


def test_volatile_fields_are_ones_the_examples_hold():
    # A name left here after its field went would hide nothing, and say something untrue.
    shown = set()
    for example in examples():
        shown |= _keys(json.loads(example["json"]))
    assert set(VOLATILE) <= shown


def steady(value):
    """`value` with each VOLATILE field's value replaced by the field's name."""
    if isinstance(value, dict):
        return {k: f"<{k}>" if k in VOLATILE else steady(v) for k, v in value.items()}
    if isinstance(value, list):
        return [steady(item) for item in value]
    return value


def formatted(value, indent: int = 0, taken: int = 0) -> str:
    """JSON as the README shows it: a value on one line when it fits, else its items on
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


def _rewrite(marker: str, json_text: str) -> None:
    text = README.read_text(encoding="utf-8")
    example = next(example for example in EXAMPLE.finditer(text) if example[0].startswith(marker))
    start, end = example.span("json")
    README.write_text(text[:start] + json_text + text[end:], encoding="utf-8")


def _keys(value) -> set[str]:
    if isinstance(value, dict):
        return set(value).union(*(_keys(item) for item in value.values()))
    if isinstance(value, list):
        return set().union(*(_keys(item) for item in value))
    return set()
