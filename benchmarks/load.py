"""Load benchmark: the cost of answering new questions, under gunicorn and wrk, per corpus.

For each corpus (the seeds; the Python 3.11 documentation sources from
Debian's python3.11-doc; the Linux kernel documentation sources from
linux-doc-6.1, without translations) it builds the index (timed), then runs
wrk in turn against, all under the same gunicorn settings (2 workers, the
service's gevent worker class):

1. a bare Flask app's /healthz (benchmarks/bare_app.py), for information;
2. the encoder floor (benchmarks/floor.py): a bare Flask app whose
   POST /api/v1/ask makes exactly the model calls an ask makes (the question's
   encoding) and nothing else: the baseline every ask row is a ratio to;
3. the service's /healthz;
4. POST /api/v1/ask with the answer cache off: the cost of answering;
5. the same with the answer cache on;
6. POST /api/v1/ask, cache off, on the PostgreSQL engine: one server, then a
   coordinator with two shards (servers started for the run on this machine);
7. the time from a write (PUT /api/v1/sources/<name>: a new article, then a
   correction of it) to the first answer that cites it, on each engine, while
   nothing else runs: the write request, indexing (a layer over the full build,
   index.update_index) and the first answer from the new generation.

The index is prepared once per corpus (split, analysed, encoded: the same for
every engine) and written by each engine; its build time is the two together.

The asks cycle through QUESTIONS distinct questions, so with the cache on
only a question's second and later asks in a worker are cheap; that row is
what a cache adds to mixed traffic, never the engine's speed. Printed per row:
requests/s, p50, p99, errors, the ratios to the floor and to the bare Flask
app in the same run, the p99 over the floor's, and the resident memory (RSS) of
each worker after the run.

    python benchmarks/load.py [--corpus seeds pydocs linuxdocs] [--duration 10]

Needs wrk (apt-get install wrk) and, for the documentation sets, apt-get download.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from postgres_support import postgres_cluster, postgres_server  # noqa: E402
from support import SERVERS, gunicorn_server  # noqa: E402

from qa_service.client import QAClient  # noqa: E402
from qa_service.config import ENVIRONMENT, load_config  # noqa: E402
from qa_service.core.corpus import read_corpus  # noqa: E402
from qa_service.engines import KEPT  # noqa: E402
from qa_service.index import configured_engine, corpus_hash, kept, prepare  # noqa: E402
from qa_service.retrieval.evaluation import load_questions  # noqa: E402
from qa_service.web.keys import add_key  # noqa: E402

CONNECTIONS = 16
FLOOR = "encoder floor /api/v1/ask"
QUESTIONS = 1000
WORKERS = "2"  # one per core here; the same for every server of a run


# A bare app under the service's gunicorn settings, without its config's hooks.
def bare_app(module: str) -> tuple[str, ...]:
    """gunicorn's arguments for benchmarks/<module>.py's `app`."""
    return (
        "--workers", WORKERS,
        "--worker-class", "qa_service.web.gunicorn_worker.Worker",
        "--worker-connections", "1000",
        "--keep-alive", "5",
        "--chdir", str(ROOT / "benchmarks"),
        f"{module}:app",
    )  # fmt: skip


# Debian packages of documentation: package, folder of sources inside it, parts left out.
DOCUMENTATION = {
    "pydocs": ("python3.11-doc", "usr/share/doc/python3.11/html/_sources", ()),
    "linuxdocs": ("linux-doc-6.1", "usr/share/doc/linux-doc-6.1/html/_sources", ("translations",)),
}
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


def documentation_sources(name: str, work: Path) -> Path:
    """The .rst.txt sources of a Debian documentation package, as a corpus folder."""
    package, inside, left_out = DOCUMENTATION[name]
    download = work / f"deb-{name}"
    download.mkdir()
    subprocess.run(["apt-get", "download", package], cwd=download, check=True, capture_output=True)
    (deb,) = download.glob(f"{package}_*.deb")
    extracted = work / f"extracted-{name}"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(extracted)], check=True)
    sources = extracted / inside
    corpus = work / name
    for path in sources.rglob("*.rst.txt"):
        relative = path.relative_to(sources)
        if relative.parts[0] in left_out:
            continue
        target = corpus / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    shutil.rmtree(extracted)
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
        [*command, "-s", str(script), url + path], capture_output=True, text=True, check=True
    )
    line = next(line for line in result.stdout.splitlines() if line.startswith("RESULT "))
    figures = json.loads(line.removeprefix("RESULT "))
    return {
        "rps": figures["requests"] / (figures["duration_us"] / 1e6),
        "p50": figures["p50_us"] / 1000,
        "p99": figures["p99_us"] / 1000,
        "errors": figures["errors"],
    }


def worker_rss_mb(url: str) -> list[float]:
    """The resident memory of each worker of the server at `url`, in MB."""
    master = SERVERS[url].pid
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    sizes = []
    for pid in children:
        status = Path(f"/proc/{pid}/status").read_text()
        kilobytes = int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE).group(1))
        sizes.append(kilobytes / 1024)
    return sorted(sizes)


WRITES = 3  # writes timed per engine (each an addition, then its correction)


def time_to_answerable(url: str, key: str) -> dict[str, list[float]]:
    """Seconds from each write to the first answer citing what it wrote (added, corrected)."""
    # A write that outgrows its layer builds everything: minutes on a large corpus.
    client = QAClient(url, api_key=key, timeout=600)
    taken: dict[str, list[float]] = {"added": [], "corrected": []}
    for number in range(WRITES):
        name = f"bench-write-{number}.txt"
        count = 1000 + 37 * number
        versions = {
            "added": f"Quokka census\n\nThe census counted {count} quokkas on Rottnest.\n",
            "corrected": f"Quokka census\n\nThe census counted {count + 1} quokkas on Rottnest.\n",
        }
        for step, text in versions.items():
            started = time.perf_counter()
            client.replace_source(name, text)
            while time.perf_counter() - started < 60:
                answers = client.ask("How many quokkas did the census count on Rottnest?")
                first = answers.passages[0] if answers.passages else None
                if first and first.citation.source == name and first.text in text:
                    break
                time.sleep(0.01)
            else:
                raise RuntimeError(f"{name} not answerable 60 s after it was written")
            taken[step].append(time.perf_counter() - started)
        # So that the next write's article is the only one that answers.
        client.delete_source(name)
    return taken


def bench_corpus(name: str, corpus: Path, duration: int, work: Path) -> list[str]:
    """Index builds and the load table for one corpus."""
    articles = read_corpus(corpus)
    kept_dir = work / f"kept-{name}"
    started = time.perf_counter()
    prepare(articles, kept_dir)  # the first build: every text encoded
    first_prepared_in = time.perf_counter() - started
    started = time.perf_counter()
    # A rebuild (`qa-service index --force`, compaction after writes): texts encoded before.
    prepared = prepare(articles, kept_dir)
    prepared_in = time.perf_counter() - started
    content_hash = corpus_hash(articles)
    index_dir = work / f"index-{name}"
    builds = {}

    def publish(label: str, settings: dict[str, str]) -> None:
        config = load_config({ENVIRONMENT[key]: value for key, value in settings.items()})
        started = time.perf_counter()
        configured_engine(config).publish(prepared, content_hash)
        builds[label] = prepared_in + time.perf_counter() - started

    questions = questions_for(corpus, QUESTIONS + 20)
    bodies = [json.dumps({"question": q}) for q in questions[:QUESTIONS]]
    warm_up = [json.dumps({"question": q}) for q in questions[QUESTIONS:]]
    rows = {}

    def measure(label: str, url: str, path: str) -> None:
        figures = run_wrk(url, path, bodies, CONNECTIONS, duration, work)
        rows[label] = {**figures, "rss": worker_rss_mb(url)}

    writes = {}
    writable = work / f"{name}-writable"
    shutil.copytree(corpus, writable)
    keys_file = work / f"{name}-keys.json"
    key = add_key(keys_file, "bench", ["read", "write"])

    def time_writes(label: str, settings: dict[str, str]) -> None:
        settings = {
            **settings,
            "QA_WORKERS": WORKERS,
            "QA_ACCESS_LOG": "",
            "QA_SEEDS": str(writable),
            "QA_API_KEYS_FILE": str(keys_file),
        }
        # The articles' lines, kept as `qa-service index` keeps them for the next build (else
        # the first write would work out every article's again: seconds on the Python docs).
        kept.furniture((article.text for article in articles), index_dir / KEPT)
        with gunicorn_server(index_dir, work / f"{name}-writes-{label}.log", **settings) as url:
            writes[label] = time_to_answerable(url, key)

    def serve(label: str, settings: dict[str, str], cache_size: str | None = "0") -> None:
        settings = {**settings, "QA_WORKERS": WORKERS, "QA_ACCESS_LOG": ""}
        if cache_size:
            settings["QA_ANSWER_CACHE_SIZE"] = cache_size
        with gunicorn_server(index_dir, work / f"{name}-{label}.log", **settings) as url:
            # Every worker past its first requests, on questions not measured.
            run_wrk(url, "/api/v1/ask", warm_up, 4, 2, work)
            if not cache_size:
                measure("service /healthz", url, "/healthz")
            measure(f"/api/v1/ask, {label}", url, "/api/v1/ask")

    with gunicorn_server(
        index_dir, work / "bare.log", ready="/healthz", arguments=bare_app("bare_app")
    ) as url:
        measure("bare Flask /healthz", url, "/healthz")
    with gunicorn_server(
        index_dir, work / "floor.log", ready="/healthz", arguments=bare_app("floor")
    ) as url:
        run_wrk(url, "/api/v1/ask", warm_up, 4, 2, work)
        measure(FLOOR, url, "/api/v1/ask")
    whoosh = {"QA_BACKEND": "whoosh", "QA_INDEX": str(index_dir)}
    publish("Whoosh", whoosh)
    serve("cache off", whoosh)
    serve("cache on", whoosh, cache_size=None)
    time_writes("Whoosh", whoosh)
    with postgres_server() as server:
        one = {"QA_BACKEND": "postgres", "QA_DATABASE_URL": server.url}
        publish("PostgreSQL, 1 server", one)
        serve("cache off, PostgreSQL 1 server", one)
        time_writes("PostgreSQL, 1 server", one)
    with postgres_cluster(shards=2) as cluster:
        sharded = {
            "QA_BACKEND": "postgres",
            "QA_DATABASE_URL": cluster.coordinator.url,
            "QA_DATABASE_SHARDS": ",".join(cluster.shard_names),
        }
        publish("PostgreSQL, coordinator + 2 shards", sharded)
        serve("cache off, PostgreSQL coordinator + 2 shards", sharded)
    bare, floor = rows["bare Flask /healthz"]["rps"], rows[FLOOR]
    passages = len(prepared.passages)
    lines = [
        "",
        f"### {name}: {len(articles)} articles, {passages} passages",
        "index build, texts encoded before (a rebuild): "
        + "; ".join(f"{label} {seconds:.1f} s" for label, seconds in builds.items())
        + f" (of which {prepared_in:.1f} s preparing: splitting, analysis, links);"
        f" the first build prepares in {first_prepared_in:.1f} s (every text encoded);"
        f" {CONNECTIONS} connections, {duration} s per run, {len(bodies)} distinct"
        " questions cycled",
        "",
        "| endpoint | requests/s | p50 ms | p99 ms | errors | ratio to the floor"
        " | p99 / floor's | ratio to bare Flask | RSS per worker MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, figures in rows.items():
        rss = " / ".join(f"{size:.0f}" for size in figures["rss"])
        lines.append(
            f"| {label} | {figures['rps']:.0f} | {figures['p50']:.2f} | {figures['p99']:.2f}"
            f" | {figures['errors']} | {figures['rps'] / floor['rps']:.2f}"
            f" | {figures['p99'] / floor['p99']:.2f} | {figures['rps'] / bare:.2f} | {rss} |"
        )
    whoosh_row = rows["/api/v1/ask, cache off"]
    lines.append("")
    for label, figures in rows.items():
        if "PostgreSQL" in label:
            lines.append(
                f"{label}: {figures['rps'] / whoosh_row['rps']:.2f} of Whoosh's requests/s,"
                f" p99 {figures['p99'] / whoosh_row['p99']:.2f} times Whoosh's"
            )
    lines += [
        "",
        f"write to answerable, s ({WRITES} writes of each kind, median / max):",
        "",
        "| engine | new article | corrected article |",
        "|---|---|---|",
    ]
    for label, taken in writes.items():
        cells = [f"{statistics.median(t):.2f} / {max(t):.2f}" for t in taken.values()]
        lines.append(f"| {label} | {' | '.join(cells)} |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    corpora = ("seeds", *DOCUMENTATION)
    parser.add_argument("--corpus", nargs="+", choices=corpora, default=list(corpora))
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2
    print(f"# load benchmark, {os.cpu_count()} CPUs, {WORKERS} workers", flush=True)
    with tempfile.TemporaryDirectory(prefix="qa-load-") as folder:
        work = Path(folder)
        for name in args.corpus:
            corpus = ROOT / "seeds" if name == "seeds" else documentation_sources(name, work)
            print("\n".join(bench_corpus(name, corpus, args.duration, work)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
