"""all-MiniLM-L6-v2 as an ONNX graph, built from the packaged `model.safetensors` (no torch).

The graph is BERT's encoder as the Hugging Face model computes it (exact erf GELU, post-layer
norm, additive mask on the attention scores) followed by sentence-transformers' mean pooling:
inputs `input_ids` and `attention_mask` (int64, batch x length), output `pooled` (batch x 384,
not yet L2-normalised; the caller divides by the norm). Token type ids are always 0 for single
sentences, so that embedding row is folded in as a constant.

Query, key and value stay three MatMuls (not one fused product) so that dynamic int8
quantization gives each its own per-channel scales.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import load_file

OPSET = 17  # LayerNormalization is a standard operator from 17 on
OUTPUT = "pooled"


class _Graph:
    """Collects nodes and initializers; every `op` returns its single output's name."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    def const(self, name: str, value: NDArray[np.generic]) -> str:
        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def op(self, op_type: str, *inputs: str, out: str | None = None, **attrs: Any) -> str:
        self._count += 1
        output = out or f"{op_type.lower()}_{self._count}"
        self.nodes.append(
            helper.make_node(op_type, list(inputs), [output], name=f"n{self._count}", **attrs)
        )
        return output


def _linear(g: _Graph, x: str, weights: dict[str, NDArray[np.float32]], prefix: str) -> str:
    # torch Linear stores (out, in); MatMul wants (in, out).
    w = g.const(prefix + ".weight", np.ascontiguousarray(weights[prefix + ".weight"].T))
    b = g.const(prefix + ".bias", weights[prefix + ".bias"])
    return g.op("Add", g.op("MatMul", x, w), b)


def _layer_norm(
    g: _Graph, x: str, weights: dict[str, NDArray[np.float32]], prefix: str, eps: float
) -> str:
    gamma = g.const(prefix + ".weight", weights[prefix + ".weight"])
    beta = g.const(prefix + ".bias", weights[prefix + ".bias"])
    return g.op("LayerNormalization", x, gamma, beta, axis=-1, epsilon=eps)


def build_graph(model_dir: Path) -> onnx.ModelProto:
    """The fp32 model over the weights in `model_dir` (config.json + model.safetensors)."""
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    head_dim = hidden // heads
    eps = float(config["layer_norm_eps"])
    weights = {
        name: np.ascontiguousarray(value, dtype=np.float32)
        for name, value in load_file(str(model_dir / "model.safetensors")).items()
    }
    g = _Graph()
    f32 = np.float32
    one = g.const("one", np.array(1.0, f32))
    zero_i = g.const("zero_i", np.array([0], np.int64))
    one_i = g.const("one_i", np.array([1], np.int64))
    heads_shape = g.const("heads_shape", np.array([0, 0, heads, head_dim], np.int64))
    merged_shape = g.const("merged_shape", np.array([0, 0, hidden], np.int64))

    # Embeddings: word + position[:length] + token type 0, then layer norm.
    word = g.op(
        "Gather", g.const("word", weights["embeddings.word_embeddings.weight"]), "input_ids"
    )
    length = g.op("Gather", g.op("Shape", "input_ids"), one_i)
    position_table = g.const("position", weights["embeddings.position_embeddings.weight"])
    position = g.op("Slice", position_table, zero_i, length, zero_i)
    token_type = g.const("token_type", weights["embeddings.token_type_embeddings.weight"][0])
    x = g.op("Add", g.op("Add", word, position), token_type)
    x = _layer_norm(g, x, weights, "embeddings.LayerNorm", eps)

    # Padding keys get -10000 added to their scores (as BERT does): ~0 weight after softmax.
    mask = g.op("Cast", "attention_mask", to=TensorProto.FLOAT)
    penalty = g.op("Mul", g.op("Sub", one, mask), g.const("neg", np.array(-10000.0, f32)))
    score_bias = g.op("Unsqueeze", penalty, g.const("mask_axes", np.array([1, 2], np.int64)))
    scale = g.const("scale", np.array(1.0 / math.sqrt(head_dim), f32))
    inv_sqrt2 = g.const("inv_sqrt2", np.array(1.0 / math.sqrt(2.0), f32))
    half = g.const("half", np.array(0.5, f32))

    for i in range(int(config["num_hidden_layers"])):
        p = f"encoder.layer.{i}."

        def split_heads(name: str, perm: list[int], source: str = x, p: str = p) -> str:
            projected = _linear(g, source, weights, p + "attention.self." + name)
            return g.op("Transpose", g.op("Reshape", projected, heads_shape), perm=perm)

        q = split_heads("query", [0, 2, 1, 3])  # (batch, heads, length, head_dim)
        k_t = split_heads("key", [0, 2, 3, 1])  # (batch, heads, head_dim, length)
        v = split_heads("value", [0, 2, 1, 3])
        scores = g.op("Add", g.op("Mul", g.op("MatMul", q, k_t), scale), score_bias)
        probs = g.op("Softmax", scores, axis=-1)
        context = g.op("Transpose", g.op("MatMul", probs, v), perm=[0, 2, 1, 3])
        context = g.op("Reshape", context, merged_shape)
        attended = g.op("Add", _linear(g, context, weights, p + "attention.output.dense"), x)
        x = _layer_norm(g, attended, weights, p + "attention.output.LayerNorm", eps)
        up = _linear(g, x, weights, p + "intermediate.dense")
        # Exact GELU, x * (1 + erf(x / sqrt 2)) / 2; ONNX Runtime fuses it into one kernel.
        erf = g.op("Erf", g.op("Mul", up, inv_sqrt2))
        gelu = g.op("Mul", g.op("Mul", up, g.op("Add", erf, one)), half)
        down = g.op("Add", _linear(g, gelu, weights, p + "output.dense"), x)
        x = _layer_norm(g, down, weights, p + "output.LayerNorm", eps)

    # Mean over the real tokens (sentence-transformers' pooling).
    mask3 = g.op("Unsqueeze", mask, g.const("last_axis", np.array([2], np.int64)))
    summed = g.op("ReduceSum", g.op("Mul", x, mask3), one_i, keepdims=0)
    counts = g.op(
        "Max", g.op("ReduceSum", mask3, one_i, keepdims=0), g.const("tiny", np.array(1e-9, f32))
    )
    g.op("Div", summed, counts, out=OUTPUT)

    graph = helper.make_graph(
        g.nodes,
        "all-MiniLM-L6-v2",
        inputs=[
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "length"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "length"]),
        ],
        outputs=[helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["batch", hidden])],
        initializer=g.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8  # readable by every onnxruntime the lock allows
    onnx.checker.check_model(model)
    return model
