"""The arithmetic of inference: fp32, or bf16 autocast where the hardware runs it natively.

One process-wide setting (:func:`set_inference_precision`) covers the text encoder (MiniLM: context
and sentiment embeddings) and the generator's decoding (goal and topic steps, the reply, hybrid
candidate scoring). In bf16 the weight products run in bf16: the encoder holds bf16 weights under
``torch.autocast`` (norms and softmax stay fp32); a GPT-2 generator decodes on
:class:`crs.gen.fast.FastGPT2` with bf16 products and fp32 residual stream, norms and output-layer
choices, another generator on a bf16 copy of itself under autocast with its output layer in fp32
(:meth:`crs.gen.reply.ReplyGenerator.decoding_precision`). On a CPU with AVX512-BF16 a batch of 20
chat turns computed in about 48 ms a turn against 60 ms in fp32 when bf16 serving was introduced;
on hardware without bf16 instructions it is emulated and slower, which is why ``auto`` picks it
only where :func:`bf16_supported`.

Serving also keeps numpy's BLAS on the calling thread (:func:`limit_blas_threads`); the app, the
harness and the benchmarks set both with :func:`start_inference`. What the app loads (models, KG,
catalogue, indexes) is then left out of later garbage collections (:func:`freeze_loaded_objects`).

Perplexity and the training stages are unaffected: the harness reports the model's perplexity in
fp32 whatever the setting, and training has its own ``loop.precision``.
"""

from __future__ import annotations

import contextlib
import gc
import logging
from pathlib import Path

import torch

PRECISIONS = ("fp32", "bf16")
CHOICES = ("auto",) + PRECISIONS  # what the command lines accept

_inference = "fp32"

logger = logging.getLogger(__name__)


def bf16_supported() -> bool:
    """Whether bf16 autocast runs natively here: a CUDA device with bf16, else a CPU with AVX512-BF16 or AMX."""
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    cpu = torch.cpu
    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):  # private torch probes; absent: unknown
        if getattr(cpu, probe, lambda: False)():
            return True
    return torch.backends.cpu.get_cpu_capability().upper().startswith("AMX")


def resolve_precision(precision: str) -> str:
    """``fp32`` or ``bf16``: ``auto`` becomes bf16 where :func:`bf16_supported`."""
    if precision == "auto":
        return "bf16" if bf16_supported() else "fp32"
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be fp32, bf16 or auto (got {precision!r})")
    return precision


def set_inference_precision(precision: str) -> str:
    """The precision of the encoders and generators of this process from now on; returns it resolved."""
    global _inference
    _inference = resolve_precision(precision)
    return _inference


def inference_precision() -> str:
    return _inference


def autocast(device: str | torch.device, precision: str | None = None) -> contextlib.AbstractContextManager:
    """bf16 autocast on ``device`` when ``precision`` (default: the process's) is bf16, else nothing."""
    if (precision or _inference) != "bf16":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


def limit_blas_threads() -> list[str]:
    """Run numpy's (and scipy's) OpenBLAS on the calling thread from now on; returns the libraries limited.

    A chat turn's few numpy matrix products (the context-neighbour votes: a batch of queries against
    every training context) are small, but OpenBLAS runs them on a pool of its own threads that spin
    while they wait for the next one, on the cores torch's OpenMP threads are computing on. With
    20 concurrent sessions on 2 cores the pool took about 2.5 s of CPU per 200 turns
    (``python -m benchmarks.load``), and keeping BLAS on the calling thread raised the app's
    throughput by about a tenth. torch's own OpenMP threads are not touched. Uses ``threadpoolctl``.
    """
    import numpy  # noqa: F401  (the BLAS libraries are found among those loaded: load them first)
    import scipy.linalg  # noqa: F401
    from threadpoolctl import threadpool_info, threadpool_limits

    threadpool_limits(limits=1, user_api="blas")
    limited = [info["filepath"] for info in threadpool_info() if info["user_api"] == "blas"]
    logger.info("numpy's BLAS on the calling thread: %s", ", ".join(Path(p).name for p in limited))
    return limited


def start_inference(precision: str) -> str:
    """The inference settings of a serving or evaluating process: :func:`set_inference_precision`
    and :func:`limit_blas_threads`; returns the precision resolved."""
    resolved = set_inference_precision(precision)
    limit_blas_threads()
    return resolved


def freeze_loaded_objects() -> None:
    """Leave what is loaded at start-up out of every later garbage collection (``gc.freeze``).

    The models, the knowledge graph, the catalogue and the indexes are close to a million Python
    objects, which live as long as the process. A full collection walks them all: about 0.5 s on
    one idle core of this machine, longer under load, and every thread (the chat batcher, the HTTP
    server) stands still meanwhile. Under load such pauses came every few seconds and were most of
    the slowest turns (python -m benchmarks.load). Frozen, they are never walked again; what the
    turns allocate is collected as before. Called once, after loading and before serving, never on
    objects that are about to be dropped (cyclic garbage among frozen objects is not freed). The
    harness does not call it: there the full collections came while loading, before any freeze
    could help (13 collections, 3 s of a 47 s validation run, the same with and without)."""
    gc.collect()  # garbage made while loading is freed first, not frozen
    gc.freeze()
