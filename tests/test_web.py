"""The HTML pages, checked on the rendered markup."""

from __future__ import annotations

import html
import json
import re
from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

import pytest

from qa_service.core.citation_formats import (
    Reference,
    csl_json,
    date_parts,
    markdown,
    plain_text,
    reader_date,
)
from qa_service.core.results import AnswerPassage, AnswerSpan, Citation, SourceInfo, Span
from qa_service.web.home import CorpusSummary, example_questions, summarize_corpus
from qa_service.web.pages import answer_sentence, mark_runs


def test_search_page_has_a_labelled_form(client):
    response = client.get("/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert '<label for="q">' in page and 'id="q" name="q"' in page and "autofocus" in page
    assert "<main" in page and "<header" in page and "<footer" in page


# A citation on the page: the linked title, then publisher, date, place and file.
CITATION = re.compile(
    r'<p class="citation"><a href="(/sources/([^"?]+)\?start=(\d+)&amp;end=(\d+)'
    r'&amp;version=[0-9a-f]{64}&amp;q=([^"&]+)&amp;k=(\d+)#cited)">([^<]+)</a>\s*'
    r'<span class="meta">([^<]+)</span></p>'
)


def test_results_show_rank_marks_answer_and_a_citation_link(client, seed_texts):
    page = client.get("/?q=What+damages+are+sought%3F").get_data(as_text=True)
    api = client.get("/api/v1/ask?q=What+damages+are+sought%3F").get_json()
    assert page.count('class="result"') == len(api["passages"]) > 0
    assert '<strong class="answer">' in page and "<mark>damages</mark>" in page
    links = CITATION.findall(page)
    # The answer box's citation, then one per result.
    assert len(links) == len(api["passages"]) + 1, page
    href, name, start, end, q, k, title, meta = links[1]
    top = api["passages"][0]["citation"]
    assert (name, int(start), int(end)) == (top["source"], top["start"], top["end"])
    assert (q, k, html.unescape(title)) == ("What+damages+are+sought%3F", "5", top["title"])
    lines = (
        f"line {top['line_start']}"
        if top["line_start"] == top["line_end"]
        else f"lines {top['line_start']}–{top['line_end']}"
    )
    # The seeds have no metadata: no publisher or date, and nothing in their place.
    assert meta == f"characters {start}–{end} · {lines} · {name}"
    # The linked source page highlights exactly the cited passage.
    source_page = client.get(html.unescape(href)).get_data(as_text=True)
    cited = re.search(r'<mark id="cited" class="cited">(.*?)</mark>', source_page, re.S)
    assert html.unescape(cited.group(1)) == seed_texts[name][int(start) : int(end)]


def test_each_result_shows_the_sentence_before_it_as_context(client):
    question = {"q": "Which court is the case filed in?", "k": 3}
    page = client.get("/", query_string=question).get_data(as_text=True)
    api = client.get("/api/v1/ask", query_string=question).get_json()
    shown = re.findall(
        r'<li class="result">.*?(?:<p class="context-before"><span class="visually-hidden">'
        r"Before it in the article: </span>(.*?)</p>)?\s*<blockquote",
        page,
        re.S,
    )
    expected = [(p["context_before"] or {"text": ""})["text"] for p in api["passages"]]
    assert [html.unescape(text) for text in shown] == expected
    assert any(expected)


def test_a_script_in_the_question_is_escaped(client):
    page = client.get("/", query_string={"q": "<script>alert(1)</script> damages"}).get_data(
        as_text=True
    )
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; damages" in page


def test_invalid_questions_explain_themselves(client):
    blank = client.get("/?q=+++")
    assert blank.status_code == 422
    assert "Type a question to search the articles." in blank.get_data(as_text=True)
    long = client.get("/", query_string={"q": "x" * 501})
    assert long.status_code == 422
    assert "at most 500 characters; this one has 501" in long.get_data(as_text=True)
    bad_k = client.get("/", query_string={"q": "court", "k": "lots"})
    assert bad_k.status_code == 422
    assert "k: Not a valid integer." in bad_k.get_data(as_text=True)


def test_no_answer_notice(client):
    page = client.get("/?q=what+is+it").get_data(as_text=True)
    assert "The articles hold no passage that answers this question." in page
    assert '<h2 id="answer-heading">No answer in the articles</h2>' in page
    assert "Passages answering" not in page and 'class="answer-box"' not in page
    # Nothing below is presented as the answer.
    assert '<strong class="answer">' not in page


def test_source_pages(client, seed_texts):
    listing = client.get("/sources").get_data(as_text=True)
    for name in seed_texts:
        assert f'href="/sources/{name}"' in listing
    name = sorted(seed_texts)[0]
    whole = client.get(f"/sources/{name}").get_data(as_text=True)
    assert 'id="cited"' not in whole
    assert html.escape(seed_texts[name][:60], quote=True) in whole


def test_unknown_source_and_bad_span_pages(client):
    missing = client.get("/sources/nope.txt")
    assert missing.status_code == 404 and missing.content_type.startswith("text/html")
    assert "There is no source named" in missing.get_data(as_text=True)
    name = "000_b6702db7aca47a35.txt"
    assert client.get(f"/sources/{name}?start=10&end=5").status_code == 400
    assert client.get(f"/sources/{name}?start=0&end=999999").status_code == 400


def test_corroboration_and_conflicts_are_shown(client):
    page = client.get("/?q=When+did+LinkedIn+update+its+privacy+policy%3F").get_data(as_text=True)
    assert "Sources disagree:</strong> this passage says “September 18, 2023”" in page
    assert "says “September 2024”" in page
    assert re.search(r"<summary>Also reported by \d+ other sources?</summary>", page)


def test_pages_send_security_headers(client):
    for path in ["/", "/?q=court", "/sources", "/sources/nope.txt"]:
        headers = client.get(path).headers
        policy = headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert "unsafe-inline" not in policy and "http" not in policy
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin"


def test_pages_have_no_inline_script_or_style(client):
    for path in [
        "/",
        "/?q=What+damages+are+sought%3F",
        "/sources",
        "/sources/000_b6702db7aca47a35.txt",
    ]:
        page = client.get(path).get_data(as_text=True)
        assert re.findall(r"<script[^>]*>", page) == ['<script src="/static/app.js" defer>']
        assert "<style" not in page and " style=" not in page and " on" + "click=" not in page


def link_query(page: str, css_class: str) -> tuple[str, dict]:
    """Path and query of the first link inside the element of `css_class`."""
    href = html.unescape(re.search(rf'class="{css_class}">[^<]*<a href="([^"]+)"', page).group(1))
    parts = urlsplit(href)
    return parts.path, parse_qs(parts.query)


def test_results_offer_json_and_a_plain_text_citation(client):
    page = client.get("/?q=Is+a+jury+trial+requested%3F&k=3").get_data(as_text=True)
    assert link_query(page, "as-json") == (
        "/api/v1/ask",
        {"q": ["Is a jury trial requested?"], "k": ["3"]},
    )
    url = html.unescape(re.search(r'data-citation-url="([^"]+)"', page).group(1))
    assert url.startswith("/sources/") and url.endswith("#cited")
    copies = {
        fmt: html.unescape(text)
        for fmt, text in re.findall(r'data-format="([^"]+)" data-copy="([^"]+)"', page)[:3]
    }
    assert copies["text"].startswith("“") and copies["text"].endswith(f". {url}")
    assert ", characters " in copies["text"]
    assert f"]({url})" in copies["markdown"]
    assert json.loads(copies["csl-json"])[0]["URL"] == url


def test_did_you_mean_links_the_respelt_question(client):
    page = client.get("/?q=What+damgaes+are+sought%3F").get_data(as_text=True)
    assert link_query(page, "did-you-mean") == (
        "/",
        {"q": ["What damages are sought?"], "k": ["5"]},
    )


def test_a_missing_index_is_a_clear_error_page(tmp_path):
    from qa_service.web.app import create_app

    client = create_app({"INDEX_DIR": str(tmp_path / "none")}).test_client()
    response = client.get("/?q=court")
    assert response.status_code == 503
    assert response.content_type.startswith("text/html")
    page = response.get_data(as_text=True)
    assert "The index is not available; try again later." in page
    assert str(tmp_path) not in page  # no server paths in what readers see
    # The form still comes up, only without what the index would say of the articles.
    home = client.get("/")
    assert home.status_code == 200
    assert 'id="q" name="q"' in home.get_data(as_text=True)
    assert 'class="corpus"' not in home.get_data(as_text=True)


def test_home_page_describes_articles_without_metadata(client, seed_texts):
    page = client.get("/").get_data(as_text=True)
    facts = dict(re.findall(r"<dt>([^<]+)</dt>\s*<dd>(.*?)</dd>", page, re.S))
    assert facts == {
        "Articles": f'{len(seed_texts)} · <a href="/sources">list them</a>',
        "Publishers": "not recorded",
        "Dates": "not recorded",
    }


def test_home_page_offers_the_configured_examples(app):
    app.config["EXAMPLE_QUESTIONS"] = "What damages are sought? | |Who filed the suit?"
    page = app.test_client().get("/").get_data(as_text=True)
    section = re.search(r'<section class="examples".*?</section>', page, re.S).group()
    examples = re.findall(r'<li><a href="([^"]+)">([^<]+)</a></li>', section)
    assert [(parse_qs(urlsplit(html.unescape(href)).query), text) for href, text in examples] == [
        ({"q": ["What damages are sought?"]}, "What damages are sought?"),
        ({"q": ["Who filed the suit?"]}, "Who filed the suit?"),
    ]


# Three small articles: one with every field, one with a publisher only, one with none.
DESCRIBED = {
    "ledger.txt": (
        "Council approves budget\n\nThe city council approved a budget of $4 million on "
        "Tuesday. The mayor said the money will repair the old bridge.",
        {"publisher": "The Daily Ledger", "date": "2025-01-27", "url": "https://example.org/b"},
    ),
    "wire.txt": (
        "Bridge repairs to start\n\nRepairs to the old bridge will start in March, the city "
        "said. The council approved the budget for them this week.",
        {"publisher": "Wire & Co", "date": "in the spring"},
    ),
    "notes.txt": ("Notes on the bridge\n\nThe old bridge was built in 1911 of stone.", None),
}


@pytest.fixture(scope="module")
def described(tmp_path_factory):
    """A client of an index of DESCRIBED, whose sidecars give publishers and dates."""
    from qa_service.index import build_index
    from qa_service.web.app import create_app

    folder = tmp_path_factory.mktemp("described")
    (folder / "articles").mkdir()
    for name, (text, metadata) in DESCRIBED.items():
        (folder / "articles" / name).write_text(text, encoding="utf-8")
        if metadata:
            sidecar = (folder / "articles" / name).with_suffix(".json")
            sidecar.write_text(json.dumps(metadata), encoding="utf-8")
    build_index(folder / "articles", folder / "index")
    return create_app(
        {"SEEDS_DIR": str(folder / "articles"), "INDEX_DIR": str(folder / "index"), "TESTING": True}
    ).test_client()


def test_home_page_summarises_publishers_and_dates_that_are_known(described):
    page = described.get("/").get_data(as_text=True)
    facts = dict(re.findall(r"<dt>([^<]+)</dt>\s*<dd>(.*?)</dd>", page, re.S))
    assert facts == {
        "Articles": '3 · <a href="/sources">list them</a>',
        "Publishers": "The Daily Ledger, Wire &amp; Co (1 article without one)",
        # "in the spring" is no date to span: it counts as undated.
        "Dates": "27 January 2025 (2 articles undated)",
    }


def test_citations_name_publisher_and_date_where_known(described):
    page = described.get("/?q=When+will+the+bridge+repairs+start%3F&k=3").get_data(as_text=True)
    metas = {found[1]: html.unescape(found[7]) for found in CITATION.findall(page)}
    assert metas["ledger.txt"].startswith("The Daily Ledger · 27 January 2025 · characters ")
    assert metas["wire.txt"].startswith("Wire & Co · in the spring · characters ")
    assert metas["notes.txt"].startswith("characters ")
    source = described.get("/sources/ledger.txt?start=0&end=7&q=bridge&k=3").get_data(as_text=True)
    header = re.search(r'<header class="source-head">(.*?)</header>', source, re.S).group(1)
    assert (
        '<a href="/?q=bridge&amp;k=3">' in header and "Back to the results for “bridge”" in header
    )
    assert "<h1>Council approves budget</h1>" in header
    assert re.search(
        r"The Daily Ledger · 27 January 2025 · <a href=\"https://example.org/b\"", header
    )


def test_a_source_page_reached_without_a_question_has_no_back_link(client, seed_texts):
    name = sorted(seed_texts)[0]
    assert "Back to the results" not in client.get(f"/sources/{name}").get_data(as_text=True)


# --- the page's parts, without a server


@pytest.mark.parametrize(
    ("value", "parts", "shown"),
    [
        ("2025-01-27", (2025, 1, 27), "27 January 2025"),
        ("2025-01", (2025, 1), "January 2025"),
        ("2025", (2025,), "2025"),
        ("2025-01-27T09:30:00Z", (2025, 1, 27), "27 January 2025"),
        ("2025-02-30", None, "2025-02-30"),
        ("Jan 27, 2025", None, "Jan 27, 2025"),
        ("", None, None),
        (None, None, None),
    ],
    ids=["day", "month", "year", "with-time", "no-such-day", "not-iso", "empty", "none"],
)
def test_dates_read_as_people_write_them_or_as_given(value, parts, shown):
    assert date_parts(value) == parts
    assert reader_date(value) == shown


REFERENCE = Reference(
    quote="The *court* [said] no",
    title="A_b [c]",
    source="a.txt",
    start=10,
    end=31,
    line_start=3,
    line_end=3,
    url="http://qa.example.org/sources/a.txt?start=10&end=31#cited",
    publisher="The Ledger",
    date="2025-01-27",
)


def test_each_citation_format_names_publisher_date_place_and_link():
    url = REFERENCE.url
    assert plain_text(REFERENCE) == (
        "“The *court* [said] no” — A_b [c], The Ledger, 27 January 2025, "
        f"a.txt, characters 10–31, line 3. {url}"
    )
    assert markdown(REFERENCE) == (
        r"“The \*court\* \[said\] no” — [A\_b \[c\]]"
        f"({url}), The Ledger, 27 January 2025, a.txt, characters 10–31, line 3"
    )
    assert json.loads(csl_json(REFERENCE)) == [
        {
            "id": "a.txt#10-31",
            "type": "article-newspaper",
            "title": "A_b [c]",
            "container-title": "The Ledger",
            "issued": {"date-parts": [[2025, 1, 27]]},
            "URL": url,
            "locator": "10–31",
            "note": "Characters 10–31 of a.txt",
        }
    ]


def test_citation_formats_leave_out_what_is_not_known():
    bare = replace(REFERENCE, publisher=None, date=None, line_end=5)
    assert (
        plain_text(bare)
        == f"“{bare.quote}” — A_b [c], a.txt, characters 10–31, lines 3–5. {bare.url}"
    )
    item = json.loads(csl_json(bare))[0]
    assert "container-title" not in item and "issued" not in item
    # A date that is not ISO 8601 goes to reference managers as written.
    assert json.loads(csl_json(replace(bare, date="Spring 2025")))[0]["issued"] == {
        "raw": "Spring 2025"
    }


def _source(name, publisher=None, date=None):
    return SourceInfo(name=name, title=name, passages=1, publisher=publisher, date=date)


@pytest.mark.parametrize(
    ("sources", "summary"),
    [
        (
            [
                _source("a", "B", "2025-01-27"),
                _source("b", "A", "2024-12"),
                _source("c", "B", "sometime"),
                _source("d"),
            ],
            CorpusSummary(4, ["B", "A"], 1, "December 2024", "27 January 2025", 2),
        ),
        ([_source("a"), _source("b")], CorpusSummary(2, [], 2, None, None, 2)),
        ([], CorpusSummary(0, [], 0, None, None, 0)),
    ],
    ids=["mixed", "no-metadata", "empty"],
)
def test_corpus_summary_counts_what_is_known(sources, summary):
    assert summarize_corpus(sources) == summary


@pytest.mark.parametrize(
    ("setting", "questions"),
    [
        ("", []),
        ("Who sued? | What for?|", ["Who sued?", "What for?"]),
        ([" Who sued? ", ""], ["Who sued?"]),
    ],
    ids=["unset", "separated", "list"],
)
def test_example_questions_setting(setting, questions):
    assert example_questions(setting) == questions


def _passage(text: str, words: list[str], answer: str, base: int = 100) -> AnswerPassage:
    """A passage of `text` at `base`, highlighting every place each of `words` stands."""
    spans = [
        Span(base + found.start(), base + found.end())
        for word in words
        for found in re.finditer(re.escape(word), text)
    ]
    start = text.index(answer)
    return AnswerPassage(
        id="p",
        rank=1,
        score=1.0,
        text=text,
        answer=AnswerSpan(answer, base + start, base + start + len(answer)),
        highlights=sorted(spans, key=lambda span: span.start),
        citation=Citation("a.txt", "A", base, base + len(text), base, base + len(text), 1, 1),
    )


def _marked(runs) -> str:
    """Runs as text: [marked] words, {answer} runs."""
    text = ""
    for in_answer, segments in runs:
        run = "".join(f"[{s.text}]" if s.matched else s.text for s in segments)
        text += f"{{{run}}}" if in_answer else run
    return text


@pytest.mark.parametrize(
    ("text", "words", "marked"),
    [
        ("He won't say who won it.", ["won", "t"], "He won't say who [won] it."),
        ("He won’t say who won it.", ["won"], "He won’t say who [won] it."),
        ("LinkedIn's policy and LinkedIn.", ["LinkedIn"], "[LinkedIn]'s policy and [LinkedIn]."),
        ("In the 2018s, not 2018.", ["2018"], "In the 2018s, not [2018]."),
        ("Mr O'Brien said so.", ["Brien"], "Mr O'[Brien] said so."),
    ],
    ids=["contraction", "curly-contraction", "possessive", "inside-a-word", "name"],
)
def test_only_whole_words_are_marked(text, words, marked):
    assert _marked(mark_runs(_passage(text, words, text))) == "{" + marked + "}"


def test_an_unanswered_question_marks_words_but_no_answer():
    passage = _passage("The court sat. It ruled for him.", ["court"], "It ruled for him.")
    assert _marked(mark_runs(passage)) == "The [court] sat. {It ruled for him.}"
    assert _marked(mark_runs(passage, with_answer=False)) == "The [court] sat. It ruled for him."


@pytest.mark.parametrize(
    ("answer", "sentence"),
    [
        ("$5 million", "The court awarded $5 million in damages."),
        ("The court awarded", "The court awarded $5 million in damages."),
        ("damages. Last", "The court awarded $5 million in damages. Last one."),
    ],
    ids=["inside", "at-the-start", "across-two"],
)
def test_the_answer_is_shown_in_its_sentence(answer, sentence):
    text = "First one. The court awarded $5 million in damages. Last one."
    start = text.index(answer)
    first, last = answer_sentence(text, start, start + len(answer))
    assert text[first:last] == sentence


def test_the_page_and_the_api_share_the_answer_cache(index_dir, monkeypatch):
    from qa_service.retrieval import search
    from qa_service.web.app import create_app

    asked = []
    real_ask = search.ask

    def counting_ask(*args, **kwargs):
        asked.append(args[1])
        return real_ask(*args, **kwargs)

    monkeypatch.setattr(search, "ask", counting_ask)
    client = create_app({"INDEX_DIR": str(index_dir)}).test_client()
    pages = [client.get("/?q=What+damages+are+sought%3F&k=5") for _ in range(3)]
    assert all(page.status_code == 200 for page in pages)
    assert pages[0].data == pages[1].data == pages[2].data
    api = client.post("/api/v1/ask", json={"question": "What damages are sought?", "k": 5})
    assert api.status_code == 200
    assert asked == ["What damages are sought?"]
    without = create_app({"INDEX_DIR": str(index_dir), "ANSWER_CACHE_SIZE": 0}).test_client()
    assert without.get("/?q=What+damages+are+sought%3F&k=5").data == pages[0].data
    assert len(asked) == 2
