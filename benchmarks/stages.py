"""Where an uncached question's time goes, stage by stage, in one process.

Builds (or reuses) the index of a corpus folder, then asks each of QUESTIONS
distinct questions (benchmarks/load.py's) once per stage and once whole, with
no answer cache: the question's analysis (its terms and its embedding),
"did you mean", the candidates with their features (champion lists, nearest
by meaning), the ranking and cited answers; then the same questions through
the Flask app (schemas, citation links, JSON, the request log and metrics).

    python benchmarks/stages.py [CORPUS_FOLDER [INDEX_FOLDER]]   # default: the seeds
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

from load import questions_for

from qa_service.index import build_index, open_generation
from qa_service.retrieval import search
from qa_service.retrieval.spelling import respell
from qa_service.web.app import create_app

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = 200


def _timed(function, *args, **kwargs) -> tuple[float, object]:
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return (time.perf_counter() - started) * 1000, result


def stage_times(corpus: Path, index_dir: Path) -> dict[str, list[float]]:
    """Milliseconds per question for each stage, and for a whole request through the app."""
    build_index(corpus, index_dir)
    generation = open_generation(index_dir)
    questions = questions_for(corpus, QUESTIONS)
    search.ask(generation, "a question to warm up with")
    times: dict[str, list[float]] = {
        name: [] for name in ("analyse", "did you mean", "candidates", "rank and cite", "ask")
    }
    for question in questions:
        analyse_ms, analysed = _timed(search.analyse, generation, question)
        respell_ms, _ = _timed(respell, generation, question)
        candidates_ms, _ = _timed(search.candidates, generation, analysed)
        ask_ms, _ = _timed(search.ask, generation, question)
        times["analyse"].append(analyse_ms)
        times["did you mean"].append(respell_ms)
        times["candidates"].append(candidates_ms)
        times["rank and cite"].append(max(0.0, ask_ms - analyse_ms - respell_ms - candidates_ms))
        times["ask"].append(ask_ms)
    app = create_app({"INDEX_DIR": str(index_dir), "ANSWER_CACHE_SIZE": 0})
    logging.getLogger("qa_service.requests").setLevel(logging.WARNING)  # no line per request
    client = app.test_client()
    client.post("/api/v1/ask", json={"question": "a question to warm up with"})
    times["POST /api/v1/ask in the app"] = [
        _timed(client.post, "/api/v1/ask", json={"question": question})[0] for question in questions
    ]
    return times


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("corpus", nargs="?", type=Path, default=ROOT / "seeds")
    parser.add_argument("index", nargs="?", type=Path, help="index folder (default: temporary)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="qa-stages-") as folder:
        times = stage_times(args.corpus, args.index or Path(folder))
    count = len(times["ask"])
    print(f"{args.corpus}: {count} distinct questions, no answer cache, one process")
    print("| stage | p50 ms | p90 ms | p99 ms |")
    print("|---|---|---|---|")
    for name, values in times.items():
        ordered = sorted(values)
        p90, p99 = ordered[int(0.9 * count)], ordered[min(count - 1, int(0.99 * count))]
        print(f"| {name} | {statistics.median(values):.2f} | {p90:.2f} | {p99:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
