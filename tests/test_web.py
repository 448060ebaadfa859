"""The HTML pages, checked on the rendered markup."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit


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
        r'<a href="(/sources/([^"?]+)\?start=(\d+)&amp;end=(\d+)&amp;version=[0-9a-f]{64}#cited)">'
        r"([^<]+)</a>",
        page,
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
    citation = html.unescape(re.search(r'data-citation="([^"]+)"', page).group(1))
    assert citation.startswith("“") and ", characters " in citation
    url = html.unescape(re.search(r'data-citation-url="([^"]+)"', page).group(1))
    assert url.startswith("/sources/") and url.endswith("#cited")


def test_did_you_mean_links_the_respelt_question(client):
    page = client.get("/?q=What+damgaes+are+sought%3F").get_data(as_text=True)
    assert link_query(page, "did-you-mean") == (
        "/",
        {"q": ["What damages are sought?"], "k": ["5"]},
    )


def test_a_missing_index_is_a_clear_error_page(tmp_path):
    from qa_service.app import create_app

    client = create_app({"INDEX_DIR": str(tmp_path / "none")}).test_client()
    response = client.get("/?q=court")
    assert response.status_code == 503
    assert response.content_type.startswith("text/html")
    page = response.get_data(as_text=True)
    assert "The index is not available; try again later." in page
    assert str(tmp_path) not in page  # no server paths in what readers see
