"""What the home page tells a first-time reader: an about line, example questions, the
placeholder, from the settings, the folder's about.toml, or the articles themselves."""

from __future__ import annotations

import html
import re

import pytest

from qa_service.core.corpus import ABOUT_MAX_BYTES, FolderAbout, read_about
from qa_service.index import build_index
from qa_service.retrieval.overview import subjects
from qa_service.web.app import create_app

# Three short reports on one subject by different hands, and furniture of no subject.
REPORTS = {
    "harbour.txt": (
        "The harbour authority closed the northern pier after a storm damaged its pilings. "
        "Repairs to the northern pier will cost $2 million, the authority said.\n\n"
        "Fishing boats moved to the southern quay while the pier is closed."
    ),
    "council.txt": (
        "The city council voted on Monday to fund repairs to the northern pier. "
        "Councillors said the fishing fleet needs the pier before the winter season.\n\n"
        "The vote passed by seven to two."
    ),
    "fleet.txt": (
        "Fishermen say the closure of the northern pier costs them a day of work a week. "
        "The fishing fleet has used the pier since 1950.\n\n"
        "The harbour authority expects the pier to open again in spring."
    ),
}


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """A folder of REPORTS (no about.toml, no settings) and its index."""
    folder = tmp_path_factory.mktemp("reports")
    (folder / "articles").mkdir()
    for name, text in REPORTS.items():
        (folder / "articles" / name).write_text(text, encoding="utf-8")
    build_index(folder / "articles", folder / "index")
    return folder


def _app(folder, **settings):
    config = {"SEEDS_DIR": str(folder / "articles"), "INDEX_DIR": str(folder / "index")}
    return create_app({**config, "ANSWER_CACHE_SIZE": 0, "TESTING": True, **settings})


def _orientation(page: str) -> tuple[str | None, list[str], str]:
    """The about line, the example questions and the question box's placeholder of a page."""
    about = re.search(r'<p class="about">(.*?)</p>', page, re.S)
    examples = re.findall(r'<li><a href="/\?q=[^"]+">([^<]+)</a></li>', page)
    placeholder = re.search(r'placeholder="([^"]*)"', page).group(1)
    return (
        html.unescape(about.group(1)) if about else None,
        [html.unescape(example) for example in examples],
        html.unescape(placeholder),
    )


def test_a_folder_with_no_configuration_gets_examples_its_articles_answer(reports):
    client = _app(reports).test_client()
    about, examples, placeholder = _orientation(client.get("/").get_data(as_text=True))
    assert about == "What the articles share most: northern pier, fishing fleet, harbour authority."
    assert examples and len(examples) <= 3
    assert placeholder == examples[0]
    for question in examples:  # each one a promise the articles keep
        answers = client.get("/api/v1/ask", query_string={"q": question}).get_json()
        assert answers["answerable"] is True, question
        assert answers["passages"]


def test_the_folders_about_file_comes_before_what_is_drawn(reports, tmp_path):
    (reports / "articles" / "about.toml").write_text(
        'about = "Reports on the  northern pier."\nexamples = ["When will the pier open?", 3]\n',
        encoding="utf-8",
    )
    try:
        page = _app(reports).test_client().get("/").get_data(as_text=True)
        assert _orientation(page) == (
            "Reports on the northern pier.",
            ["When will the pier open?"],
            "When will the pier open?",
        )
        # The setting comes first of all.
        configured = _app(reports, EXAMPLE_QUESTIONS="Who voted?|What will repairs cost?")
        page = configured.test_client().get("/").get_data(as_text=True)
        assert _orientation(page)[1:] == (
            ["Who voted?", "What will repairs cost?"],
            "Who voted?",
        )
    finally:
        (reports / "articles" / "about.toml").unlink()


def test_the_seeds_ship_their_about_line_and_examples(seeds_dir):
    about = read_about(seeds_dir)
    assert about.about and "LinkedIn" in about.about
    assert len(about.examples) == 3


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'about = "A"\nexamples = ["Q?", " ", "R  S?"]', FolderAbout("A", ("Q?", "R S?"))),
        (b"examples = 'not a list'", FolderAbout()),
        (b"about = 3", FolderAbout()),
        (b"about = [unclosed", FolderAbout()),
        (b'about = "\xff"', FolderAbout()),
        (b'about = "' + b"x" * ABOUT_MAX_BYTES + b'"', FolderAbout()),
    ],
    ids=["usable", "examples-not-a-list", "about-not-text", "not-toml", "not-utf8", "too-large"],
)
def test_an_unusable_about_file_is_ignored(tmp_path, content, expected):
    (tmp_path / "about.toml").write_bytes(content)
    assert read_about(tmp_path) == expected


def test_no_about_file_says_nothing(tmp_path):
    assert read_about(tmp_path) == FolderAbout()


def test_subjects_are_what_otherwise_different_texts_share():
    texts = [
        "The Harbour Authority met. Rain fell on the town all day.",
        "A report from the Harbour Authority came out. Nobody read it.",
        "Ships left. The Harbour Authority was not told, and rain came.",
    ]
    # "rain" is in two texts but a lone common word names no subject; words of a
    # sentence's start ("The", "Ships") are not names.
    assert subjects(texts) == ["Harbour Authority"]
