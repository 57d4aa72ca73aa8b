"""The reply generator's backbone: a GPT-2 family decoder or a T5 encoder-decoder.

``dialogpt`` is a causal decoder with GPT-2's architecture, as DialoGPT (Zhang et al. 2020,
https://arxiv.org/abs/1911.00536) fine-tunes it on dialogue; ``t5`` is the encoder-decoder of
Raffel et al. 2020 (https://arxiv.org/abs/1910.10683). Either starts from a named scratch size
(random weights, sizes in :data:`SCRATCH_SIZES`) or from a checkpoint: a local folder, or a hub id
when the hub is reachable. No pretrained generator weights can be downloaded where this project
is developed, so the scratch sizes are the usual start; both paths end in the same kind of model.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForSeq2SeqLM,
    GPT2Config,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    T5Config,
)

from crs.config import GENERATOR_BACKBONES, GeneratorConfig

logger = logging.getLogger(__name__)

BACKBONES = GENERATOR_BACKBONES  # "dialogpt" (causal decoder), "t5" (encoder-decoder)
IGNORE = -100  # label of tokens without loss

# Scratch sizes: GPT2Config / T5Config arguments. GPT-2's feed-forward is 4 x n_embd wide;
# "small" with an 8k vocabulary has about 5M parameters, the size that trained best in quick trials.
SCRATCH_SIZES: dict[str, dict[str, dict[str, int]]] = {
    "dialogpt": {
        "scratch-tiny": {"n_layer": 2, "n_embd": 64, "n_head": 2},
        "scratch-small": {"n_layer": 4, "n_embd": 256, "n_head": 4},
        "scratch-base": {"n_layer": 8, "n_embd": 512, "n_head": 8},
    },
    "t5": {
        # num_layers: encoder layers; d_kv: the size of one attention head.
        "scratch-tiny": {"num_layers": 2, "num_decoder_layers": 2, "d_model": 64, "d_ff": 128, "num_heads": 2,
                         "d_kv": 32},
        "scratch-small": {"num_layers": 4, "num_decoder_layers": 4, "d_model": 256, "d_ff": 1024, "num_heads": 4,
                          "d_kv": 64},
        "scratch-base": {"num_layers": 6, "num_decoder_layers": 6, "d_model": 512, "d_ff": 2048, "num_heads": 8,
                         "d_kv": 64},
    },
}


def is_scratch(init: str) -> bool:
    return init.startswith("scratch-")


def scratch_config(config: GeneratorConfig, tokenizer: PreTrainedTokenizerBase) -> PretrainedConfig:
    """The model config of a scratch size, with the vocabulary and special ids of ``tokenizer``."""
    sizes = SCRATCH_SIZES[config.backbone]
    if config.init not in sizes:
        raise ValueError(f"generator.init: unknown scratch size {config.init!r}; choose from {tuple(sizes)}")
    # The tokenizer may have no <s> (T5's layout): GPT-2 then opens and closes with </s>, as it
    # uses <|endoftext|> for both.
    eos = tokenizer.eos_token_id
    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else eos
    common = {"vocab_size": len(tokenizer), "pad_token_id": tokenizer.pad_token_id, "eos_token_id": eos}
    if config.backbone == "dialogpt":
        return GPT2Config(n_positions=config.max_length, bos_token_id=bos, **common, **sizes[config.init])
    return T5Config(decoder_start_token_id=tokenizer.pad_token_id, **common, **sizes[config.init])


def _checkpoint_source(init: str) -> tuple[str, PretrainedConfig]:
    """The folder (or hub id) ``init`` names, and its model config; a clear error when it cannot be found."""
    path = Path(init).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"generator.init: folder {path} has no config.json (not a saved model)")
        return str(path), AutoConfig.from_pretrained(str(path))
    if init.startswith((".", "/", "~")) or path.drive:
        raise FileNotFoundError(f"generator.init: folder {path} does not exist")
    try:
        return init, AutoConfig.from_pretrained(init)
    except OSError as error:
        raise FileNotFoundError(
            f"generator.init: {init!r} is neither a local folder nor a hub model this machine can load (offline?)"
        ) from error


def load_backbone(config: GeneratorConfig, tokenizer: PreTrainedTokenizerBase) -> PreTrainedModel:
    """A scratch model of ``config.init``'s size, or the checkpoint ``config.init`` names.

    A checkpoint's embeddings are resized when the tokenizer has more tokens than its vocabulary.
    Raises ValueError for an unknown scratch size or a checkpoint of the other backbone, and
    FileNotFoundError for a folder or hub id that cannot be found.
    """
    if is_scratch(config.init):
        model_config = scratch_config(config, tokenizer)
        model = model_class(model_config).from_config(model_config)
    else:
        source, model_config = _checkpoint_source(config.init)
        if bool(model_config.is_encoder_decoder) != (config.backbone == "t5"):
            raise ValueError(f"generator.init: {config.init!r} is a {model_config.model_type} model, "
                             f"not a {config.backbone} backbone (generator.backbone)")
        positions = getattr(model_config, "n_positions", None)  # learned positions (GPT-2); T5's are relative
        if config.backbone == "dialogpt" and positions is not None and config.max_length > positions:
            raise ValueError(f"generator.max_length {config.max_length} exceeds the {positions} positions "
                             f"of {config.init!r}")
        model = model_class(model_config).from_pretrained(source)
        vocab = model.get_input_embeddings().num_embeddings
        if len(tokenizer) > vocab:
            logger.info("resizing %s's embeddings from %d to %d tokens", config.init, vocab, len(tokenizer))
            model.resize_token_embeddings(len(tokenizer))
    logger.info("%s generator from %s: %.1fM parameters", config.backbone, config.init, model.num_parameters() / 1e6)
    return model


def model_class(model_config: PretrainedConfig) -> type:
    """The transformers auto class of a backbone config: seq2seq for an encoder-decoder, else causal.

    The one place that branches on ``is_encoder_decoder``."""
    return AutoModelForSeq2SeqLM if model_config.is_encoder_decoder else AutoModelForCausalLM


def backbone_name(model_config: PretrainedConfig) -> str:
    """``t5`` for an encoder-decoder, ``dialogpt`` for a causal decoder."""
    return "t5" if model_config.is_encoder_decoder else "dialogpt"


def load_model(folder: str | Path) -> PreTrainedModel:
    """A saved backbone (causal or seq2seq, read from its config), in float32."""
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder} has no config.json (not a saved generator)")
    config = AutoConfig.from_pretrained(str(folder))
    return model_class(config).from_pretrained(str(folder), dtype=torch.float32)


def save_model(model: PreTrainedModel, folder: str | Path, half: bool = False) -> None:
    """``save_pretrained`` (safetensors); with ``half``, fp16 weights from a copy, the model itself untouched."""
    if half:
        copy = type(model)(model.config)
        copy.load_state_dict(model.state_dict())
        model = copy.half()
    model.save_pretrained(str(folder))


@torch.no_grad()
def summed_nll(model: PreTrainedModel, batch: dict[str, torch.Tensor], seq2seq: bool,
               scored: torch.Tensor | None = None) -> tuple[float, int]:
    """Summed negative log-likelihood of a :func:`collate` batch and its number of tokens.

    ``scored`` (default: the batch's labels) picks the tokens counted; the model's inputs, T5's
    decoder inputs included, come from the whole batch."""
    losses, counts = row_nll(model, batch, seq2seq, scored)
    return float(losses.sum()), int(counts.sum())


def row_nll(model: PreTrainedModel, batch: dict[str, torch.Tensor], seq2seq: bool,
            scored: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`summed_nll` per row: each row's summed negative log-likelihood and token count (CPU tensors)."""
    device = next(model.parameters()).device
    batch = {k: v.to(device) for k, v in batch.items()}
    labels = batch.pop("labels")
    scored = labels if scored is None else scored.to(device)
    if seq2seq:
        batch["decoder_input_ids"] = model._shift_right(labels)
    logits = model(**batch).logits.float()
    if not seq2seq:  # position t predicts token t + 1
        logits, scored = logits[:, :-1], scored[:, 1:]
    loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), scored, ignore_index=IGNORE, reduction="none")
    return loss.sum(1).cpu(), (scored != IGNORE).sum(1).cpu()


