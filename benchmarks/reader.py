"""Score a trained reader (`make reader`, .eval/reader/) on every question set.

For each question the service's own first stages propose candidates and the
ranker scores them, as when answering. The reader (reader.onnx, int8, one
thread, no PyTorch) then reads the question with each of the ranker's best
TOP candidates, and the candidates are ranked again by ranker score + w ×
reader logit, for a range of w (0 is the ranker alone, "reader" the reader
alone). Printed per set: hit@1 / hit@3 for each w; how well the reader's best
logit tells answerable questions from unanswerable ones and from their twins
(ROC AUC; a twin is an answered question with its answering passages taken
away); and the reader's cost a question. The written sets are what the reader
is trained on (all but the one a run held out, `train_reader --held-out`), so
only the other sets measure it.

    python benchmarks/reader.py [.eval/reader]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from sets import ROOT, answers, open_indexes, question_sets

from qa_service.model.train_reader import READER_CONSTANTS, READER_FILE, pair_tokenizer
from qa_service.retrieval import search
from qa_service.retrieval.evaluation import load_questions
from qa_service.retrieval.semantic import MODEL_DIR, TOKENIZER_FILE

TOP = 5
WEIGHTS = (0.0, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5)
# The written sets, which reader_data.py trains on (less the one a run held out).
WRITTEN = ("news-a", "news-b", "news-c", "debian-docs")


def auc(positive: list[float], negative: list[float]) -> float:
    """The probability that a positive scores above a negative (ties count half)."""
    p, n = np.array(positive)[:, None], np.array(negative)[None, :]
    return float((p > n).mean() + 0.5 * (p == n).mean())


def read_set(question_set, generation, session, tokenizer) -> tuple[list[dict], list[float]]:
    """Each question's top candidates: ranker scores, reader logits, labels; and the
    reader's milliseconds a question."""
    rows, costs = [], []
    for question in load_questions(question_set.questions):
        analysed = search.analyse(generation, question["question"])
        chosen = search.rank(search.candidates(generation, analysed))[:TOP]
        logits = np.zeros(len(chosen))
        if chosen:
            started = time.perf_counter()
            encodings = tokenizer.encode_batch(
                [(question["question"], c.passage.text) for c in chosen]
            )
            feed = {
                "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
                "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
            }
            logits = session.run(None, feed)[0][:, 0]
            costs.append((time.perf_counter() - started) * 1000)
        labels = np.array([answers(question_set, question, c.passage) for c in chosen], bool)
        rows.append(
            {
                "answerable": bool(question["answers"]),
                "scores": np.array([c.score for c in chosen]),
                "logits": logits,
                "labels": labels,
            }
        )
    return rows, costs


def report(name: str, rows: list[dict], costs: list[float], trained_on: bool) -> list[str]:
    """The lines for one set."""
    answered = [r for r in rows if r["answerable"] and len(r["labels"])]
    ranked = []
    for w in (*WEIGHTS, None):
        top1 = top3 = 0
        for r in answered:
            combined = r["logits"] if w is None else r["scores"] + w * r["logits"]
            order = np.argsort(-combined, kind="stable")
            top1 += bool(r["labels"][order[0]])
            top3 += bool(r["labels"][order[:3]].any())
        label = "reader" if w is None else f"w={w}"
        ranked.append(f"{label} {top1 / len(answered):.3f}/{top3 / len(answered):.3f}")
    best = [r["logits"].max() for r in answered]
    unanswerable = [r["logits"].max() for r in rows if not r["answerable"] and len(r["logits"])]
    twins = [
        r["logits"][~r["labels"]].max()
        for r in answered
        if r["labels"].any() and not r["labels"].all()
    ]
    separation = [f"twins AUC {auc(best, twins):.3f}"]
    if unanswerable:
        separation.insert(0, f"unanswerable AUC {auc(best, unanswerable):.3f}")
    role = " (trained on)" if trained_on else ""
    return [
        f"{name}{role}: hit@1/hit@3 " + "; ".join(ranked),
        f"  {', '.join(separation)}; reader {statistics.median(costs):.1f} ms a question "
        f"(median, {TOP} candidates, one thread)",
    ]


def main() -> int:
    import onnxruntime

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("reader", nargs="?", type=Path, default=ROOT / ".eval" / "reader")
    args = parser.parse_args()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        str(args.reader / READER_FILE), options, providers=["CPUExecutionProvider"]
    )
    tokenizer = pair_tokenizer(MODEL_DIR / TOKENIZER_FILE, padding=True)
    held_out = json.loads((args.reader / READER_CONSTANTS).read_text()).get("held_out") or ""
    sets = question_sets()
    with tempfile.TemporaryDirectory() as folder:
        generations = open_indexes(sets, Path(folder))
        for question_set in sets:
            rows, costs = read_set(
                question_set, generations[question_set.corpus], session, tokenizer
            )
            name = question_set.name
            trained_on = name in WRITTEN and not (held_out and name.startswith(held_out))
            print("\n".join(report(question_set.name, rows, costs, trained_on)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
