"""The pages in a real browser: Debian's Chromium driven by Playwright, against gunicorn."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect, sync_playwright
from support import ROOT, gunicorn_server, launch_chromium

from qa_service.core.citation_formats import reader_date
from qa_service.core.corpus import read_about
from qa_service.index import build_index

AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 740}
QUESTION = "What damages are sought?"
PRIVACY = "When did LinkedIn update its privacy policy?"
# The seeds carry no metadata; a copy of them with these sidecars (made-up publishers,
# one date with a time, one article with no date, one with no sidecar at all) shows
# what the pages make of metadata, present or missing.
METADATA = {
    "000_b6702db7aca47a35.txt": {"publisher": "The Daily Ledger", "date": "2025-01-22"},
    "001_d2a1e9c52261be42.txt": {"publisher": "Wire Report", "date": "2025-01-24"},
    "002_a33ee39ce9b31964.txt": {"publisher": "The Daily Ledger", "date": "2025-01-27T09:30:00Z"},
    "003_1650bec134086eef.txt": {"publisher": "Tech Bulletin"},
}
EXAMPLES = [QUESTION, PRIVACY, "Is a jury trial requested?"]


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        yield browser
        browser.close()


@contextlib.contextmanager
def watched_page(browser, base_url: str, **options):
    """A fresh page on `base_url` that fails the test on any console error."""
    context = browser.new_context(base_url=base_url, **{"viewport": DESKTOP, **options})
    page = context.new_page()
    errors = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert errors == [], errors


@pytest.fixture()
def page(browser, live_server):
    """A page on the seed index, served by each engine in turn."""
    with watched_page(browser, live_server) as page:
        yield page


@pytest.fixture(scope="module")
def described_server(tmp_path_factory):
    """The seeds with METADATA's sidecars and EXAMPLES configured, served by gunicorn."""
    folder = tmp_path_factory.mktemp("described")
    articles = folder / "articles"
    shutil.copytree(ROOT / "seeds", articles)
    for name, metadata in METADATA.items():
        (articles / name).with_suffix(".json").write_text(json.dumps(metadata), encoding="utf-8")
    build_index(articles, folder / "index")
    settings = {"QA_BACKEND": "whoosh", "QA_PUBLIC_URL": "", "QA_READ_NEEDS_KEY": "0"}
    examples = "|".join(EXAMPLES)
    with gunicorn_server(
        folder / "index", folder / "gunicorn.log", QA_EXAMPLE_QUESTIONS=examples, **settings
    ) as url:
        yield url


@pytest.fixture()
def described_page(browser, described_server):
    """A page on the described seeds, allowed to use the clipboard."""
    permissions = ["clipboard-read", "clipboard-write"]
    with watched_page(browser, described_server, permissions=permissions) as page:
        yield page


def ask(page, question: str = QUESTION) -> None:
    page.goto("/")
    expect(page.locator("#q")).to_be_focused()  # the question box has focus on load
    page.keyboard.type(question)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/\?q="))


def test_enter_asks_and_results_carry_citations(page):
    page.goto("/")
    expect(page.locator("#q")).to_be_focused()
    ask(page)
    assert parse_qs(urlsplit(page.url).query)["q"] == [QUESTION]
    results = page.locator("li.result")
    expect(results.first).to_be_visible()
    first = results.first
    expect(first.locator(".rank")).to_contain_text("1")
    expect(first.locator("strong.answer")).to_be_visible()
    expect(first.locator("blockquote mark").first).to_be_visible()
    expect(first.locator(".citation a")).not_to_be_empty()
    meta = first.locator(".citation .meta")
    expect(meta).to_have_text(re.compile(r"^characters \d+–\d+ · lines? \d+(–\d+)? · \S+\.txt$"))
    lines = re.search(r"lines (\d+)–(\d+)", meta.text_content())
    assert lines is None or lines[1] != lines[2]  # never "lines 13–13"