def pad_right(rows: Sequence[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    return _pad(rows, pad, left=False)


def pad_left(rows: Sequence[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    return _pad(rows, pad, left=True)


def _pad(rows: Sequence[list[int]], pad: int, left: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, attention mask) of ``rows`` padded with ``pad`` to the longest, on the left or the right."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        span = slice(width - len(row), width) if left else slice(0, len(row))
        ids[i, span] = torch.tensor(row, dtype=torch.long)
        mask[i, span] = 1
    return ids, mask


def collate(pairs: Sequence[tuple[list[int], list[int]]], seq2seq: bool, pad: int) -> dict[str, torch.Tensor]:
    """Right-padded batch. Causal: context + target in one sequence, labels on the target only;
    seq2seq: the context is the encoder input and the target the labels."""
    if seq2seq:
        ids, mask = pad_right([c or [pad] for c, _ in pairs], pad)
        labels, label_mask = pad_right([t for _, t in pairs], pad)
        labels[label_mask == 0] = IGNORE
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}
    rows = [c + t for c, t in pairs]
    ids, mask = pad_right(rows, pad)
    labels = torch.full_like(ids, IGNORE)
    for i, (c, t) in enumerate(pairs):
        labels[i, len(c) : len(c) + len(t)] = torch.tensor(t, dtype=torch.long)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}
