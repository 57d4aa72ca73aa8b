"""The reply generator: decoding in two phases, the ``[REC]`` state, and reply perplexity.

Serving decodes in two phases: the generator writes the goal and topics (:mod:`crs.gen.steps`);
when the goal is to recommend, the ``[item]`` step is set to the recommender's best movie (so the
reply is written about the movie that fills its ``[REC]`` slot); then it writes the reply. The
coupling the other way: :meth:`ReplyGenerator.rec_state` is the generator's last hidden state at a
``[REC]`` token after the context, which the recommender takes as one more input
(``rec.rec_state_dim``). A checkpoint holds the generator in ``generator/`` and its tokenizer in
``tokenizer/``; :meth:`ReplyGenerator.from_pretrained` is the one place that reads them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from transformers import PreTrainedModel

from crs.config import ConvConfig
from crs.data.catalogue import Catalogue
from crs.data.context import DialogueContext
from crs.gen.backbone import IGNORE, collate, load_model, pad_left, pad_right, save_model, summed_nll
from crs.gen.steps import NONE, ConvExample, Steps, parse_steps, render_context
from crs.text.tokenizer import (
    GOAL_TOKEN,
    ITEM_TOKEN,
    REC_TOKEN,
    RECOMMENDER_TOKEN,
    SEEKER_TOKEN,
    TOPIC_TOKEN,
    load_tokenizer,
)

GENERATOR_DIR, TOKENIZER_DIR = "generator", "tokenizer"


@dataclass
class Generated:
    goal: str
    topics: list[str]
    item: str
    reply: str  # with [REC] slots


class ReplyGenerator:
    """A tuned backbone with its tokenizer: decoding, ``[REC]`` state, and reply perplexity."""

    def __init__(self, tokenizer, model: PreTrainedModel, backbone: str, config: ConvConfig, device: str = "cpu"):
        self.tokenizer = tokenizer
        self.model = model.to(device).eval()
        self.backbone = backbone
        self.config = config
        self.device = device
        ids = tokenizer.convert_tokens_to_ids
        self.goal_id, self.topic_id, self.item_id, self.rec_id = ids([GOAL_TOKEN, TOPIC_TOKEN, ITEM_TOKEN, REC_TOKEN])
        self.seeker_id, self.recommender_id = ids([SEEKER_TOKEN, RECOMMENDER_TOKEN])
        self.eos_id, self.pad_id = tokenizer.eos_token_id, tokenizer.pad_token_id

    @property
    def is_seq2seq(self) -> bool:
        return self.backbone == "t5"

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.d_model if self.is_seq2seq else self.model.config.n_embd)

    # ------------------------------------------------------------------ persistence

    @staticmethod
    def present(folder: str | Path) -> bool:
        folder = Path(folder)
        return (folder / GENERATOR_DIR / "config.json").is_file()

    @classmethod
    def from_pretrained(cls, folder: str | Path, device: str = "cpu") -> "ReplyGenerator":
        from crs.config import config_from_dict

        folder = Path(folder)
        for part in (GENERATOR_DIR, TOKENIZER_DIR):
            if not (folder / part).is_dir():
                raise FileNotFoundError(f"checkpoint {folder} is incomplete: missing {part}/")
        meta = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        config = config_from_dict(meta["crs_config"])
        tokenizer = load_tokenizer(folder / TOKENIZER_DIR)
        model = load_model(folder / GENERATOR_DIR)
        return cls(tokenizer, model, config.generator.backbone, config.conv, device)

    def save_pretrained(self, folder: str | Path, half: bool = False) -> None:
        """``generator/`` (safetensors; fp16 when ``half``) and ``tokenizer/`` into an existing folder."""
        folder = Path(folder)
        save_model(self.model, folder / GENERATOR_DIR, half)
        self.tokenizer.save_pretrained(str(folder / TOKENIZER_DIR))

    # ------------------------------------------------------------------ tokenisation

    def encode(self, text: str, limit: int, keep: str = "left") -> list[int]:
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) > limit:
            ids = ids[-limit:] if keep == "left" else ids[:limit]
        return ids

    def context_ids(self, context: str) -> list[int]:
        return self.encode(context, self.config.max_context_tokens, keep="left")

    def target_ids(self, target: str) -> list[int]:
        return self.encode(target, self.config.max_target_tokens - 1, keep="right") + [self.eos_id]

    def collate(self, pairs: Sequence[tuple[list[int], list[int]]]) -> dict[str, torch.Tensor]:
        """A training batch of (context ids, target ids); loss only on the target."""
        return collate(pairs, self.is_seq2seq, self.pad_id)

    # ------------------------------------------------------------------ the [REC] state

    @torch.no_grad()
    def rec_state(self, contexts: Sequence[DialogueContext], catalogue: Catalogue) -> torch.Tensor:
        return self.rec_state_texts([render_context(c, catalogue.titles) for c in contexts])

    @torch.no_grad()
    def rec_state_texts(self, contexts: Sequence[str], batch_size: int = 64) -> torch.Tensor:
        """Last-layer hidden state at a ``[REC]`` token appended to each context: shape (B, hidden)."""
        out = []
        for start in range(0, len(contexts), batch_size):
            rows = [self.context_ids(text) + [self.rec_id] for text in contexts[start : start + batch_size]]
            ids, mask = pad_right(rows, self.pad_id)
            ids, mask = ids.to(self.device), mask.to(self.device)
            if self.is_seq2seq:
                hidden = self.model.get_encoder()(input_ids=ids, attention_mask=mask).last_hidden_state
            else:
                hidden = self.model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[-1]
            last = mask.sum(1) - 1
            out.append(hidden[torch.arange(len(rows)), last].float().cpu())
        return torch.cat(out) if out else torch.zeros(0, self.hidden_size)

    # ------------------------------------------------------------------ decoding

    @torch.no_grad()
    def generate(self, contexts: Sequence[DialogueContext], rankings: Sequence[Sequence[tuple[int, float]]], catalogue: Catalogue,
                 forced: Sequence[Steps | None] | None = None, batch_size: int = 64) -> list[Generated]:
        texts = [render_context(c, catalogue.titles) for c in contexts]
        tops = [catalogue.titles[r[0][0]] if r else NONE for r in rankings]
        return self.generate_texts(texts, tops, forced, batch_size)

    @torch.no_grad()
    def generate_texts(self, contexts: Sequence[str], top_items: Sequence[str], forced: Sequence[Steps | None] | None = None,
                       batch_size: int = 64) -> list[Generated]:
        """Greedy two-phase decoding (see the module docstring). ``top_items[i]`` fills the ``[item]``
        step when the predicted goal is to recommend; ``forced[i]`` gives all steps instead."""
        forced = list(forced) if forced is not None else [None] * len(contexts)
        results: list[Generated | None] = [None] * len(contexts)
        for start in range(0, len(contexts), batch_size):
            chunk = range(start, min(start + batch_size, len(contexts)))
            ctx_ids = {i: self.context_ids(contexts[i]) for i in chunk}
            # Phase 1: the goal and topic steps, up to the [item] token.
            free = [i for i in chunk if forced[i] is None]
            steps: dict[int, Steps] = {i: forced[i] for i in chunk if forced[i] is not None}
            if free:
                prefixes = [[self.goal_id] for _ in free]
                outs = self._greedy([ctx_ids[i] for i in free], prefixes, stop={self.item_id, self.eos_id, self.seeker_id}, max_new=24)
                for i, new in zip(free, outs):
                    goal, topics = parse_steps(self.tokenizer.decode([self.goal_id] + new, skip_special_tokens=False))
                    item = top_items[i] if goal == "recommend" and top_items[i] != NONE else NONE
                    steps[i] = Steps(goal, topics, item)
            # Phase 2: the reply after "[goal] … [item] title [recommender]".
            prefixes = [self.encode(steps[i].render(), self.config.max_target_tokens) for i in chunk]
            outs = self._greedy([ctx_ids[i] for i in chunk], prefixes, stop={self.eos_id, self.seeker_id, self.recommender_id},
                                max_new=max(1, self.config.max_new_tokens - 20))
            for i, new in zip(chunk, outs):
                reply = self.tokenizer.decode([t for t in new if t not in (self.eos_id, self.seeker_id, self.recommender_id)],
                                              skip_special_tokens=False)
                reply = reply.replace("<pad>", "").replace("</s>", "").strip()
                results[i] = Generated(steps[i].goal, steps[i].topics, steps[i].item, reply)
        return results  # type: ignore[return-value]

    def _greedy(self, contexts: list[list[int]], prefixes: list[list[int]], stop: set[int], max_new: int) -> list[list[int]]:
        """Greedy continuation of each (context, prefix) until a stop id; returns the new ids (stop id included)."""
        if self.is_seq2seq:
            # An empty context (the recommender opens the dialogue) is one <pad>, as in training (collate).
            enc_ids, enc_mask = pad_right([c or [self.pad_id] for c in contexts] or [[self.pad_id]], self.pad_id)
            encoder_out = self.model.get_encoder()(input_ids=enc_ids.to(self.device), attention_mask=enc_mask.to(self.device))
            # Decoder prefixes of different lengths: left-pad and let the mask hide the padding
            # (T5's position bias is relative, so left padding does not move the tokens).
            rows = [[self.pad_id] + prefix for prefix in prefixes]  # decoder start token is <pad>
            dec_ids, dec_mask = pad_left(rows, self.pad_id)
            # The decoder start <pad> must stay visible: pad_left masks by length, so it is.
            return self._loop(dec_ids, dec_mask, stop, max_new, encoder_out=encoder_out, enc_mask=enc_mask.to(self.device))
        rows = [ctx + prefix for ctx, prefix in zip(contexts, prefixes)]
        ids, mask = pad_left(rows, self.pad_id)
        return self._loop(ids, mask, stop, max_new)

    def _loop(self, ids: torch.Tensor, mask: torch.Tensor, stop: set[int], max_new: int, encoder_out=None, enc_mask=None) -> list[list[int]]:
        ids, mask = ids.to(self.device), mask.to(self.device)
        batch = ids.size(0)
        positions = (mask.cumsum(1) - 1).clamp(min=0)
        past = None
        done = torch.zeros(batch, dtype=torch.bool, device=self.device)
        new: list[list[int]] = [[] for _ in range(batch)]
        step_ids, step_pos = ids, positions
        for _ in range(max_new):
            if encoder_out is not None:
                out = self.model(encoder_outputs=encoder_out, attention_mask=enc_mask, decoder_input_ids=step_ids,
                                 decoder_attention_mask=mask, past_key_values=past, use_cache=True)
            else:
                out = self.model(input_ids=step_ids, attention_mask=mask, position_ids=step_pos, past_key_values=past, use_cache=True)
            past = out.past_key_values
            logits = out.logits[:, -1].float()
            logits[:, self.pad_id] = -math.inf
            token = logits.argmax(-1)
            token = torch.where(done, torch.full_like(token, self.pad_id), token)
            for row in torch.nonzero(~done).flatten().tolist():
                new[row].append(int(token[row]))
            done |= torch.tensor([int(t) in stop for t in token.tolist()], device=self.device)
            if bool(done.all()):
                break
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
            step_pos = step_pos[:, -1:] + 1
            step_ids = token.unsqueeze(1)
        return new

    # ------------------------------------------------------------------ perplexity

    @torch.no_grad()
    def reply_loss(self, examples: Sequence[ConvExample], batch_size: int = 64) -> tuple[float, int]:
        """Summed negative log-likelihood of the gold replies (the tokens after ``[recommender]``,
        ``</s>`` included) given the context and the gold prompt steps, and the number of tokens."""
        total, count = 0.0, 0
        for start in range(0, len(examples), batch_size):
            pairs, spans = [], []
            for example in examples[start : start + batch_size]:
                steps = self.encode(example.steps.render(), self.config.max_target_tokens - 1)
                target = (steps + self.encode(example.reply, self.config.max_target_tokens))[: self.config.max_target_tokens - 1] + [self.eos_id]
                pairs.append((self.context_ids(example.context), target))
                spans.append(min(len(steps), len(target) - 1))
            batch = self.collate(pairs)
            scored = batch["labels"].clone()
            for row, skip in enumerate(spans):  # score the reply only, not the steps
                positions = torch.nonzero(scored[row] != IGNORE).flatten()
                scored[row, positions[:skip]] = IGNORE
            loss, tokens = summed_nll(self.model, batch, self.is_seq2seq, scored)
            total, count = total + loss, count + tokens
        return total, count