def test_citation_opens_the_source_at_the_passage_and_back_restores(page):
    ask(page)
    passage_text = page.locator("li.result blockquote").first.text_content()
    page.locator("li.result .citation a").first.click()
    page.wait_for_url(re.compile(r"/sources/.+#cited$"))
    cited = page.locator("mark#cited")
    expect(cited).to_have_text(passage_text)
    assert cited.text_content() == passage_text
    expect(cited).to_be_in_viewport()
    page.go_back()
    expect(page.locator("#q")).to_have_value(QUESTION)
    expect(page.locator("li.result").first).to_be_visible()


def test_a_script_in_the_question_is_text_and_never_runs(page):
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto("/?q=" + "%3Cscript%3Ealert(1)%3C%2Fscript%3E+damages")
    expect(page.locator("#results-heading")).to_contain_text("<script>alert(1)</script> damages")
    expect(page.locator("#q")).to_have_value("<script>alert(1)</script> damages")
    assert dialogs == []


def test_no_answer_did_you_mean_and_json_link(page):
    page.goto("/?q=Who+won+the+2018+FIFA+World+Cup%3F")
    expect(page.locator(".no-answer")).to_contain_text("hold no passage that answers")
    page.goto("/?q=What+damgaes+are+sought%3F")
    page.locator(".did-you-mean a").click()
    expect(page.locator("#q")).to_have_value("What damages are sought?")
    expect(page.locator("li.result").first).to_be_visible()
    # Fetched rather than opened: a JSON document has no favicon link, and the
    # browser's guess at /favicon.ico would be a console error.
    response = page.request.get(page.locator(".as-json a").get_attribute("href"))
    assert response.ok and response.json()["question"] == "What damages are sought?"


def test_corroboration_expands_and_conflicts_warn(page):
    page.goto("/?q=When+did+LinkedIn+update+its+privacy+policy%3F")
    conflict = page.locator(".conflict").first
    expect(conflict).to_contain_text("Sources disagree")
    expect(conflict).to_contain_text("September 2024")
    details = page.locator("details.corroboration").first
    links = details.locator("li a")
    expect(links.first).to_be_hidden()
    details.locator("summary").click()
    expect(links.first).to_be_visible()
    links.first.click()
    expect(page.locator("mark#cited")).to_be_in_viewport()


def test_keyboard_alone_asks_and_follows_a_citation(page):
    page.goto("/")
    expect(page.locator("#q")).to_be_focused()
    page.keyboard.type("Is a jury trial requested?")
    page.keyboard.press("Tab")  # to the Ask button
    expect(page.locator("button[type=submit]")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("li.result").first).to_be_visible()
    link = page.locator("li.result .citation a").first
    link.focus()
    outline = link.evaluate("el => getComputedStyle(el).outlineStyle")
    assert outline != "none"  # focus is visible
    page.keyboard.press("Enter")
    expect(page.locator("mark#cited")).to_be_visible()


def test_works_without_javascript(browser, live_server):
    context = browser.new_context(base_url=live_server, java_script_enabled=False)
    page = context.new_page()
    page.goto("/")
    page.fill("#q", QUESTION)
    page.press("#q", "Enter")
    expect(page.locator("li.result").first).to_be_visible()
    expect(page.locator("button.copy-citation").first).to_be_hidden()
    expect(page.locator("button.clear")).to_be_hidden()
    page.locator("li.result .citation a").first.click()
    expect(page.locator("mark#cited")).to_be_visible()
    context.close()


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/?q=What+damages+are+sought%3F",
        "/sources/003_1650bec134086eef.txt?start=2259&end=2535",
    ],
    ids=["search", "results", "source"],
)
def test_phone_width_has_no_horizontal_scroll(browser, live_server, path):
    context = browser.new_context(base_url=live_server, viewport=PHONE, is_mobile=True)
    page = context.new_page()
    page.goto(path)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    context.close()


