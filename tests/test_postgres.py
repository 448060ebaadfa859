"""The PostgreSQL engine against real servers: one server, and a coordinator with two shards."""

from __future__ import annotations

import time

import httpx
import psycopg
import pytest
from postgres_support import postgres_cluster, postgres_server
from support import LOGS, gunicorn_server

from qa_service.engines.postgres import engine as postgres_engine
from qa_service.engines.postgres import generation as postgres_generation
from qa_service.engines.postgres.schema import APPLICATION_NAME, schema_of, shard_table
from qa_service.index import FILE_CHECK_SECONDS, build_index, configured_engine, open_generation
from qa_service.retrieval.evaluation import load_questions
from qa_service.retrieval.search import ask


@pytest.fixture(scope="module")
def cluster():
    with postgres_cluster(shards=2) as running:
        yield running


@pytest.fixture(scope="module")
def sharded(cluster, seeds_dir):
    """The seeds indexed into the cluster; the engine that reads them."""
    engine = configured_engine(
        {
            "BACKEND": "postgres",
            "DATABASE_URL": cluster.coordinator.url,
            "DATABASE_SHARDS": ",".join(cluster.shard_names),
        }
    )
    build_index(seeds_dir, engine)
    return engine


def _first_citations(generation, questions):
    return [ask(generation, q["question"]).passages[0].citation for q in questions]


def test_one_server_answers_as_whoosh_does(seeds_dir, index_dir, questions_path):
    questions = load_questions(questions_path)
    with postgres_server() as server:
        engine = configured_engine({"BACKEND": "postgres", "DATABASE_URL": server.url})
        report = build_index(seeds_dir, engine)
        assert report.built and report.passages == open_generation(index_dir).info.passage_count
        assert not build_index(seeds_dir, engine).built
        assert _first_citations(open_generation(engine), questions) == _first_citations(
            open_generation(index_dir), questions
        )


def _rows_per_shard(cluster, engine) -> list[int]:
    """How many passages of the current generation each shard holds."""
    schema = engine.current_name().lower().replace("-", "_")
    table = f"{schema}.{schema}_passages"
    counts = []
    for shard in cluster.shards:
        with psycopg.connect(shard.url) as connection:
            if connection.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0] is None:
                counts.append(0)
            else:
                counts.append(connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    return counts


def test_shards_hold_the_passages_and_answer_as_whoosh_does(
    cluster, sharded, index_dir, questions_path
):
    assert all(_rows_per_shard(cluster, sharded))
    questions = load_questions(questions_path)
    assert _first_citations(open_generation(sharded), questions) == _first_citations(
        open_generation(index_dir), questions
    )


def test_rows_are_read_from_the_shards_themselves(cluster, sharded, questions_path):
    # Not through the coordinator, whose postgres_fdw would carry each row to it and on.
    generation = open_generation(sharded)
    for question in load_questions(questions_path)[:3]:
        ask(generation, question["question"])
    for shard in cluster.shards:
        with psycopg.connect(shard.url) as connection:
            readers = connection.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                (APPLICATION_NAME,),
            ).fetchone()
            assert readers[0] >= 1


def test_passage_vectors_stay_in_their_rows(cluster, sharded):
    # Not compressed or moved out to the TOAST table: a question reads hundreds of them.
    table = shard_table(schema_of(sharded.current_name()), "passages")
    for shard in cluster.shards:
        with psycopg.connect(shard.url) as connection:
            storage = connection.execute(
                "SELECT attstorage FROM pg_attribute WHERE attrelid = %s::regclass"
                " AND attname = 'vector'",
                (table,),
            ).fetchone()
            assert storage == ("p",)


def _generations(cluster) -> tuple[str, list[str], set[str]]:
    """The current generation, those the database lists, and the schemas it holds."""
    with psycopg.connect(cluster.coordinator.url) as connection:
        current = connection.execute("SELECT name FROM qa_current").fetchone()[0]
        kept = [row[0] for row in connection.execute("SELECT name FROM qa_generations")]
        schemas = {
            row[0]
            for row in connection.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'gen_%'"
            )
        }
    return current, kept, schemas


def test_a_rebuild_swaps_generations_and_drops_the_oldest(seeds_dir, cluster, sharded, monkeypatch):
    monkeypatch.setattr(postgres_engine, "REPLACED_KEPT_SECONDS", 0)
    names = [build_index(seeds_dir, sharded, force=True).generation for _ in range(3)]
    current, kept, schemas = _generations(cluster)
    assert current == names[-1]
    assert sorted(kept) == sorted(names[-2:])
    assert schemas == {name.lower().replace("-", "_") for name in names[-2:]}


