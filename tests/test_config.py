"""Settings: defaults, then QA_* environment variables, then the mapping passed in."""

from __future__ import annotations

import pytest

from qa_service.config import DEFAULTS, ENVIRONMENT, load_config
from qa_service.web.app import create_app


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """No QA_* setting from the shell running the tests."""
    for variable in ENVIRONMENT:
        monkeypatch.delenv(variable, raising=False)


def test_every_variable_names_a_setting_with_a_default():
    assert set(ENVIRONMENT.values()) <= DEFAULTS.keys()
    assert len(set(ENVIRONMENT.values())) == len(ENVIRONMENT)


def test_without_variables_or_overrides_the_defaults_hold():
    assert load_config() == DEFAULTS
    assert load_config({}) == DEFAULTS


def test_a_variable_beats_the_default_and_an_override_beats_the_variable(monkeypatch):
    monkeypatch.setenv("QA_SEEDS", "/srv/articles")
    monkeypatch.setenv("QA_INDEX", "/srv/index")
    config = load_config({"INDEX_DIR": "/tmp/other-index"})
    assert config["SEEDS_DIR"] == "/srv/articles"
    assert config["INDEX_DIR"] == "/tmp/other-index"
    assert config["BACKEND"] == DEFAULTS["BACKEND"]


def test_an_override_may_add_a_setting_without_a_variable():
    assert load_config({"TESTING": True})["TESTING"] is True


@pytest.mark.parametrize(
    ("variable", "text", "setting", "value"),
    [
        ("QA_ANSWER_CACHE_SIZE", "7", "ANSWER_CACHE_SIZE", 7),
        ("QA_ANSWER_CACHE_BYTES", "1048576", "ANSWER_CACHE_BYTES", 1_048_576),
        ("QA_MAX_BODY_BYTES", "4096", "MAX_CONTENT_LENGTH", 4096),
        ("QA_READ_NEEDS_KEY", "1", "READ_NEEDS_KEY", 1),
        ("QA_PROXY_HOPS", "2", "PROXY_HOPS", 2),
        ("QA_LAYER_SHARE", "0.25", "LAYER_SHARE", 0.25),
        # A whole number is still a share: the setting's type, not the text's, decides.
        ("QA_LAYER_SHARE", "1", "LAYER_SHARE", 1.0),
        ("QA_DATABASE_SHARDS", "shard_a,shard_b", "DATABASE_SHARDS", "shard_a,shard_b"),
        ("QA_PUBLIC_URL", "https://qa.example.org", "PUBLIC_URL", "https://qa.example.org"),
    ],
    ids=["int", "large-int", "renamed", "flag", "hops", "float", "float-from-int", "text", "url"],
)
def test_a_variable_takes_the_type_of_its_default(monkeypatch, variable, text, setting, value):
    monkeypatch.setenv(variable, text)
    loaded = load_config()[setting]
    assert loaded == value
    assert type(loaded) is type(DEFAULTS[setting])


@pytest.mark.parametrize(
    ("variable", "text"),
    [
        ("QA_ANSWER_CACHE_SIZE", "lots"),
        ("QA_ANSWER_CACHE_SIZE", "2.5"),
        ("QA_LAYER_SHARE", "a tenth"),
        ("QA_READ_NEEDS_KEY", "yes"),
    ],
    ids=["word-for-int", "float-for-int", "word-for-float", "word-for-flag"],
)
def test_a_number_setting_refuses_text_that_is_not_one(monkeypatch, variable, text):
    monkeypatch.setenv(variable, text)
    with pytest.raises(ValueError, match=f"^{variable}="):
        load_config()


def test_the_app_takes_its_settings_in_the_same_order(monkeypatch, tmp_path):
    monkeypatch.setenv("QA_ANSWER_CACHE_SIZE", "7")
    monkeypatch.setenv("QA_PROXY_HOPS", "1")
    # Nothing is opened when the app is made, so an empty folder serves as the index.
    app = create_app({"INDEX_DIR": str(tmp_path), "PROXY_HOPS": 0})
    assert app.config["ANSWER_CACHE_SIZE"] == 7
    assert app.extensions["qa_answer_cache"].size == 7
    assert app.config["PROXY_HOPS"] == 0
    assert app.config["INDEX_DIR"] == str(tmp_path)