def serious_violations(browser, base_url: str, path: str) -> list:
    """What axe-core finds serious or critical on `path`."""
    # axe is injected as an inline script, which the pages' CSP rightly refuses.
    context = browser.new_context(base_url=base_url, viewport=DESKTOP, bypass_csp=True)
    page = context.new_page()
    page.goto(path)
    page.add_script_tag(path=str(AXE))
    violations = page.evaluate("async () => (await axe.run()).violations")
    context.close()
    return [
        (v["id"], v["impact"], [node["target"] for node in v["nodes"]])
        for v in violations
        if v["impact"] in ("serious", "critical")
    ]


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/?q=When+did+LinkedIn+update+its+privacy+policy%3F",
        "/?q=Who+won+the+2018+FIFA+World+Cup%3F",
        "/sources/001_d2a1e9c52261be42.txt?start=1093&end=1271&q=When&k=5",
        "/sources",
        "/sources/nope.txt",
    ],
    ids=["search", "results", "no-answer", "source", "sources", "not-found"],
)
def test_axe_finds_no_serious_accessibility_problem(browser, live_server, path):
    assert serious_violations(browser, live_server, path) == []


@pytest.mark.parametrize(
    "path",
    ["/", "/?q=When+did+LinkedIn+update+its+privacy+policy%3F", "/sources"],
    ids=["home-with-examples", "results-with-metadata", "sources-with-metadata"],
)
def test_axe_on_pages_with_metadata_and_examples(browser, described_server, path):
    assert serious_violations(browser, described_server, path) == []


def facts(page) -> dict[str, str]:
    """The home page's summary of the articles, term by term."""
    terms = page.locator(".facts dt").all_text_contents()
    return dict(zip(terms, page.locator(".facts dd").all_text_contents(), strict=True))


def test_home_page_summarises_the_articles_and_offers_examples(described_page):
    page = described_page
    page.goto("/")
    assert facts(page) == {
        "Articles": "5 · list them",
        # By number of articles, then by name; the article without a sidecar is counted.
        "Publishers": "The Daily Ledger, Tech Bulletin, Wire Report (1 article without one)",
        "Dates": "22 January 2025 to 27 January 2025 (2 articles undated)",
    }
    examples = page.locator(".examples li a")
    expect(examples).to_have_text(EXAMPLES)
    examples.nth(1).click()
    page.wait_for_url(re.compile(r"/\?q="))
    expect(page.locator("#q")).to_have_value(PRIVACY)
    expect(page.locator(".answer-box strong.answer")).to_be_visible()


def test_home_page_without_metadata_says_so_and_offers_the_folders_examples(page):
    page.goto("/")
    assert facts(page) == {
        "Articles": "5 · list them",
        "Publishers": "not recorded",
        "Dates": "not recorded",
    }
    about = read_about(ROOT / "seeds")  # the seeds' about.toml
    expect(page.locator("p.about")).to_have_text(about.about)
    expect(page.locator(".examples li a")).to_have_text(list(about.examples))
    expect(page.locator("#q")).to_have_attribute("placeholder", about.examples[0])
    page.locator(".facts a").click()
    expect(page.locator(".sources li")).to_have_count(5)


def answers(page, question: str) -> dict:
    """What the JSON API answers to `question`, as the page's own server says."""
    response = page.request.get("/api/v1/ask", params={"q": question})
    assert response.ok
    return response.json()


