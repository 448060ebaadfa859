"""A damaged index, against the real gunicorn server: 503 in every worker, no worker lost.

Each fault is done to the generation the server is serving (its workers opened
it while it was intact) or before the server starts; either way every worker
must say the same, clients learn nothing of paths or causes, and a rebuild
brings the service back without a restart.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import httpx
import pytest
from postgres_support import postgres_server
from support import SERVERS, gunicorn_server

from qa_service.engines import generations
from qa_service.engines.generations import INDEX_FORMAT
from qa_service.engines.postgres.schema import schema_of
from qa_service.index import FILE_CHECK_SECONDS, build_index, configured_engine
from qa_service.retrieval.evaluation import load_questions
from qa_service.web.schemas import ErrorSchema

UNAVAILABLE = "The index is not available; try again later."
ASKS = 20  # enough requests to reach both workers many times


def generation_folder(index_dir: Path) -> Path:
    return (index_dir / "current").resolve()


def delete_generation(folder: Path) -> None:
    shutil.rmtree(folder)


def scramble_vectors(folder: Path) -> None:
    path = folder / "sentence-vectors.npy"
    data = path.read_bytes()
    path.write_bytes(data[:128] + bytes(reversed(data[128:])))  # same size


def truncate_segment(folder: Path) -> None:
    (segment,) = folder.glob("*.seg")
    with segment.open("r+b") as file:
        file.truncate(segment.stat().st_size // 2)


def rewrite_manifest(folder: Path) -> None:
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    first = manifest["sources"][0]
    first["text"] = first["text"].replace("LinkedIn", "Linkedln")  # citations would lie
    path.write_text(json.dumps(manifest), encoding="utf-8")


def reseal_manifest(folder: Path) -> None:
    """The text of a source edited in the manifest, and the manifest sealed again."""
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    first = manifest["sources"][0]
    first["text"] = first["text"].replace("LinkedIn", "Linkedln")
    (folder / "manifest.json").unlink()
    generations.write_manifest(folder, manifest)


FAULTS = [
    pytest.param(delete_generation, id="generation-deleted"),
    pytest.param(scramble_vectors, id="file-scrambled"),
    pytest.param(truncate_segment, id="segment-truncated"),
    pytest.param(rewrite_manifest, id="manifest-rewritten"),
]
# Sealed again, the manifest's digests hold: opening it finds what it says untrue.
FAULTS_AT_START = [*FAULTS[1:], pytest.param(reseal_manifest, id="manifest-resealed")]


@pytest.fixture()
def index_dir(seeds_dir, tmp_path) -> Path:
    folder = tmp_path / "index"
    build_index(seeds_dir, folder)
    return folder


def worker_pids(url: str) -> set[int]:
    master = SERVERS[url].pid
    return {int(pid) for pid in Path(f"/proc/{master}/task/{master}/children").read_text().split()}


def assert_unavailable_everywhere(url: str, index_dir: Path) -> None:
    for _ in range(ASKS):
        ready = httpx.get(f"{url}/readyz")
        assert ready.status_code == 503
        assert ready.json() == {"status": "unavailable", "reason": UNAVAILABLE}
        answer = httpx.post(f"{url}/api/v1/ask", json={"question": "What damages are sought?"})
        assert answer.status_code == 503
        assert answer.json() == {"error": {"status": 503, "message": UNAVAILABLE}}
        ErrorSchema().load(answer.json())
        assert str(index_dir) not in ready.text + answer.text


def assert_ready_everywhere(url: str) -> None:
    for _ in range(ASKS):
        assert httpx.get(f"{url}/readyz").status_code == 200
        answer = httpx.post(f"{url}/api/v1/ask", json={"question": "What damages are sought?"})
        assert answer.status_code == 200


@pytest.mark.parametrize("damage", FAULTS)
def test_damage_while_serving_is_503_in_every_worker_until_rebuilt(
    seeds_dir, index_dir, tmp_path, damage
):
    log_path = tmp_path / "gunicorn.log"
    with gunicorn_server(index_dir, log_path) as url:
        assert_ready_everywhere(url)
        workers = worker_pids(url)
        damage(generation_folder(index_dir))
        # Requests in the moment before a worker's next file check may still be answered
        # from what it read before; none may fail otherwise (500) or take a worker down.
        for number in range(ASKS):
            question = {"question": f"Who is plaintiff number {number}?"}
            assert httpx.post(f"{url}/api/v1/ask", json=question).status_code in (200, 503)
        time.sleep(FILE_CHECK_SECONDS * 1.5)
        assert_unavailable_everywhere(url, index_dir)
        assert worker_pids(url) == workers
        build_index(seeds_dir, index_dir)  # notices the damage: no --force needed
        assert_ready_everywhere(url)
        assert worker_pids(url) == workers
    log = log_path.read_text()
    assert "SIGBUS" not in log and "was sent" not in log
    assert log.count("Booting worker") == 2


@pytest.mark.parametrize("damage", FAULTS_AT_START)
def test_damage_before_start_up_is_503_in_every_worker(seeds_dir, index_dir, tmp_path, damage):
    damage(generation_folder(index_dir))
    log_path = tmp_path / "gunicorn.log"
    with gunicorn_server(index_dir, log_path, ready="/healthz") as url:
        assert_unavailable_everywhere(url, index_dir)
    # The cause, with the path and the fix, is in the log for the operator.
    log = log_path.read_text()
    assert str(index_dir) in log and "qa-service index" in log


def test_an_index_of_another_format_is_not_opened(index_dir, tmp_path):
    path = generation_folder(index_dir) / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest["format"] = INDEX_FORMAT - 1
    path.write_text(json.dumps(manifest), encoding="utf-8")
    with gunicorn_server(index_dir, tmp_path / "gunicorn.log", ready="/healthz") as url:
        assert httpx.get(f"{url}/readyz").status_code == 503
    assert "built by another version" in (tmp_path / "gunicorn.log").read_text()


def assert_503(response: httpx.Response) -> None:
    """The index's 503: the one error shape, and when to ask again."""
    assert response.status_code == 503
    assert response.json() == {"error": {"status": 503, "message": UNAVAILABLE}}
    assert int(response.headers["Retry-After"]) > 0


