"""Answer-quality benchmark: every question set, the service beside stock retrievers.

Every retriever ranks the same passages (the service's index of each set's
corpus) for the same questions, and is scored with the same metrics and the
set's own match rule (qa_service.retrieval.evaluation). Stock retrievers return whole
passages as their answers and never refuse; only the service can say that a
question has no answer in the articles.

    python benchmarks/quality.py [--repeat 3] [--no-fit] [--baseline-ref v1]

Prints, as markdown: one table per question set (benchmarks/sets.py); dev2 by
kind of question and by paraphrase; the service's refusal precision and recall
over all sets; what encoding the question costs; and, unless --no-fit, the
cross-validated fitting figures of benchmarks/fit.py.

With --baseline-ref, the service is also started under gunicorn from that git
revision (in a temporary worktree) and from this checkout, and the p50 latency
of /api/v1/ask is measured for both in the same run.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
from fit import fit_report
from sets import QuestionSet, open_indexes, question_sets

from qa_service.core.corpus import read_corpus
from qa_service.core.results import AnswerPassage, Answers, AnswerSpan, Citation
from qa_service.retrieval.evaluation import load_questions, score
from qa_service.retrieval.search import ask
from qa_service.retrieval.semantic import model_id
from qa_service.retrieval.store import PassageStore

ROOT = Path(__file__).resolve().parent.parent
K = 5
SERVICE = "qa_service"
BM25S = "bm25s (stemmed, stop words)"
DENSE = "dense only (all-MiniLM-L6-v2, int8)"
# The retrievers shown beside the service in the per-kind table.
BY_KIND = (SERVICE, DENSE, BM25S)
KINDS = (
    "who", "when", "quantity", "definition", "why", "yesno", "attribution", "negation",
    "unanswerable",
)  # fmt: skip
# A question in, a score per passage (by document number) out.
Scorer = Callable[[str], np.ndarray]
Ranker = Callable[[str, int], Answers]


@dataclass
class Run:
    """One retriever's answers to one set's questions, and its median time per question."""

    results: dict[str, Answers]
    p50_ms: float


@dataclass
class SetResult:
    """One question set, what its corpus holds, and every retriever's run over it."""

    question_set: QuestionSet
    questions: list[dict]
    texts: dict[str, str]
    passages: int
    runs: dict[str, Run]
    store: PassageStore  # for timing a question's embedding


def as_answers(generation: PassageStore, question: str, scores: np.ndarray, k: int) -> Answers:
    """A stock retriever's k best passages as the service's result type (answer = passage)."""
    # A passage that scores nothing was not retrieved.
    best = [int(d) for d in np.argsort(-scores, kind="stable")[:k] if scores[d] > 0]
    found, passages = generation.passages(best), []
    for rank, docnum in enumerate(best, start=1):
        passage = found[docnum]
        passages.append(
            AnswerPassage(
                id=passage.id,
                rank=rank,
                score=float(scores[docnum]),
                text=passage.text,
                answer=AnswerSpan(passage.text, passage.start, passage.end),
                highlights=[],
                citation=Citation(
                    passage.source,
                    generation.sources[passage.source].title,
                    passage.start,
                    passage.end,
                    passage.byte_start,
                    passage.byte_end,
                    passage.line_start,
                    passage.line_end,
                ),  # fmt: skip
            )
        )
    return Answers(question=question, answerable=True, took_ms=0.0, passages=passages)


def words(text: str) -> list[str]:
    """Lower-cased words, no stemming."""
    return re.findall(r"\w+", text.lower())


def rank_bm25_scorer(generation: PassageStore) -> Scorer:
    """rank-bm25's Okapi BM25 over lower-cased words, no stemming."""
    from rank_bm25 import BM25Okapi

    bm25 = BM25Okapi([words(p.text) for p in _all_passages(generation)])
    return lambda question: bm25.get_scores(words(question))


def bm25s_scorer(generation: PassageStore) -> Scorer:
    """bm25s with its English stop words and the Snowball stemmer."""
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")

    def tokens(texts: list[str]) -> list[list[str]]:
        return bm25s.tokenize(
            texts, stopwords="en", stemmer=stemmer, return_ids=False, show_progress=False
        )

    retriever = bm25s.BM25()
    retriever.index(tokens([p.text for p in _all_passages(generation)]), show_progress=False)

    def scores(question: str) -> np.ndarray:
        known = retriever.get_tokens_ids(tokens([question])[0])
        return retriever.get_scores(known) if known else np.zeros(generation.info.passage_count)

    return scores