def test_answer_box_quotes_the_answer_in_its_sentence_and_cites_it(described_page):
    page = described_page
    api = answers(page, PRIVACY)
    assert api["answerable"]
    top = api["passages"][0]
    answer, citation = top["answer"], top["citation"]
    page.goto("/?q=" + PRIVACY)
    box = page.locator(".answer-box")
    # Above the passages, and the only place headed as the answer.
    expect(box.locator("h2")).to_have_text("Answer")
    assert box.bounding_box()["y"] < page.locator("li.result").first.bounding_box()["y"]
    expect(box.locator("strong.answer")).to_have_text(answer["text"])
    sentence = box.locator("blockquote").text_content()
    assert answer["text"] in sentence and sentence in top["text"]
    # A whole sentence: from the passage's start or a sentence's end, to the next end.
    at = top["text"].index(sentence)
    before, after = top["text"][:at].rstrip(), top["text"][at + len(sentence) :]
    assert before == "" or before[-1] in ".!?”’\"'"
    assert after == "" or (after[0].isspace() and sentence[-1] in ".!?”’\"'")
    metadata = METADATA[citation["source"]]
    expect(box.locator(".citation a")).to_have_text(citation["title"])
    expect(box.locator(".citation .meta")).to_have_text(
        re.compile(
            rf"^{metadata['publisher']} · {reader_date(metadata['date'])} · "
            rf"characters {answer['start']}–{answer['end']} · lines? \d+(–\d+)? · "
            rf"{citation['source']}$"
        )
    )
    # Also reported by: one entry per other source, each its title (never a bare link).
    others = {}
    for other in top["corroborated_by"]:
        others.setdefault(other["source"], other)
    assert others, "the question was chosen for its corroborations"
    entries = box.locator(".also-reported li")
    expect(entries).to_have_count(len(others))
    for entry, other in zip(entries.all(), others.values(), strict=True):
        expect(entry.locator("a")).to_have_text(other["title"])
        if other["source"] in METADATA:
            expect(entry).to_contain_text(METADATA[other["source"]]["publisher"])
    # The citation opens the article at exactly the answer's words.
    box.locator(".citation a").click()
    expect(page.locator("mark#cited")).to_have_text(answer["text"])


def test_no_answer_is_said_plainly_and_whole_words_are_marked(page):
    question = "Who won the 2018 FIFA World Cup?"
    api = answers(page, question)
    assert not api["answerable"]
    page.goto("/?q=" + question)
    expect(page.locator("#answer-heading")).to_have_text("No answer in the articles")
    expect(page.locator(".answer-box")).to_have_count(0)
    expect(page.locator("#results-heading")).to_have_text(f"Closest passages to “{question}”")
    expect(page.locator("li.result").first).to_be_visible()
    # None of the closest passages is presented as an answer.
    expect(page.locator("li.result strong.answer")).to_have_count(0)
    # The analyser splits "won't" at its apostrophe, so the API highlights its "won";
    # the page marks only whole words.
    passage = next(p for p in api["passages"] if "won't" in p["text"])
    base = passage["citation"]["start"]
    assert "won" in [
        passage["text"][h["start"] - base : h["end"] - base] for h in passage["highlights"]
    ]
    shown = page.locator("li.result blockquote").filter(has_text="won't")
    expect(shown).to_have_count(1)
    assert "won" not in shown.locator("mark").all_text_contents()


COPY_FORMATS = ["Plain text", "Markdown", "CSL-JSON"]


def test_copy_citation_in_each_format(described_page, described_server):
    page = described_page
    top = answers(page, PRIVACY)["passages"][0]
    answer, citation = top["answer"], top["citation"]
    metadata = METADATA[citation["source"]]
    page.goto("/?q=" + PRIVACY)
    group = page.locator(".answer-box .copy")
    link = group.get_attribute("data-citation-url")
    assert link.startswith("/sources/")  # relative: no public URL is configured
    url = described_server + link  # what the browser makes of it
    copied = {}
    for label in COPY_FORMATS:
        button = group.get_by_role("button", name=f"Copy citation as {label}")
        button.click()
        expect(group.locator(".copy-status")).to_have_text(f"Copied as {label}.")
        copied[label] = page.evaluate("navigator.clipboard.readText()")
        # Exactly what the button holds, with its link made absolute.
        assert copied[label] == button.get_attribute("data-copy").replace(link, url)
    where = f"{metadata['publisher']}, {reader_date(metadata['date'])}, {citation['source']}"
    assert copied["Plain text"].startswith(f"“{answer['text']}” — {citation['title']}, {where}")
    assert copied["Plain text"].endswith(f". {url}")
    assert f"[{citation['title']}]({url}), {where}, characters " in copied["Markdown"]
    [item] = json.loads(copied["CSL-JSON"])
    year, month, day = (int(part) for part in metadata["date"].split("-"))
    assert item == {
        "id": f"{citation['source']}#{answer['start']}-{answer['end']}",
        "type": "article-newspaper",
        "title": citation["title"],
        "container-title": metadata["publisher"],
        "issued": {"date-parts": [[year, month, day]]},
        "URL": url,
        "locator": f"{answer['start']}–{answer['end']}",
        "note": f"Characters {answer['start']}–{answer['end']} of {citation['source']}",
    }
    # The copied link opens the article at the cited words.
    page.goto(item["URL"])
    expect(page.locator("mark#cited")).to_have_text(answer["text"])


