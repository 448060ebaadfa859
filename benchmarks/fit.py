"""Fit the ranker's weights and the answerability decision across question sets.

For every question of the fitted sets (benchmarks/sets.py), the service's own
first stages propose candidates and compute their features
(`search.candidates`); a passage is labelled relevant when it answers a gold
span. Two small models are fitted on them:

- relevance: a linear score over the candidate features, fitted as a
  conditional logit (softmax over one question's candidates, gold passages as
  the target), so the weights are what put an answering passage first;
- answerability: a logistic regression over question-level signals
  (`ranking.answerability_signals`), its threshold the one that maximises
  balanced accuracy while refusing at most 5 % of any set's answerable questions.

Figures are printed per fold: leave-one-set-out (fit on the other sets, score
this one) and 5-fold over the pooled questions; then the weights fitted on all
fitted sets, as Python to paste into qa_service/retrieval/ranking.py. Sets not fitted on
(the held-out one) are scored with those final weights only. Every set is also
scored on its unanswerable twins: each answered question with its answering
passages taken out of the candidates, which should then be refused.

    python benchmarks/fit.py
"""

from __future__ import annotations

import argparse
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sets import QuestionSet, answers, open_indexes, question_sets

from qa_service.retrieval import ranking, search
from qa_service.retrieval.evaluation import load_questions
from qa_service.retrieval.store import PassageStore

L2 = 0.01
OFF_TOPIC_QUESTIONS = 30  # unanswerable examples per corpus, asked from the other corpora
MAX_FALSE_REFUSALS = 0.05  # unanswerable examples made from other sets' questions


@dataclass
class Example:
    """One question's candidates: feature rows, relevance labels, and its signals."""

    set_name: str
    question_id: str
    features: np.ndarray  # (candidates, features)
    relevant: np.ndarray  # bool per candidate
    answerable: bool
    answer_type: ranking.AnswerType


def collect(question_set: QuestionSet, generation, questions: list[dict]) -> list[Example]:
    """Features and labels of every candidate of every question in `questions`."""
    examples = []
    for question in questions:
        analysed = search.analyse(generation, question["question"])
        found = search.candidates(generation, analysed)
        relevant = np.array([answers(question_set, question, c.passage) for c in found], bool)
        rows = np.array([c.features for c in found], dtype=float).reshape(
            len(found), len(ranking.Features._fields)
        )
        examples.append(
            Example(
                question_set.name,
                question["id"],
                rows,
                relevant,
                bool(question["answers"]),
                analysed.answer_type,
            )
        )
    return examples


def fit_relevance(examples: list[Example], steps: int = 3000) -> np.ndarray:
    """Weights maximising the softmax probability of the relevant candidates (L2-penalised)."""
    usable = [e for e in examples if e.relevant.any()]
    width = len(ranking.Features._fields)
    weights = np.zeros(width)
    # Adam on the mean negative log-likelihood; a handful of weights, so plain NumPy does.
    first, second = np.zeros(width), np.zeros(width)
    for step in range(1, steps + 1):
        gradient = L2 * weights
        for example in usable:
            scores = example.features @ weights
            p = np.exp(scores - scores.max())
            p /= p.sum()
            target = example.relevant / example.relevant.sum()
            gradient += example.features.T @ (p - target) / len(usable)
        first = 0.9 * first + 0.1 * gradient
        second = 0.999 * second + 0.001 * gradient**2
        weights -= 0.05 * (first / (1 - 0.9**step)) / (np.sqrt(second / (1 - 0.999**step)) + 1e-8)
    return weights


def hits(examples: list[Example], weights: np.ndarray) -> tuple[float, float]:
    """hit@1 and hit@3 of the candidates ranked by `weights` (answerable questions)."""
    answerable = [e for e in examples if e.answerable]
    top1 = top3 = 0
    for example in answerable:
        order = np.argsort(-(example.features @ weights), kind="stable")
        top1 += bool(example.relevant[order[:1]].any())
        top3 += bool(example.relevant[order[:3]].any())
    return top1 / max(len(answerable), 1), top3 / max(len(answerable), 1)