def dense_scorer(generation: PassageStore) -> Scorer:
    """The cosine of the question's embedding with each passage's, and nothing else."""
    everything = range(generation.info.passage_count)

    def scores(question: str) -> np.ndarray:
        found = generation.features(everything, generation.info.encoder.encode([question])[0])
        return np.array([found[position].similarity for position in everything])

    return scores


def _all_passages(generation: PassageStore) -> list:
    """Every passage of a generation, by position."""
    return list(generation.passages(range(generation.info.passage_count)).values())


def stock_ranker(generation: PassageStore, scores: Scorer) -> Ranker:
    """A stock retriever's k best passages for a question, as the service's result type."""
    return lambda question, k: as_answers(generation, question, scores(question), k)


def rankers(generation: PassageStore) -> dict[str, Ranker]:
    """Every retriever over one generation's passages, the service last."""
    scorers = {
        "rank-bm25 (Okapi)": rank_bm25_scorer(generation),
        BM25S: bm25s_scorer(generation),
        DENSE: dense_scorer(generation),
    }
    ranked = {name: stock_ranker(generation, scores) for name, scores in scorers.items()}
    ranked[SERVICE] = lambda question, k: ask(generation, question, k=k)
    return ranked


def run(ranker: Ranker, questions: list[dict], repeat: int) -> Run:
    """Ask every question `repeat` times; the answers and the median milliseconds."""
    results, latencies = {}, []
    for _ in range(repeat):
        for question in questions:
            started = time.perf_counter()
            results[question["id"]] = ranker(question["question"], K)
            latencies.append((time.perf_counter() - started) * 1000)
    return Run(results, statistics.median(latencies))


def measure_sets(
    sets: list[QuestionSet], generations: dict[Path, PassageStore], repeat: int
) -> list[SetResult]:
    """Run every retriever over every set, on the index of its corpus."""
    measured = []
    ranked = {corpus: rankers(generation) for corpus, generation in generations.items()}
    for question_set in sets:
        generation = generations[question_set.corpus]
        questions = load_questions(question_set.questions)
        texts = {a.name: a.text for a in read_corpus(question_set.corpus)}
        runs = {
            name: run(ranker, questions, repeat)
            for name, ranker in ranked[question_set.corpus].items()
        }
        measured.append(
            SetResult(
                question_set,
                questions,
                texts,
                generation.info.passage_count,
                runs,
                generation,
            )  # fmt: skip
        )
    return measured


def refused(run: Run) -> set[str]:
    """The ids of the questions the retriever said have no answer."""
    return {qid for qid, answers in run.results.items() if not answers.answerable}


def unanswerable(questions: list[dict]) -> set[str]:
    """The ids of the questions with no gold answer."""
    return {q["id"] for q in questions if not q["answers"]}


def of(part: int, whole: int) -> str:
    """'part of whole', or a dash when there is nothing to count."""
    return f"{part} of {whole}" if whole else "–"


def table(header: list[str], rows: list[list]) -> list[str]:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    return lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]


def settings(result: SetResult) -> str:
    """Where a set's figures come from: its questions, corpus, match rule and k."""
    question_set = result.question_set
    corpus = question_set.corpus
    where = corpus.relative_to(ROOT) if corpus.is_relative_to(ROOT) else corpus
    role = "fitted on" if question_set.fitted else "held out"
    return (
        f"{len(result.questions)} questions ({len(unanswerable(result.questions))} unanswerable; "
        f"{role}) over {where} ({len(result.texts)} articles, {result.passages} passages); "
        f'match "{question_set.match}", k={K}; in process, no cache'
    )