def test_copy_falls_back_without_the_clipboard_api(browser, described_server):
    permissions = ["clipboard-read", "clipboard-write"]
    with watched_page(browser, described_server, permissions=permissions) as page:
        # As on plain http from another host: no navigator.clipboard at all.
        page.add_init_script("delete Navigator.prototype.clipboard")
        page.goto("/?q=" + QUESTION)
        assert page.evaluate("navigator.clipboard") is None
        button = page.locator("li.result .copy-citation[data-format=text]").first
        button.click()
        status = page.locator("li.result .copy-status").first
        expect(status).to_have_text("Copied as Plain text.")
        reader = page.context.new_page()  # without the init script: it can read
        reader.goto("/")
        copied = reader.evaluate("navigator.clipboard.readText()")
        link = button.locator("xpath=..").get_attribute("data-citation-url")
        assert copied == button.get_attribute("data-copy").replace(link, described_server + link)


def test_source_page_keeps_its_title_in_view_and_links_back(described_page):
    page = described_page
    page.goto("/?q=" + PRIVACY + "&k=3")
    result = page.locator("li.result").last
    title = result.locator(".citation a").text_content()
    result.locator(".citation a").click()
    page.wait_for_url(re.compile(r"/sources/.+#cited$"))
    name = urlsplit(page.url).path.rsplit("/", 1)[-1]
    heading = page.locator(".source-head h1")
    expect(heading).to_have_text(title)
    meta = page.locator(".source-head .meta")
    if name in METADATA:
        expect(meta).to_contain_text(METADATA[name]["publisher"])
    expect(meta).to_contain_text(name)
    mark = page.locator("mark#cited")
    expect(mark).to_be_in_viewport()
    assert page.evaluate("window.scrollY") > 0  # the span is down the article...
    expect(heading).to_be_in_viewport()  # ...and the title still shows
    back = page.locator(".source-head .back a")
    expect(back).to_have_text(f"← Back to the results for “{PRIVACY}”")
    back.click()
    page.wait_for_url(re.compile(r"/\?q="))
    assert parse_qs(urlsplit(page.url).query) == {"q": [PRIVACY], "k": ["3"]}
    expect(page.locator("#q")).to_have_value(PRIVACY)
    expect(page.locator("li.result")).to_have_count(3)


def test_source_page_on_a_phone_shows_title_and_span(browser, live_server):
    with watched_page(browser, live_server, viewport=PHONE, is_mobile=True) as page:
        page.goto("/?q=" + PRIVACY)
        page.locator(".answer-box .citation a").click()
        expect(page.locator("mark#cited")).to_be_in_viewport()
        expect(page.locator(".source-head h1")).to_be_in_viewport()


def test_phone_width_question_never_runs_under_the_clear_button(browser, live_server):
    with watched_page(browser, live_server, viewport=PHONE, is_mobile=True) as page:
        page.goto("/")
        question = page.locator("#q")
        clear = page.locator("button.clear")
        expect(clear).to_be_hidden()  # nothing to clear yet
        question.fill("What did the plaintiffs say LinkedIn disclosed to third parties in 2023?")
        expect(clear).to_be_visible()
        box, button = question.bounding_box(), clear.bounding_box()
        ask_button = page.locator("button[type=submit]").bounding_box()
        assert box["x"] + box["width"] <= button["x"]  # side by side, never over each other
        assert button["x"] + button["width"] <= ask_button["x"]
        assert ask_button["x"] + ask_button["width"] <= PHONE["width"]
        clear.click()
        expect(question).to_have_value("")
        expect(question).to_be_focused()
        expect(clear).to_be_hidden()
