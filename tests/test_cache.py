"""The answer cache: hits, least-recently-used eviction, its byte bound, and its key."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from qa_service.index import build_index
from qa_service.web.app import create_app
from qa_service.web.cache import AnswerCache

# '{"a": "é"}' is 10 characters but 11 bytes of UTF-8; the key 'k' is 3 bytes as repr: 14.
BODY, BODY_COST = {"a": "é"}, 14


def test_a_stored_body_is_found_under_its_key_only():
    cache = AnswerCache(size=10, max_bytes=1000)
    assert cache.put("k", BODY) is BODY
    assert cache.get("k") is BODY
    assert cache.get("j") is None
    assert cache.bytes == BODY_COST


def test_the_least_recently_used_entry_goes_first():
    cache = AnswerCache(size=2, max_bytes=1000)
    cache.put("k", BODY)
    cache.put("j", BODY)
    cache.get("k")  # now "j" is the least recently used
    cache.put("m", BODY)
    assert cache.get("j") is None
    assert cache.get("k") is BODY and cache.get("m") is BODY
    assert cache.bytes == 2 * BODY_COST


def test_bytes_are_counted_in_utf8_and_bound_the_cache():
    cache = AnswerCache(size=10, max_bytes=2 * BODY_COST)
    cache.put("k", BODY)
    cache.put("j", BODY)
    assert cache.bytes == 2 * BODY_COST
    cache.put("m", BODY)  # one byte too many for three: "k" goes
    assert cache.get("k") is None
    assert cache.get("j") is BODY and cache.get("m") is BODY
    assert cache.bytes == 2 * BODY_COST


def test_storing_a_key_again_replaces_its_body_and_its_bytes():
    cache = AnswerCache(size=10, max_bytes=1000)
    cache.put("k", {"a": "x" * 100})
    cache.put("k", BODY)
    assert cache.get("k") is BODY
    assert cache.bytes == BODY_COST


def test_a_body_larger_than_the_budget_is_not_kept_and_evicts_nothing():
    cache = AnswerCache(size=10, max_bytes=BODY_COST + 10)
    cache.put("k", BODY)
    huge = {"a": "x" * 100}
    assert cache.put("j", huge) is huge
    assert cache.get("j") is None
    assert cache.get("k") is BODY


def test_a_size_or_budget_of_zero_keeps_nothing():
    for cache in (AnswerCache(size=0, max_bytes=1000), AnswerCache(size=10, max_bytes=0)):
        assert cache.put("k", BODY) is BODY
        assert cache.get("k") is None
        assert cache.bytes == 0


def _cost(key: str, body: dict) -> int:
    return len(json.dumps(body, ensure_ascii=False).encode()) + len(repr(key).encode())


@given(
    size=st.integers(min_value=1, max_value=5),
    max_bytes=st.integers(min_value=0, max_value=200),
    puts=st.lists(
        st.tuples(st.sampled_from("abcdefg"), st.text(max_size=40)), min_size=1, max_size=30
    ),
)
def test_the_bounds_hold_after_any_puts(size, max_bytes, puts):
    cache = AnswerCache(size=size, max_bytes=max_bytes)
    for key, text in puts:
        cache.put(key, {"text": text})
    assert cache.bytes <= max_bytes
    kept = {key: body for key in "abcdefg" if (body := cache.get(key)) is not None}
    assert len(kept) <= size
    assert cache.bytes == sum(_cost(key, body) for key, body in kept.items())
    last_key, last_text = puts[-1]
    fits = _cost(last_key, {"text": last_text}) <= max_bytes
    assert (kept.get(last_key) == {"text": last_text}) == fits


REPAIRS = (
    "Harbour Wall Repaired\n\nThe harbour wall was rebuilt last spring. The repairs cost "
    "{cost} million euros, the port authority said on Tuesday.\n"
)
FERRY = (
    "Ferry Timetable Changes\n\nThe island ferry will sail twice a day from June. The "
    "operator said the summer timetable starts on the first Monday of the month.\n"
)
QUESTION = {"question": "How much did the repairs cost?", "k": 1}


def test_the_service_caches_answers_per_index_generation(tmp_path):
    corpus, index = tmp_path / "articles", tmp_path / "index"
    corpus.mkdir()
    (corpus / "ferry.txt").write_text(FERRY, encoding="utf-8")
    (corpus / "harbour.txt").write_text(REPAIRS.format(cost=12), encoding="utf-8")
    build_index(corpus, index)
    app = create_app({"INDEX_DIR": str(index), "TESTING": True})
    cache, client = app.extensions["qa_answer_cache"], app.test_client()

    first = client.post("/api/v1/ask", json=QUESTION)
    assert "12 million" in first.get_json()["passages"][0]["text"]
    stored = cache.bytes
    assert stored > 0
    again = client.post("/api/v1/ask", json=QUESTION)
    assert again.get_json()["passages"] == first.get_json()["passages"]
    assert cache.bytes == stored  # answered from the cache: nothing added

    (corpus / "harbour.txt").write_text(REPAIRS.format(cost=15), encoding="utf-8")
    build_index(corpus, index)
    rebuilt = client.post("/api/v1/ask", json=QUESTION)
    assert rebuilt.headers["X-Index-Generation"] != first.headers["X-Index-Generation"]
    assert "15 million" in rebuilt.get_json()["passages"][0]["text"]
    assert cache.bytes > stored  # a new entry beside the old generation's