def set_lines(result: SetResult, repeat: int) -> list[str]:
    """The table of every retriever's figures on one set."""
    match, questions = result.question_set.match, result.questions
    none = unanswerable(questions)
    rows = []
    for name, retriever in result.runs.items():
        report = score(questions, retriever.results, result.texts, K, match)
        said_no = refused(retriever)
        rows.append(
            [name, report["hit@1"], report["hit@3"], report[f"mrr@{K}"], report["answer_f1@1"],
             of(len(said_no & none), len(none)),
             of(len(said_no - none), len(questions) - len(none)),
             report["bad_citations"], f"{retriever.p50_ms:.2f}"]
        )  # fmt: skip
    header = ["retriever", "hit@1", "hit@3", f"MRR@{K}", "answer F1@1", "unanswerable refused",
              "answerable refused", "bad citations", "p50 ms"]  # fmt: skip
    missed = score(questions, result.runs[SERVICE].results, result.texts, K, match)["missed"]
    return [
        f"## {result.question_set.name}",
        "",
        settings(result) + f"; p50 over {repeat} passes",
        "",
        *table(header, rows),
        "",
        f"{SERVICE} found no gold passage in its top {K} for {len(missed)}: "
        + (", ".join(missed) or "none"),
        "",
    ]


def group_row(label: str, group: list[dict], result: SetResult) -> list:
    """hit@1 / hit@3 of each retriever of BY_KIND on some questions, and the service's refusals."""
    match = result.question_set.match
    answerable = [q for q in group if q["answers"]]
    cells = []
    for name in BY_KIND:
        report = score(group, result.runs[name].results, result.texts, K, match)
        cells.append(f"{report['hit@1']:.3f} / {report['hit@3']:.3f}" if answerable else "–")
    said_no = {q["id"] for q in group} & refused(result.runs[SERVICE])
    return [label, len(group), *cells, of(len(said_no), len(group))]


def kind_lines(result: SetResult) -> list[str]:
    """One set by kind of question, then its answerable questions by paraphrase."""
    questions = result.questions
    kinds = list(KINDS) + sorted({q["kind"] for q in questions} - set(KINDS))
    rows = [
        group_row(kind, [q for q in questions if q["kind"] == kind], result)
        for kind in kinds
        if any(q["kind"] == kind for q in questions)
    ]
    answerable = [q for q in questions if q["answers"]]
    rows.append(group_row("paraphrased", [q for q in answerable if q.get("paraphrase")], result))
    rows.append(
        group_row(
            "worded as the article", [q for q in answerable if not q.get("paraphrase")], result
        )
    )
    header = ["questions", "n"] + [f"{name} hit@1 / hit@3" for name in BY_KIND]
    return [
        f"## {result.question_set.name} by kind",
        "",
        settings(result) + f". Refused: of the row's questions, by {SERVICE}.",
        "",
        *table(header + [f"{SERVICE} refused"], rows),
        "",
    ]


def refusal_lines(measured: list[SetResult]) -> list[str]:
    """The service's refusal precision and recall over the questions of every set pooled."""
    said_no, none = set(), set()
    for result in measured:
        name = result.question_set.name
        said_no |= {(name, qid) for qid in refused(result.runs[SERVICE])}
        none |= {(name, qid) for qid in unanswerable(result.questions)}
    right = len(said_no & none)
    precision = f"{right / len(said_no):.3f}" if said_no else "–"
    recall = f"{right / len(none):.3f}" if none else "–"
    sets = ", ".join(r.question_set.name for r in measured)
    total = sum(len(r.questions) for r in measured)
    return [
        f"## {SERVICE} refusals, all sets pooled",
        "",
        f"{total} questions of {sets}, {len(none)} unanswerable; k={K}; in process, no cache",
        "",
        *table(
            [
                "refused",
                "precision (refused that were unanswerable)",
                "recall (unanswerable that were refused)",
            ],
            [
                [
                    len(said_no),
                    f"{precision} ({right} of {len(said_no)})",
                    f"{recall} ({right} of {len(none)})",
                ]
            ],
        ),  # fmt: skip
        "",
    ]


def encoding_lines(result: SetResult, repeat: int) -> list[str]:
    """The median cost of encoding one question beside the service's whole answer, in process."""
    latencies = []
    for _ in range(repeat):
        for question in result.questions:
            started = time.perf_counter()
            result.store.info.encoder.encode([question["question"]])
            latencies.append((time.perf_counter() - started) * 1000)
    return [
        "## What the embedding costs",
        "",
        f"{result.question_set.name}: {len(result.questions)} questions over "
        f"{result.question_set.corpus.name}; in process, no cache; p50 over {repeat} passes",
        "",
        *table(
            ["step", "p50 ms"],
            [
                [f"{SERVICE} ask, whole (k={K})", f"{result.runs[SERVICE].p50_ms:.2f}"],
                [
                    f"encoding the question alone ({model_id()})",
                    f"{statistics.median(latencies):.2f}",
                ],
            ],
        ),  # fmt: skip
        "",
    ]


