"""Load benchmark: the production gunicorn service under wrk, /api/v1/ask against /healthz.

For each corpus (the seeds, and the Python 3.11 documentation sources from
Debian's python3.11-doc package), it builds the index (timing it), starts the
service with the production gunicorn config on a free loopback port, and runs
wrk at 1, 16 and 64 connections against /healthz and against POST /api/v1/ask
cycling through at least 200 distinct questions. It prints requests/s, p50,
p99, errors and the ratio ask/healthz for each, in the same run.

    python benchmarks/load.py [--corpus seeds pydocs] [--duration 5]

Needs wrk (apt-get install wrk) and, for the Python docs, apt-get download.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support import gunicorn_server  # noqa: E402

from qa_service.corpus import read_corpus  # noqa: E402
from qa_service.evaluation import load_questions  # noqa: E402
from qa_service.index import build_index  # noqa: E402

CONNECTIONS = (1, 16, 64)
QUESTIONS = 240
WRK_SCRIPT = """
local bodies = %(bodies)s
local next_body = 0
local path = "%(path)s"
request = function()
  if path == "/healthz" then
    return wrk.format("GET", path)
  end
  next_body = next_body %% #bodies + 1
  return wrk.format("POST", path, {["Content-Type"] = "application/json"}, bodies[next_body])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %%d, "duration_us": %%d, "errors": %%d, "p50_us": %%d, "p99_us": %%d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def python_docs(work: Path) -> Path:
    """The .rst.txt sources of the Python 3.11 documentation, from Debian's package."""
    download = work / "deb"
    download.mkdir()
    subprocess.run(
        ["apt-get", "download", "python3.11-doc"], cwd=download, check=True, capture_output=True
    )
    (package,) = download.glob("python3.11-doc_*.deb")
    extracted = work / "extracted"
    subprocess.run(["dpkg-deb", "-x", str(package), str(extracted)], check=True)
    sources = extracted / "usr/share/doc/python3.11/html/_sources"
    corpus = work / "pydocs"
    for path in sources.rglob("*.rst.txt"):
        target = corpus / path.relative_to(sources)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    return corpus


def questions_for(corpus: Path, count: int = QUESTIONS) -> list[str]:
    """The project's questions plus questions made from runs of words in the corpus."""
    questions = [q["question"] for q in load_questions(ROOT / "tests/data/questions.jsonl")]
    rng = random.Random(7)
    texts = [article.text for article in read_corpus(corpus)]
    while len(set(questions)) < count:
        words = re.findall(r"[A-Za-z]{4,}", rng.choice(texts))
        if len(words) < 3:
            continue
        start = rng.randrange(len(words) - 2)
        questions.append(f"What does it say about {' '.join(words[start : start + 3]).lower()}?")
    return list(dict.fromkeys(questions))[:count]


def run_wrk(url: str, path: str, bodies: list[str], connections: int, duration: int, work: Path):
    """One wrk run; returns requests/s, p50 ms, p99 ms, errors."""
    script = work / "wrk.lua"
    lua_bodies = "{" + ",".join(json.dumps(body) for body in bodies) + "}"
    script.write_text(WRK_SCRIPT % {"bodies": lua_bodies, "path": path})
    threads = min(connections, 2)
    command = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s"]
    result = subprocess.run(
        [*command, "-s", str(script), url], capture_output=True, text=True, check=True
    )
    line = next(line for line in result.stdout.splitlines() if line.startswith("RESULT "))
    figures = json.loads(line.removeprefix("RESULT "))
    return {
        "rps": figures["requests"] / (figures["duration_us"] / 1e6),
        "p50": figures["p50_us"] / 1000,
        "p99": figures["p99_us"] / 1000,
        "errors": figures["errors"],
    }


def bench_corpus(name: str, corpus: Path, duration: int, work: Path) -> list[str]:
    """Index build and the load table for one corpus."""
    index_dir = work / f"index-{name}"
    started = time.perf_counter()
    report = build_index(corpus, index_dir)
    seconds = time.perf_counter() - started
    bodies = [json.dumps({"question": q}) for q in questions_for(corpus)]
    lines = [
        "",
        f"### {name}: {report.articles} articles, {report.passages} passages",
        f"index build {seconds:.1f} s, {report.passages / seconds:.0f} passages/s;"
        f" {len(bodies)} distinct questions",
        "",
        "| connections | endpoint | requests/s | p50 ms | p99 ms | errors | ask/healthz |",
        "|---|---|---|---|---|---|---|",
    ]
    with gunicorn_server(index_dir, work / f"gunicorn-{name}.log", QA_ACCESS_LOG="") as url:
        run_wrk(url + "/api/v1/ask", "/api/v1/ask", bodies, 4, 2, work)  # warm every worker
        health_at_16 = None
        for connections in CONNECTIONS:
            health = run_wrk(url + "/healthz", "/healthz", bodies, connections, duration, work)
            ask = run_wrk(url + "/api/v1/ask", "/api/v1/ask", bodies, connections, duration, work)
            lines.append(_row(connections, "/healthz", health))
            lines.append(_row(connections, "/api/v1/ask", ask, health))
            if connections == 16:
                health_at_16 = health
    # The same at 16 connections with the answer cache off: the cost of answering.
    log_path = work / f"gunicorn-{name}-nocache.log"
    with gunicorn_server(index_dir, log_path, QA_ACCESS_LOG="", QA_ANSWER_CACHE_SIZE="0") as url:
        ask = run_wrk(url + "/api/v1/ask", "/api/v1/ask", bodies, 16, duration, work)
        lines.append(_row(16, "/api/v1/ask, no answer cache", ask, health_at_16))
    return lines


def _row(connections: int, endpoint: str, figures: dict, health: dict | None = None) -> str:
    ratio = f" {figures['rps'] / health['rps']:.2f} |" if health else " |"
    return (
        f"| {connections} | {endpoint} | {figures['rps']:.0f} | {figures['p50']:.2f}"
        f" | {figures['p99']:.2f} | {figures['errors']} |{ratio}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--corpus", nargs="+", choices=("seeds", "pydocs"), default=["seeds", "pydocs"]
    )
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2
    lines = [f"# load benchmark, {os.cpu_count()} CPUs, {args.duration} s per run"]
    with tempfile.TemporaryDirectory(prefix="qa-load-") as folder:
        work = Path(folder)
        for name in args.corpus:
            corpus = ROOT / "seeds" if name == "seeds" else python_docs(work)
            lines += bench_corpus(name, corpus, args.duration, work)
            print("\n".join(lines), flush=True)
            lines = []
    return 0


if __name__ == "__main__":
    sys.exit(main())
