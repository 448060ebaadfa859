"""The HTML pages, checked on the rendered markup."""

from __future__ import annotations

import html
import re


def test_search_page_has_a_labelled_form(client):
    response = client.get("/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert '<label for="q">' in page and 'id="q" name="q"' in page and "autofocus" in page
    assert "<main" in page and "<header" in page and "<footer" in page


def test_results_show_rank_marks_answer_and_a_citation_link(client, seed_texts):
    page = client.get("/?q=What+damages+are+sought%3F").get_data(as_text=True)
    api = client.get("/api/v1/ask?q=What+damages+are+sought%3F").get_json()
    assert page.count('class="result"') == len(api["passages"]) > 0
    assert '<strong class="answer">' in page and "<mark>damages</mark>" in page
    link = re.search(
        r'<a href="(/sources/([^"?]+)\?start=(\d+)&amp;end=(\d+)#cited)">([^<]+)</a>', page
    )
    assert link, page
    name, start, end = link.group(2), int(link.group(3)), int(link.group(4))
    assert link.group(5).endswith(f"— {name}, characters {start}–{end}")
    # The linked source page highlights exactly the cited passage.
    source_page = client.get(html.unescape(link.group(1))).get_data(as_text=True)
    cited = re.search(r'<mark id="cited" class="cited">(.*?)</mark>', source_page, re.S)
    assert html.unescape(cited.group(1)) == seed_texts[name][start:end]


def test_a_script_in_the_question_is_escaped(client):
    page = client.get("/", query_string={"q": "<script>alert(1)</script> damages"}).get_data(
        as_text=True
    )
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; damages" in page


def test_invalid_questions_explain_themselves(client):
    blank = client.get("/?q=+++")
    assert blank.status_code == 422
    assert "Length must be between 1 and 500." in blank.get_data(as_text=True)
    long = client.get("/", query_string={"q": "x" * 501})
    assert long.status_code == 422


def test_no_answer_notice(client):
    page = client.get("/?q=what+is+it").get_data(as_text=True)
    assert "The articles hold no passage that answers this question." in page


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
