"""The reply generator's task: prompt steps, training examples, decoding and the ``[REC]`` state.

Fixed-prompt PTM tuning (the survey's term; UniMIND, BARCOR and RecInDial do the same): one
generator, all weights tuned, learns to write every recommender turn as

    <context> [goal] recommend [topic] comedy, Jim Carrey [item] The Mask (1994) [recommender] have you seen [REC]?</s>

after the dialogue context ``[seeker] … [recommender] … [seeker] …``. The hard prompt tokens mark
the sub-tasks: ``[goal]`` the turn's goal (:func:`derive_goal`, ReDial has no goal labels),
``[topic]`` the non-movie KG entities the turn talks about (:func:`turn_topics`), ``[item]`` the
movie it recommends, and ``[REC]`` each place in the reply where a new movie is recommended. Movies
already mentioned in the dialogue keep their titles in the reply.

Serving decodes in two phases: the generator writes the goal and topics; when the goal is to
recommend, the ``[item]`` step is set to the recommender's best movie (so the reply is written
about the movie that fills its ``[REC]`` slot); then it writes the reply. The coupling the other way:
:meth:`ReplyGenerator.rec_state` is the generator's last hidden state at a ``[REC]`` token after the
context, which the recommender takes as one more input (``rec.rec_state_dim``).
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections import ChainMap, Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, PreTrainedModel

from crs.config import ConvConfig
from crs.data.catalogue import Catalogue
from crs.data.redial import SEEKER, Dialogue, Turn, render_mentions
from crs.data.samples import Sample, dialogue_samples
from crs.rec.model import DialogueContext
from crs.text.tokenizer import (
    GOAL_TOKEN,
    ITEM_TOKEN,
    REC_TOKEN,
    RECOMMENDER_TOKEN,
    SEEKER_TOKEN,
    TOPIC_TOKEN,
    escape_control_tokens,
    load_tokenizer,
)

logger = logging.getLogger(__name__)

GENERATOR_DIR, TOKENIZER_DIR = "generator", "tokenizer"
NONE = "none"
MAX_TOPICS = 3
IGNORE = -100

# --------------------------------------------------------------------------- goal rules

GOALS = ("recommend", "discuss", "ask_preference", "greet", "farewell", "chat")
_GREETING_RE = re.compile(r"\b(hi|hello|hey|hiya|howdy|good (morning|afternoon|evening))\b", re.I)
_FAREWELL_RE = re.compile(r"\b(bye|goodbye|good bye|have a (good|great|nice)|enjoy|take care|see you|nice (talking|chatting))\b", re.I)
_PREFERENCE_RE = re.compile(
    r"\b(what (kind|kinds|type|types|sort|genre|genres)|which (kind|type|genre)|what (do|would) you (like|enjoy|prefer|want)|"
    r"favou?rite|looking for|in the mood|do you (like|enjoy|prefer)|are you (into|a fan)|what movies?|any (particular|specific))\b",
    re.I,
)


def derive_goal(response: Turn, new_movies: Sequence[int], recommender_turn: int, recommender_turns: int) -> str:
    """The goal of a recommender turn, by the first rule that applies:

    1. ``recommend``: the turn mentions a movie not mentioned earlier in the dialogue;
    2. ``discuss``: it mentions only movies mentioned before;
    3. ``ask_preference``: a question ("?") about tastes ("what kind of", "favorite", "looking for", "do you like", …);
    4. ``farewell``: one of the last two recommender turns, with a farewell phrase ("bye", "enjoy", "have a good …");
    5. ``greet``: one of the first two recommender turns, with a greeting ("hi", "hello", "hey", "good morning");
    6. ``chat``: anything else (thanks, small talk, answers).

    ``recommender_turn`` counts from 0; ``recommender_turns`` is the dialogue's number of recommender turns.
    """
    text = response.text
    if new_movies:
        return "recommend"
    if response.movies:
        return "discuss"
    if "?" in text and _PREFERENCE_RE.search(text):
        return "ask_preference"
    if recommender_turn >= recommender_turns - 2 and _FAREWELL_RE.search(text):
        return "farewell"
    if recommender_turn < 2 and _GREETING_RE.search(text):
        return "greet"
    return "chat"


def turn_topics(text: str, linker) -> list[str]:
    """The non-movie KG entities (genres, people) linked in ``text``: readable names, first mention first, at most 3."""
    names = []
    for entity in linker.link(text):
        if entity.kind != "movie" and entity.name not in names:
            names.append(entity.name)
    return names[:MAX_TOPICS]


# --------------------------------------------------------------------------- text layout


@dataclass
class Steps:
    """The prompt steps of one recommender turn."""

    goal: str
    topics: list[str]
    item: str  # the recommended movie's "Title (Year)", or "none"

    def render(self) -> str:
        topics = ", ".join(self.topics) if self.topics else NONE
        return f"{GOAL_TOKEN} {self.goal} {TOPIC_TOKEN} {topics} {ITEM_TOKEN} {self.item or NONE} {RECOMMENDER_TOKEN}"


@dataclass
class ConvExample:
    context: str  # "[seeker] … [recommender] …"
    steps: Steps
    reply: str  # the recommender turn, new movies as [REC], others as titles
    movies: list[int]  # gold new movies of the turn (ReDial ids)
    conversation_id: str = ""

    @property
    def target(self) -> str:
        return f"{self.steps.render()} {self.reply}"


def render_turns(turns: Sequence[Turn], titles: Mapping[int, str]) -> str:
    """``[seeker] text [recommender] text …``: text escaped, ``@id`` mentions as titles."""
    return " ".join(
        f"{SEEKER_TOKEN if turn.role == SEEKER else RECOMMENDER_TOKEN} {render_mentions(escape_control_tokens(turn.text), titles)}"
        for turn in turns
    )


def render_context(context: DialogueContext, titles: Mapping[int, str]) -> str:
    return render_turns(context.turns, titles)


def dialogue_examples(dialogue: Dialogue, titles: Mapping[int, str], linker,
                      samples: Sequence[Sample] | None = None) -> list[ConvExample]:
    """One example per recommender turn of ``dialogue`` (``samples``: its samples, when already built)."""
    titles = ChainMap(titles, dialogue.movie_mentions)
    samples = dialogue_samples(dialogue) if samples is None else samples
    return [sample_example(sample, titles, linker, position, len(samples)) for position, sample in enumerate(samples)]


def sample_example(sample: Sample, titles: Mapping[int, str], linker, recommender_turn: int, recommender_turns: int) -> ConvExample:
    goal = derive_goal(sample.response, sample.new_movies, recommender_turn, recommender_turns)
    slotted = ChainMap({movie: REC_TOKEN for movie in sample.new_movies}, titles)
    reply = render_mentions(escape_control_tokens(sample.response.text), slotted)
    plain = render_mentions(sample.response.text, titles)
    item = titles.get(sample.new_movies[0], NONE) if sample.new_movies else NONE
    return ConvExample(
        context=render_turns(sample.context, titles),
        steps=Steps(goal, turn_topics(plain, linker), item),
        reply=reply,
        movies=list(sample.new_movies),
        conversation_id=sample.conversation_id,
    )


def build_examples(dialogues: Iterable[Dialogue], catalogue: Catalogue, linker) -> list[ConvExample]:
    return [example for dialogue in dialogues for example in dialogue_examples(dialogue, catalogue.titles, linker)]


def goal_distribution(examples: Sequence[ConvExample]) -> dict[str, float]:
    counts = Counter(example.steps.goal for example in examples)
    return {goal: round(counts[goal] / max(len(examples), 1), 4) for goal in GOALS}


def parse_steps(text: str) -> tuple[str, list[str]]:
    """(goal, topics) from a decoded ``"[goal] g [topic] a, b [item]"`` prefix; unknown parts read as "chat"/[]."""
    goal_part = text.split(GOAL_TOKEN, 1)[-1].split(TOPIC_TOKEN, 1)[0].strip()
    topic_part = text.split(TOPIC_TOKEN, 1)[1].split(ITEM_TOKEN, 1)[0].strip() if TOPIC_TOKEN in text else ""
    goal = goal_part if goal_part in GOALS else "chat"
    topics = [t.strip() for t in topic_part.split(",") if t.strip() and t.strip() != NONE]
    return goal, list(dict.fromkeys(topics))[:MAX_TOPICS]


# --------------------------------------------------------------------------- the generator


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


# --------------------------------------------------------------------------- helpers


def load_model(folder: str | Path) -> PreTrainedModel:
    """A saved backbone (causal or seq2seq, read from its config), in float32."""
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder} has no config.json (not a saved generator)")
    config = AutoConfig.from_pretrained(str(folder))
    auto = AutoModelForSeq2SeqLM if config.is_encoder_decoder else AutoModelForCausalLM
    return auto.from_pretrained(str(folder), dtype=torch.float32)


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
    device = next(model.parameters()).device
    batch = {k: v.to(device) for k, v in batch.items()}
    labels = batch.pop("labels")
    scored = labels if scored is None else scored.to(device)
    if seq2seq:
        batch["decoder_input_ids"] = model._shift_right(labels)
    logits = model(**batch).logits.float()
    if not seq2seq:  # position t predicts token t + 1
        logits, scored = logits[:, :-1], scored[:, 1:]
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), scored.reshape(-1), ignore_index=IGNORE, reduction="sum")
    return float(loss), int((scored != IGNORE).sum())


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

