"""The production server under stress: rebuilds while serving, killed workers, bad start-ups."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from support import ROOT, SERVERS, gunicorn_server

from qa_service.engines.generations import GENERATIONS_KEPT
from qa_service.index import build_index

NEW_ARTICLE = "Zebra crossings were painted outside the courthouse on Tuesday. Nobody objected.\n"


class Load:
    """Threads asking questions in a loop and keeping every outcome."""

    def __init__(self, url: str, questions: list[str], threads: int = 4):
        self.url, self.questions = url, questions
        self.outcomes: list[tuple[float, int | str, str | None, dict | None]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(n,)) for n in range(threads)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _run(self, number: int) -> None:
        turn = number
        with httpx.Client(base_url=self.url, timeout=10) as client:
            while not self._stop.is_set():
                question = self.questions[turn % len(self.questions)]
                turn += 1
                try:
                    response = client.post("/api/v1/ask", json={"question": question})
                    body = response.json() if response.status_code == 200 else None
                    generation = response.headers.get("X-Index-Generation")
                    self.outcomes.append((time.monotonic(), response.status_code, generation, body))
                except httpx.HTTPError as exc:
                    self.outcomes.append((time.monotonic(), type(exc).__name__, None, None))

    def failures(self) -> list:
        return [outcome[:3] for outcome in self.outcomes if outcome[1] != 200]


def manifest_texts(index_dir: Path, generation: str) -> dict[str, str]:
    manifest = json.loads((index_dir / generation / "manifest.json").read_text(encoding="utf-8"))
    return {source["name"]: source["text"] for source in manifest["sources"]}


def test_rebuild_under_load_swaps_cleanly(seeds_dir, tmp_path):
    seeds, index_dir = tmp_path / "seeds", tmp_path / "index"
    shutil.copytree(seeds_dir, seeds)
    first = build_index(seeds, index_dir).generation
    questions = ["What damages are sought?", "Which court is the case filed in?", "zebra crossings"]
    rebuild = [sys.executable, "-m", "qa_service.cli", "index", "--seeds", str(seeds)]
    with gunicorn_server(index_dir, tmp_path / "gunicorn.log") as url, Load(url, questions) as load:
        time.sleep(1.0)
        (seeds / "005_zebra.txt").write_text(NEW_ARTICLE, encoding="utf-8")
        subprocess.run([*rebuild, "--index", str(index_dir)], cwd=ROOT, check=True, timeout=120)
        swapped_at = time.monotonic()
        second = os.readlink(index_dir / "current")
        deadline = swapped_at + 5.0
        while time.monotonic() < deadline and not _served(load, "005_zebra.txt"):
            time.sleep(0.05)
        first_new_answer = _served(load, "005_zebra.txt")
        # A third generation: the first must then be cleaned up, still with no failure.
        (seeds / "006_more.txt").write_text("More zebra news arrived later.\n", encoding="utf-8")
        subprocess.run([*rebuild, "--index", str(index_dir)], cwd=ROOT, check=True, timeout=120)
        time.sleep(1.0)
    third = os.readlink(index_dir / "current")
    assert load.failures() == []
    assert len(load.outcomes) > 50
    assert first_new_answer is not None and first_new_answer - swapped_at <= 5.0
    generations = sorted(path.name for path in index_dir.glob("gen-*"))
    assert first not in generations and len(generations) == GENERATIONS_KEPT
    assert {second, third} == set(generations)
    # Every response cites text from the one generation it names, and only from it.
    texts = {name: manifest_texts(index_dir, name) for name in (second, third)}
    served = {generation for _, _, generation, _ in load.outcomes}
    assert {first, second} <= served
    for _, _, generation, body in load.outcomes:
        if generation == first:
            continue  # deleted by now; its texts are the seeds, checked below
        for passage in body["passages"]:
            citation = passage["citation"]
            source = texts[generation][citation["source"]]
            assert source[citation["start"] : citation["end"]] == passage["text"]
    seed_texts = {p.name: p.read_text(encoding="utf-8") for p in seeds_dir.glob("*.txt")}
    for _, _, generation, body in load.outcomes:
        if generation == first:
            assert {p["citation"]["source"] for p in body["passages"]} <= set(seed_texts)


def _served(load: Load, source: str) -> float | None:
    """When an answer first cited `source`, if it has."""
    for at, status, _, body in list(load.outcomes):
        if status == 200 and any(p["citation"]["source"] == source for p in body["passages"]):
            return at
    return None


def _workers(master: int) -> set[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return {int(pid) for pid in children}


def test_a_killed_worker_is_replaced_and_only_its_requests_fail(index_dir, tmp_path):
    questions = ["What damages are sought?", "Is a jury trial requested?"]
    with gunicorn_server(index_dir, tmp_path / "gunicorn.log") as url:
        master = SERVERS[url].pid
        before = _workers(master)
        assert len(before) == 2
        with Load(url, questions, threads=4) as load:
            time.sleep(1.0)
            os.kill(sorted(before)[0], signal.SIGKILL)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and len(_workers(master) - before) < 1:
                time.sleep(0.1)
            time.sleep(1.0)
        after = _workers(master)
        assert len(after) == 2 and after != before
        # At most the requests the killed worker was holding: one per load thread.
        assert len(load.failures()) <= 4, load.failures()
        assert sum(1 for outcome in load.outcomes if outcome[1] == 200) > 50
        assert httpx.post(f"{url}/api/v1/ask", json={"question": "court"}).status_code == 200


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_start_up_without_a_usable_index_says_so_once_and_serves_503(seeds_dir, tmp_path, damage):
    index_dir = tmp_path / "index"
    if damage == "corrupt":
        generation = build_index(seeds_dir, index_dir).generation
        for toc in (index_dir / generation).glob("*.toc"):
            toc.write_bytes(b"not a table of contents")
    log_path = tmp_path / "gunicorn.log"
    with gunicorn_server(index_dir, log_path, ready="/healthz") as url:
        ready = httpx.get(f"{url}/readyz")
        assert ready.status_code == 503 and ready.json()["status"] == "unavailable"
        assert httpx.get(f"{url}/api/v1/ask?q=court").status_code == 503
        time.sleep(2.0)  # long enough for a crash loop to show
        assert SERVERS[url].poll() is None
    log = log_path.read_text()
    expected = "no index at" if damage == "missing" else "is unreadable"
    master_lines = [line for line in log.splitlines() if "[ERROR]" in line]
    assert len(master_lines) == 1 and expected in master_lines[0]
    assert f"run `qa-service index --index {index_dir}`" in master_lines[0]
    assert "Traceback" not in log
    assert log.count("Booting worker") == 2  # no worker died and was replaced
