"""Score answers against questions with gold spans (`qa-service eval`, benchmarks/quality.py).

A passage answers a question when its cited span covers at least half of the
characters of one gold span in the same source ("cover"), or, for gold spans
that are whole sections, when at least half of the passage lies inside one
("within").
"""

from __future__ import annotations

import json
import re
import statistics
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from qa_service.core.results import AnswerPassage, Answers

COVER = 0.5
# What every line of a question file holds (answers: [] for an unanswerable question).
QUESTION_FIELDS = frozenset({"id", "question", "answers"})


def load_questions(path: Path | str) -> list[dict]:
    """Questions from a JSON-lines file: id, question, answers [{source, start, end, text}].

    Raises ValueError naming the line of the first one that is not such an object.
    """
    questions = []
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                question = json.loads(line)
            except ValueError as exc:
                raise ValueError(f"line {number} is not JSON ({exc})") from exc
            if not isinstance(question, dict) or not question.keys() >= QUESTION_FIELDS:
                fields = ", ".join(sorted(QUESTION_FIELDS))
                raise ValueError(f"line {number} is not an object with the fields {fields}")
            questions.append(question)
    return questions


MATCH_RULES = ("cover", "within")


def matches_gold(source: str, start: int, end: int, gold: dict, match: str = "cover") -> bool:
    """Whether the span [start, end) of `source` answers the gold span under the `match` rule."""
    if source != gold["source"]:
        return False
    overlap = min(end, gold["end"]) - max(start, gold["start"])
    if match == "within":
        return overlap >= COVER * max(end - start, 1)
    return overlap >= COVER * (gold["end"] - gold["start"])


def answers_gold(passage: AnswerPassage, gold: dict, match: str = "cover") -> bool:
    """The passage's cited span answers the gold span under the `match` rule."""
    citation = passage.citation
    return matches_gold(citation.source, citation.start, citation.end, gold, match)


def token_f1(predicted: str, gold: str) -> float:
    """SQuAD-style token F1 between two texts."""
    predicted_tokens = re.findall(r"\w+", predicted.lower())
    gold_tokens = re.findall(r"\w+", gold.lower())
    common = sum((Counter(predicted_tokens) & Counter(gold_tokens)).values())
    if not common:
        return 0.0
    precision, recall = common / len(predicted_tokens), common / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def score(
    questions: list[dict],
    results: dict[str, Answers],
    texts: dict[str, str],
    k: int = 5,
    match: str = "cover",
) -> dict:
    """Aggregate retrieval, answer, abstention and citation figures over all questions."""
    hit1 = hit3 = false_abstain = abstain_ok = abstain_n = bad_citations = 0
    reciprocal_ranks, source_recall, answer_f1, lengths, missed = [], [], [], [], []
    for question in questions:
        answers = results[question["id"]]
        passages = answers.passages[:k]
        for passage in passages:
            citation = passage.citation
            lengths.append(citation.end - citation.start)
            text = texts.get(citation.source)
            if text is None or text[citation.start : citation.end] != passage.text:
                bad_citations += 1
        gold = question["answers"]
        if not gold:
            abstain_n += 1
            abstain_ok += not answers.answerable or not passages
            continue
        false_abstain += not answers.answerable
        rank = next(
            (i for i, p in enumerate(passages, 1) if any(answers_gold(p, g, match) for g in gold)),
            None,
        )
        hit1 += rank == 1
        hit3 += rank is not None and rank <= 3
        reciprocal_ranks.append(1 / rank if rank else 0.0)
        if rank is None:
            missed.append(question["id"])
        gold_sources = {g["source"] for g in gold}
        found = {
            p.citation.source for p in passages if any(answers_gold(p, g, match) for g in gold)
        }
        source_recall.append(len(found) / len(gold_sources))
        if passages:
            answer_f1.append(max(token_f1(passages[0].answer.text, g["text"]) for g in gold))
        else:
            answer_f1.append(0.0)
    answerable = max(len(questions) - abstain_n, 1)
    return {
        "questions": len(questions),
        "hit@1": round(hit1 / answerable, 3),
        "hit@3": round(hit3 / answerable, 3),
        f"mrr@{k}": round(sum(reciprocal_ranks) / answerable, 3),
        f"source_recall@{k}": round(sum(source_recall) / answerable, 3),
        "answer_f1@1": round(sum(answer_f1) / answerable, 3),
        "abstain_acc": round(abstain_ok / abstain_n, 3) if abstain_n else None,
        "false_abstain": false_abstain,
        "bad_citations": bad_citations,
        "median_passage_chars": statistics.median(lengths) if lengths else 0,
        "max_passage_chars": max(lengths) if lengths else 0,
        "missed": missed,
    }


def evaluate(
    ask: Callable[[str, int], Answers],
    questions: list[dict],
    texts: dict[str, str],
    k: int = 5,
    match: str = "cover",
) -> dict:
    """Ask every question through `ask(question, k)` and score the answers."""
    results, latencies = {}, []
    for question in questions:
        started = time.perf_counter()
        results[question["id"]] = ask(question["question"], k)
        latencies.append((time.perf_counter() - started) * 1000)
    report = score(questions, results, texts, k, match)
    report["median_latency_ms"] = round(statistics.median(latencies), 2)
    return report