def signals(example: Example, weights: np.ndarray) -> np.ndarray:
    """The question-level answerability signals under ranking weights."""
    rows = [ranking.Features(*row) for row in example.features]
    scores = [float(row @ weights) for row in example.features]
    return np.array(ranking.answerability_signals(example.answer_type, rows, scores))


def fit_answerability(
    examples: list[Example], weights: np.ndarray, steps: int = 3000
) -> tuple[np.ndarray, float]:
    """Logistic regression (classes balanced) and its balanced-accuracy threshold."""
    x = np.array([signals(e, weights) for e in examples])
    y = np.array([e.answerable for e in examples], dtype=float)
    x1 = np.hstack([x, np.ones((len(x), 1))])
    balance = np.where(y == 1, 0.5 / max(y.mean(), 1e-9), 0.5 / max(1 - y.mean(), 1e-9))
    coef = np.zeros(x1.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(x1 @ coef)))
        coef -= 0.5 * (x1.T @ ((p - y) * balance) / len(y) + L2 * np.r_[coef[:-1], 0])
    probability = 1 / (1 + np.exp(-(x1 @ coef)))
    # Refusing an answerable question hides an answer the articles hold, so it is
    # the costlier mistake: among thresholds that refuse at most MAX_FALSE_REFUSALS
    # of any one set's answerable questions, the one with the best balanced accuracy.
    by_set = [
        probability[[e.answerable and e.set_name == name for e in examples]]
        for name in {e.set_name for e in examples}
    ]
    allowed = [
        t
        for t in sorted(set(np.round(probability, 3)))
        if all((group < t).mean() <= MAX_FALSE_REFUSALS for group in by_set if len(group))
    ]
    threshold = max(allowed, key=lambda t: balanced_accuracy(probability >= t, y == 1))
    return coef, float(threshold)


def balanced_accuracy(said_yes: np.ndarray, truth: np.ndarray) -> float:
    """Mean of the recall on answerable and on unanswerable questions."""
    recalls = [(said_yes[truth] == 1).mean() if truth.any() else 1.0]
    recalls.append((said_yes[~truth] == 0).mean() if (~truth).any() else 1.0)
    return float(np.mean(recalls))


def refusals(examples, weights, coef, threshold) -> tuple[int, int, int, int]:
    """(unanswerable refused, unanswerable, answerable refused, answerable)."""
    x = np.array([signals(e, weights) for e in examples])
    p = 1 / (1 + np.exp(-(np.hstack([x, np.ones((len(x), 1))]) @ coef)))
    truth = np.array([e.answerable for e in examples])
    refused = p < threshold
    return (
        int((refused & ~truth).sum()),
        int((~truth).sum()),
        int((refused & truth).sum()),
        int(truth.sum()),
    )


def twins(examples: list[Example]) -> list[Example]:
    """Unanswerable twins: each answered question with its answering passages taken away.

    What is left is the ranker's other candidates, full of the question's words,
    none of which holds what was asked: the honest answer is then "no answer".
    """
    return [
        Example(e.set_name, e.question_id, e.features[~e.relevant], e.relevant[~e.relevant],
                False, e.answer_type)
        for e in examples
        if e.answerable and e.relevant.any() and not e.relevant.all()
    ]  # fmt: skip


def off_topic(generations, sets, seed=0) -> list[Example]:
    """Unanswerable examples: each corpus asked the other corpora's questions."""
    rng = random.Random(seed)
    made = []
    for question_set in sets:
        others = [
            q
            for other in sets
            if other.corpus != question_set.corpus
            for q in load_questions(other.questions)
            if q["answers"]
        ]
        picked = rng.sample(others, min(OFF_TOPIC_QUESTIONS, len(others)))
        for question in picked:
            question = dict(question, answers=[])
            made += collect(question_set, generations[question_set.corpus], [question])
    return made


