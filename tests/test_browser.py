"""The pages in a real browser: Debian's Chromium driven by Playwright, against gunicorn."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect, sync_playwright
from support import launch_chromium

AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 740}
QUESTION = "What damages are sought?"


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        yield browser
        browser.close()


@pytest.fixture()
def page(browser, live_server):
    """A fresh page on the live server that fails the test on any console error."""
    context = browser.new_context(base_url=live_server, viewport=DESKTOP)
    page = context.new_page()
    errors = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert errors == [], errors


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
    expect(first.locator(".citation a")).to_have_text(
        re.compile(r" — \S+\.txt, characters \d+–\d+$")
    )
    expect(first.locator(".lines")).to_have_text(re.compile(r"lines \d+–\d+"))


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


def test_copy_citation_puts_a_plain_citation_on_the_clipboard(browser, live_server):
    context = browser.new_context(base_url=live_server, viewport=DESKTOP)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server)
    page = context.new_page()
    ask(page)
    button = page.locator("button.copy-citation").first
    button.click()
    expect(button).to_have_text("Copied")
    expect(page.locator("#copy-status")).to_have_text("Citation copied to the clipboard.")
    copied = page.evaluate("navigator.clipboard.readText()")
    passage_text = page.locator("li.result blockquote").first.text_content()
    source = page.locator("li.result .citation a").first.text_content()
    assert copied.startswith(f"“{passage_text}” — ")
    assert source.split(", characters")[0].split(" — ")[-1] in copied
    assert f"{live_server}/sources/" in copied
    context.close()


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


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/?q=When+did+LinkedIn+update+its+privacy+policy%3F",
        "/sources/001_d2a1e9c52261be42.txt?start=1093&end=1271",
        "/sources",
        "/sources/nope.txt",
    ],
    ids=["search", "results", "source", "sources", "not-found"],
)
def test_axe_finds_no_serious_accessibility_problem(browser, live_server, path):
    # axe is injected as an inline script, which the pages' CSP rightly refuses.
    context = browser.new_context(base_url=live_server, viewport=DESKTOP, bypass_csp=True)
    page = context.new_page()
    page.goto(path)
    page.add_script_tag(path=str(AXE))
    violations = page.evaluate("async () => (await axe.run()).violations")
    serious = [
        (v["id"], v["impact"], [node["target"] for node in v["nodes"]])
        for v in violations
        if v["impact"] in ("serious", "critical")
    ]
    assert serious == []
    context.close()