def serve_and_time(
    checkout: Path, index_dir: Path, seeds: Path, questions: list[dict], repeat: int
) -> float:
    """Start gunicorn from `checkout` and return the p50 ms of POST /api/v1/ask."""
    # The answer cache off: the passes repeat the questions, and the comparison is
    # about the work of answering one.
    env = dict(os.environ, QA_INDEX=str(index_dir), QA_WORKERS="2", QA_ANSWER_CACHE_SIZE="0")
    command = [sys.executable, "-m", "qa_service.cli", "index", "--seeds", str(seeds)]
    subprocess.run(
        [*command, "--index", str(index_dir)],
        cwd=checkout,
        env=env,
        check=True,
        capture_output=True,
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env["QA_BIND"] = f"127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "python:qa_service.web.gunicorn_conf"],
        cwd=checkout, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            for _ in range(300):
                try:
                    if client.get("/readyz").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            latencies = []
            for _ in range(repeat):
                for question in questions:
                    started = time.perf_counter()
                    client.post(
                        "/api/v1/ask", json={"question": question["question"]}
                    ).raise_for_status()
                    latencies.append((time.perf_counter() - started) * 1000)
        return statistics.median(latencies)
    finally:
        server.terminate()
        server.wait(timeout=15)


def live_latency(
    baseline_ref: str, question_set: QuestionSet, questions: list[dict], repeat: int
) -> list[str]:
    """p50 of /api/v1/ask for the baseline revision and this checkout, same run, same machine."""
    seeds = question_set.corpus
    work = Path(tempfile.mkdtemp(prefix="qa-bench-"))
    worktree = work / "baseline"
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(worktree), baseline_ref],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    try:
        # Alternate the two services so drift on a shared machine hits both alike.
        before, after = [], []
        for _ in range(3):
            before.append(
                serve_and_time(worktree, work / "index-baseline", seeds, questions, repeat)
            )
            after.append(serve_and_time(ROOT, work / "index-current", seeds, questions, repeat))
        p50_before, p50_after = statistics.median(before), statistics.median(after)
    finally:
        subprocess.run(
            ["git", "worktree", "remove", "--force", str(worktree)], cwd=ROOT, check=False
        )
        shutil.rmtree(work, ignore_errors=True)
    return [
        "## /api/v1/ask under gunicorn",
        "",
        f"{question_set.name}: {len(questions)} questions over {seeds.name}, {repeat} passes; "
        "2 workers, answer cache off; median of 3 alternating starts of each service",
        "",
        "| revision | p50 ms |",
        "|---|---|",
        f"| {baseline_ref} | {p50_before:.2f} |",
        f"| this checkout | {p50_after:.2f} |",
        f"| ratio | {p50_after / p50_before:.2f} |",
        "",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline-ref", help="git revision whose service latency to compare")
    parser.add_argument("--repeat", type=int, default=3, help="passes over the questions")
    parser.add_argument(
        "--no-fit", action="store_true", help="skip the cross-validated fitting figures"
    )
    args = parser.parse_args()

    sets = question_sets()
    with tempfile.TemporaryDirectory() as folder:
        generations = open_indexes(sets, Path(folder))
        measured = measure_sets(sets, generations, args.repeat)
        by_name = {result.question_set.name: result for result in measured}
        lines = [line for result in measured for line in set_lines(result, args.repeat)]
        lines += kind_lines(by_name["dev2"])
        lines += refusal_lines(measured)
        lines += encoding_lines(by_name["dev2"], args.repeat)
        print("\n".join(lines), flush=True)
        if not args.no_fit:
            fitted = ", ".join(s.name for s in sets if s.fitted)
            print(f"## Cross-validated fit (benchmarks/fit.py, fitted on {fitted})\n", flush=True)
            print("\n".join(fit_report(sets, generations)) + "\n", flush=True)
    if args.baseline_ref:
        held_out = by_name["questions"]
        print(
            "\n".join(
                live_latency(
                    args.baseline_ref, held_out.question_set, held_out.questions, args.repeat
                )
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