def test_damage_met_mid_request_is_503_and_the_worker_stops_serving_it(index_dir, tmp_path):
    log_path = tmp_path / "gunicorn.log"
    with gunicorn_server(index_dir, log_path, QA_WORKERS="1") as url:
        cached = {"question": "What damages are sought?"}
        assert httpx.post(f"{url}/api/v1/ask", json=cached).status_code == 200
        source = httpx.get(f"{url}/api/v1/sources").json()["sources"][0]["name"]
        (segment,) = generation_folder(index_dir).glob("*.seg")
        segment.write_bytes(b"")
        # Asked within a source, Whoosh reads postings from the segment: it finds the
        # damage before the worker's next file check does.
        within = {"question": "Who filed the lawsuit?", "sources": [source]}
        assert_503(httpx.post(f"{url}/api/v1/ask", json=within))
        # The worker no longer serves the generation: not even an answer it has cached.
        assert_503(httpx.post(f"{url}/api/v1/ask", json=cached))
        assert httpx.get(f"{url}/readyz").status_code == 503
    log = log_path.read_text()
    assert "Traceback" not in log and "unhandled error" not in log
    assert "changed while it was served" in log


def delete_passages(server, schema: str) -> None:
    server.sql(f"DELETE FROM {schema}.passages")


def drop_champions(server, schema: str) -> None:
    server.sql(f"DROP TABLE {schema}.champions")


@pytest.fixture()
def database(seeds_dir):
    """A PostgreSQL server holding the seeds' index."""
    with postgres_server() as server:
        build_index(seeds_dir, configured_engine(_postgres(server)))
        yield server


def _postgres(server) -> dict[str, str]:
    return {"BACKEND": "postgres", "DATABASE_URL": server.url}


def _served_by(server) -> dict[str, str]:
    return {f"QA_{name}": value for name, value in _postgres(server).items()}


def _ask_new_questions(url: str, tag: str, questions_path: Path) -> list[httpx.Response]:
    """The evaluation's questions, worded anew (no worker has their answers cached), so
    each reads passages the last ones did not."""
    return [
        httpx.post(f"{url}/api/v1/ask", json={"question": f"{item['question']} ({tag})"})
        for item in load_questions(questions_path)
    ]


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(delete_passages, id="rows-deleted"),
        pytest.param(drop_champions, id="table-dropped"),
    ],
)
def test_damaged_postgres_tables_are_503_never_500(database, questions_path, tmp_path, damage):
    log_path = tmp_path / "gunicorn.log"
    served = _served_by(database)
    with gunicorn_server(tmp_path / "unused", log_path, QA_WORKERS="1", **served) as url:
        schema = schema_of(configured_engine(_postgres(database)).current_name())
        damage(database, schema)
        # Answers from rows the worker has cached may still come; the first question that
        # reads the damage is refused, and every one after it.
        statuses = [
            response.status_code for response in _ask_new_questions(url, "after", questions_path)
        ]
        assert 503 in statuses and set(statuses[statuses.index(503) :]) == {503}, statuses
        assert_503(httpx.post(f"{url}/api/v1/ask", json={"question": "What damages are sought?"}))
        assert httpx.get(f"{url}/readyz").status_code == 503
    log = log_path.read_text()
    assert "Traceback" not in log and f"{schema} is damaged" in log


def end_sessions(server) -> None:
    server.sql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )


def restart(server) -> None:
    server.stop()
    server.start()


@pytest.mark.parametrize(
    "loss", [pytest.param(end_sessions, id="sessions-ended"), pytest.param(restart, id="restarted")]
)
def test_a_lost_database_connection_is_503_then_served_again(
    database, questions_path, tmp_path, loss
):
    with gunicorn_server(
        tmp_path / "unused", tmp_path / "gunicorn.log", **_served_by(database)
    ) as url:
        assert_ready_everywhere(url)
        loss(database)
        for response in _ask_new_questions(url, "during", questions_path):
            assert response.status_code in (200, 503)
            if response.status_code == 503:
                assert_503(response)
        # Each worker opens a new connection when it finds its own lost: no restart, no rebuild.
        deadline = time.monotonic() + 10 * FILE_CHECK_SECONDS
        while not all(
            r.status_code == 200 for r in _ask_new_questions(url, "again", questions_path)
        ):
            assert time.monotonic() < deadline, "the workers never connected again"
            time.sleep(0.2)
        assert_ready_everywhere(url)