def test_a_generation_replaced_a_moment_ago_stays_for_workers_yet_to_ask(
    seeds_dir, cluster, sharded
):
    """A worker learns of a new generation within CHECK_SECONDS; rebuilds may come faster."""
    names = [build_index(seeds_dir, sharded, force=True).generation for _ in range(3)]
    current, kept, schemas = _generations(cluster)
    assert current == names[-1] and set(names) <= set(kept)
    assert {name.lower().replace("-", "_") for name in names} <= schemas
    old = postgres_generation.PostgresGeneration(names[0], cluster.coordinator.url)
    assert old.passages([0])[0].text


def test_caches_stay_within_their_bytes(sharded, index_dir, questions_path, monkeypatch):
    # Smaller than what the questions read (the seeds' vectors are one cluster of 140 KB).
    budgets = {"CACHED_PASSAGE_BYTES": 40_000, "CACHED_VECTOR_BYTES": 200_000,
               "CACHED_WHOLE_VECTOR_BYTES": 40_000, "CACHED_SOURCE_BYTES": 40_000}  # fmt: skip
    for name, budget in budgets.items():
        monkeypatch.setattr(postgres_generation, name, budget)
    generation, whoosh = open_generation(sharded), open_generation(index_dir)
    for question in load_questions(questions_path):
        answers = ask(generation, question["question"])
        assert answers.passages == ask(whoosh, question["question"]).passages
    caches = (generation._rows, generation._cluster_vectors, generation._vectors,
              generation.sources._cache)  # fmt: skip
    for cache, budget in zip(caches, budgets.values(), strict=True):
        assert 0 < cache.held <= budget
        assert cache.held == sum(cache.weigh(value) for value in cache.values())


def test_a_down_shard_is_a_clear_503_until_it_returns(cluster, sharded, tmp_path):
    log = tmp_path / "gunicorn.log"
    environment = {
        "QA_BACKEND": "postgres",
        "QA_DATABASE_URL": cluster.coordinator.url,
        "QA_DATABASE_SHARDS": ",".join(cluster.shard_names),
    }
    with gunicorn_server(tmp_path / "unused", log, **environment) as url:
        question = {"question": "Who filed the lawsuit?"}
        assert httpx.post(url + "/api/v1/ask", json=question).status_code == 200
        cluster.shards[1].stop()
        try:
            # A question no worker has cached: answering it needs the shards.
            response = httpx.post(url + "/api/v1/ask", json={"question": "Was it a jury trial?"})
            assert response.status_code == 503
            assert response.json()["error"]["status"] == 503
            assert "shard1" not in response.text  # causes stay in the log
            assert 'server "shard1"' in LOGS[url].read_text()
        finally:
            cluster.shards[1].start()
        # Each worker looks again at most FILE_CHECK_SECONDS after it saw the fault (the
        # one that answered 503 stopped serving until then): wait until both are ready.
        deadline = time.monotonic() + 5 * FILE_CHECK_SECONDS
        while not all(httpx.get(url + "/readyz").status_code == 200 for _ in range(20)):
            assert time.monotonic() < deadline, "a worker never found the shard back"
            time.sleep(0.1)
        again = {"question": "What damages are sought?"}
        assert httpx.post(url + "/api/v1/ask", json=again).status_code == 200
        assert httpx.get(url + "/readyz").status_code == 200


def test_questions_limited_to_sources_rank_as_whoosh_does(sharded, index_dir, questions_path):
    whoosh, postgres = open_generation(index_dir), open_generation(sharded)
    sources = sorted(whoosh.sources)[:2]
    for question in load_questions(questions_path)[:10]:
        expected = ask(whoosh, question["question"], sources=sources).passages
        found = ask(postgres, question["question"], sources=sources).passages
        assert [p.citation for p in found] == [p.citation for p in expected]
        assert {p.citation.source for p in found} <= set(sources)


def test_a_shard_added_takes_its_part_at_the_next_build(seeds_dir, cluster):
    settings = {"BACKEND": "postgres", "DATABASE_URL": cluster.coordinator.url}
    one = configured_engine({**settings, "DATABASE_SHARDS": "shard0"})
    build_index(seeds_dir, one, force=True)
    first, second = _rows_per_shard(cluster, one)
    assert first > 0 and second == 0
    both = configured_engine({**settings, "DATABASE_SHARDS": "shard0,shard1"})
    build_index(seeds_dir, both, force=True)
    first, second = _rows_per_shard(cluster, both)
    assert first > 0 and second > 0