def fit_report(
    sets: list[QuestionSet],
    generations: dict[Path, PassageStore],
    without: tuple[str, ...] = (),
) -> list[str]:
    """Fit on the sets marked `fitted`, cross-validated; the report lines, constants last.

    `generations` holds an opened index of each set's corpus (sets.open_indexes).
    Features named in `without` are held at zero (to measure what each one adds).
    """
    examples = {
        question_set.name: collect(
            question_set,
            generations[question_set.corpus],
            load_questions(question_set.questions),
        )
        for question_set in sets
    }
    fitted = [s for s in sets if s.fitted]
    negatives = off_topic(generations, fitted)
    for example in [e for group in examples.values() for e in group] + negatives:
        for name in without:
            example.features[:, ranking.Features._fields.index(name)] = 0.0

    lines = ["relevance, leave one set out (fit on the others, score this one):"]
    for held in fitted:
        train = [e for s in fitted if s.name != held.name for e in examples[s.name]]
        h1, h3 = hits(examples[held.name], fit_relevance(train))
        lines.append(f"  {held.name}: hit@1 {h1:.3f} hit@3 {h3:.3f}")
    pooled = [e for s in fitted for e in examples[s.name]]
    random.Random(0).shuffle(pooled)
    lines.append("relevance and answerability, 5-fold over the pooled fitted questions:")
    for fold in range(5):
        test = pooled[fold::5]
        train = [e for i, e in enumerate(pooled) if i % 5 != fold]
        weights = fit_relevance(train)
        coef, threshold = fit_answerability(train + negatives, weights)
        h1, h3 = hits(test, weights)
        refused = refusals(test, weights, coef, threshold)
        lines.append(
            f"  fold {fold}: hit@1 {h1:.3f} hit@3 {h3:.3f}; unanswerable refused "
            f"{refused[0]}/{refused[1]}, answerable refused {refused[2]}/{refused[3]}"
        )
    weights = fit_relevance(pooled)
    coef, threshold = fit_answerability(pooled + negatives, weights)
    lines.append("final weights, fitted on " + ", ".join(s.name for s in fitted) + ":")
    for question_set in sets:
        h1, h3 = hits(examples[question_set.name], weights)
        refused = refusals(examples[question_set.name], weights, coef, threshold)
        twins_refused = refusals(twins(examples[question_set.name]), weights, coef, threshold)
        role = "fitted" if question_set.fitted else "held out"
        lines.append(
            f"  {question_set.name} ({role}): hit@1 {h1:.3f} hit@3 {h3:.3f}; unanswerable "
            f"refused {refused[0]}/{refused[1]}, answerable refused {refused[2]}/{refused[3]}, "
            f"twins refused {twins_refused[0]}/{twins_refused[1]}"
        )
    lines.append("")
    lines.append("RELEVANCE_WEIGHTS = Features(")
    for name, value in zip(ranking.Features._fields, weights, strict=True):
        lines.append(f"    {name}={value:.4f},")
    lines.append(")")
    lines.append("ANSWERABILITY_COEFFICIENTS = AnswerabilitySignals(")
    for name, value in zip(ranking.AnswerabilitySignals._fields, coef[:-1], strict=True):
        lines.append(f"    {name}={value:.4f},")
    lines.append(")")
    lines.append(f"ANSWERABILITY_INTERCEPT = {coef[-1]:.4f}")
    lines.append(f"ANSWERABILITY_THRESHOLD = {threshold:.3f}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--without", action="append", default=[], choices=ranking.Features._fields,
        help="hold a feature at zero (repeatable), to measure what it adds",
    )  # fmt: skip
    args = parser.parse_args()
    sets = question_sets()
    with tempfile.TemporaryDirectory() as folder:
        generations = open_indexes(sets, Path(folder))
        print("\n".join(fit_report(sets, generations, tuple(args.without))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
