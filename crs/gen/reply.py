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

import contextlib
import copy
import json
import math
import re
import zlib
from collections import Counter
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from transformers import PreTrainedModel

from crs.config import ConvConfig
from crs.data.catalogue import Catalogue
from crs.data.context import DialogueContext
from crs.gen import fast
from crs.gen.backbone import IGNORE, collate, load_model, pad_left, pad_right, row_nll, save_model
from crs.gen.exemplars import INDEX_DIR, ExemplarIndex, context_key
from crs.gen.goal_head import GOAL_HEAD_FILE, GoalHead, goal_features
from crs.gen.topic_head import TOPIC_HEAD_FILE, TopicHead
from crs.gen.prompting import (
    PROMPT_DIR,
    ContextIds,
    PromptedLM,
    SoftPrompt,
    context_entities,
    is_lora,
    load_prompt,
    merge_lora,
    save_prompt,
)
from crs.gen.prompting import present as prompt_present
from crs.gen.steps import _FAREWELL_RE, GOALS, NONE, ConvExample, Steps, parse_steps, render_context
from crs.padding import length_chunks
from crs.precision import autocast, inference_precision
from crs.text.tokenizer import (
    EXEMPLAR_TOKEN,
    GOAL_TOKEN,
    ITEM_TOKEN,
    REC_TOKEN,
    RECOMMENDER_TOKEN,
    SEEKER_TOKEN,
    TOPIC_TOKEN,
    load_tokenizer,
)

GENERATOR_DIR, TOKENIZER_DIR = "generator", "tokenizer"
GOAL_BIAS_FILE = "goal_bias.json"  # a checkpoint's calibrated goal step (crs.eval.goals)
GENERIC_NGRAMS = 200  # the most common training-reply bigrams, penalised when reranking
_WORD_RE = re.compile(r"[a-z0-9']+")


def _words(text: str) -> list[str]:
    return _WORD_RE.findall(text.lower())


def _bigrams(text: str) -> list[tuple[str, str]]:
    words = _words(text)
    return list(zip(words, words[1:]))


def rerank_bonus(reply: str, reference: str, generic: frozenset) -> float:
    """What reranking adds to a candidate's mean token log-probability: the share of its words found
    in ``reference`` (the user's last turn and the exemplars), minus the share of its bigrams among
    the ``generic`` ones; an empty candidate loses."""
    words = _words(reply)
    if not words:
        return -math.inf
    known = set(_words(reference))
    overlap = sum(w in known for w in words) / len(words)
    grams = list(zip(words, words[1:]))
    common = sum(g in generic for g in grams) / len(grams) if grams else 1.0
    return overlap - common


def read_goal_bias(path: Path) -> list[float] | None:
    """A checkpoint's ``goal_bias.json`` (``{"bias": {goal: value}}``), or None without one; a
    broken file is named."""
    if not path.is_file():
        return None
    try:
        bias = json.loads(path.read_text(encoding="utf-8"))["bias"]
        return [float(bias[goal]) for goal in GOALS]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path}: not a goal bias file ({error!r}; expected {{\"bias\": {{goal: number}}}} for {', '.join(GOALS)})") from error


def write_goal_bias(path: Path, bias: Sequence[float], metrics: dict | None = None) -> None:
    path.write_text(json.dumps({"bias": dict(zip(GOALS, (round(float(b), 4) for b in bias))), **(metrics or {})}, indent=2) + "\n",
                    encoding="utf-8")


def fits_turn(reply: str, recommends: bool, goal: str = "") -> bool:
    """Whether a retrieved training reply can answer a turn: it has at least three words, a
    ``[REC]`` slot (one or two) exactly when the turn recommends a movie, and, when the turn's goal
    is ``farewell``, the leave-taking that made a training turn a farewell ("bye", "enjoy", "have a
    good night": :func:`crs.gen.steps.derive_goal`), not a reply such as "Yeah that's true"."""
    slots = reply.count(REC_TOKEN)
    if goal == "farewell" and not _FAREWELL_RE.search(reply):
        return False
    return len(_words(reply.replace(REC_TOKEN, " "))) >= 3 and (1 <= slots <= 2 if recommends else slots == 0)


@dataclass
class Generated:
    goal: str
    topics: list[str]
    item: str
    reply: str  # with [REC] slots
    # "generated", or "retrieved" when hybrid decoding chose a training reply.
    source: str = "generated"
    # Hybrid decoding: every candidate it chose from, (reply, mean token log-probability), the
    # generator's own first (empty for the other decodings).
    candidates: list[tuple[str, float]] = field(default_factory=list)
    # Hybrid decoding with ``conv.generic_penalty``: each candidate's mean token log-probability
    # after the same prompt steps at the start of a dialogue (no context), in the same order.
    generic: list[float] = field(default_factory=list)

    def choice_scores(self, penalty: float) -> list[float]:
        """Each candidate's score for hybrid decoding's choice: its mean token log-probability after
        the context, minus ``penalty`` times the same without the context (:attr:`generic`; the
        anti-language-model form of Li et al. 2016's maximum mutual information objective, which
        favours replies that this context, not every context, makes likely)."""
        if penalty and self.generic:
            return [score - penalty * generic for (_, score), generic in zip(self.candidates, self.generic)]
        return [score for _, score in self.candidates]


def hybrid_choice(scores: Sequence[float], margin: float, broken: bool = False) -> int:
    """The candidate hybrid decoding answers with, given each candidate's score (the generated
    reply's first, then the retrieved ones'): the best retrieved one when it scores within
    ``margin`` of the generated one or the generated one is ``broken`` (:func:`unusable`), else 0
    (the generated reply)."""
    if len(scores) < 2:
        return 0
    best = max(range(1, len(scores)), key=scores.__getitem__)
    return best if broken or scores[best] >= scores[0] - margin else 0


_STRAY_LETTER_RE = re.compile(r"(?<![\w'’@\[])(?![aiAI]\b)[a-zA-Z](?![\w'’.\]])")
_WORD_RUN_RE = re.compile(r"\b(\w+)(?:\W+\1\b){2,}", re.IGNORECASE)


def degenerate(reply: str) -> bool:
    """Whether a generated reply broke down: two or more stray letters ("It's about a s a e") or
    one word three times in a row ("bye bye bye", "who who who")."""
    return len(_STRAY_LETTER_RE.findall(reply)) >= 2 or bool(_WORD_RUN_RE.search(reply))


# A statement of what a movie is about ("It's about a linguist who learns to talk to aliens", "[REC]
# is a comedy about two cops", "it tells the story of ...", "it's set in a utopian society"). A checkpoint holds no plots (only names,
# genres, people and years), so no reply can know one: a generated plot is invented, and a retrieved
# training reply's plot is that of the movie it was written for, not of the one it would recommend
# here. Questions ("What's it about?", "Is it about a dog?") state nothing; times ("about a month
# ago", "about 2 hours long") and "about to" are not plots.
_PLOT_FILLER = r"(?:(?:basically|all|mostly|really|just|kind\s+of|sort\s+of|actually|pretty\s+much|also)\s+)?"
_PLOT_TIME = (r"(?:a|an|\d+|two|three|few|couple)\s+(?:(?:few|couple\s+of)\s+)?"
              r"(?:seconds?|minutes?|hours?|days?|weeks?|months?|years?|decades?|times?|of\s+(?:weeks|months|years|days))\b")
# Subjects a plot is told by without an article ("it's about time travel", "a film about boxing").
_PLOT_TOPIC = (r"(?:time\s+travel(?:l?ing)?|aliens?|zombies?|vampires?|werewolf|werewolves|ghosts?|robots?|dinosaurs?|sharks?|monsters?|"
               r"superheroes|outer\s+space|revenge|survival|friendship|racism|slavery|drugs|football|baseball|basketball|boxing|cancer|dogs?|cats?)\b")
_PLOT_SUBJECT = (r"(?:" + _PLOT_TOPIC + r"|a|an|the|two|three|four|five|some|several|this|these|his|her|their|how|what|when|why|people|\d+|"
                 r"(?!to\b)(?:\w+\s+){0,2}\w+\s+(?:who|that|whose)\b)")
PLOT_RE = re.compile(
    r"(?:\b(?:it|this|that|which|movie|film|one|story|show|series)\s+(?:is\s+|was\s+)?|(?:'s|’s|\bits|\bis|\bwas)\s+)"
    + _PLOT_FILLER + r"(?:(?:a|an)\s+)?(?:(?:\w+\s+){0,2}(?:movie|film|story|documentary|comedy|drama|thriller|show)\s+)?"
    r"about\s+(?!" + _PLOT_TIME + r")" + _PLOT_SUBJECT
    + r"|\b(?:it|the\s+(?:movie|film|story))(?:'s|’s|\s+is|\s+was)\s+set\s+(?:in|on|during)\s+(?:a|an|the)\b|\btakes\s+place\s+(?:in|on|during)\s+(?:a|an)\b"
    + r"|\btells\s+the\s+story\s+of\b|\bthe\s+(?:true\s+)?story\s+of\b|\b(?:it|the\s+movie|the\s+film)\s+follows\s+(?:a|an|the)\b"
    # a slot followed by who does what ("[REC] a group of women team up to ...", "[REC] is a cop who ...")
    + r"|\[REC\]\s*[,:(-]?\s*(?:is\s+)?(?:about\s+)?(?:a|an)\s+(?!must\b|try\b)(?:[\w'-]+\s+){0,4}?(?<!\bone\s)(?:who|team\s+up|teams\s+up|must|"
    r"tries|try|travels|discovers|decides|falls?\s+in|sets?\s+out|embarks?|goes\s+on|go\s+on|gets?\s+(?:stuck|trapped|lost)|"
    r"finds?\s+(?:out|himself|herself|themselves)|(?:is|are)\s+forced|has\s+to|have\s+to|wakes\s+up|wants\s+to|plans?\s+to|learns?)\b",
    re.IGNORECASE)
_STATEMENT_RE = re.compile(r"[^.!?]*(?:[.!?]+|$)")


def describes_plot(text: str) -> bool:
    """Whether ``text`` states what a movie is about (:data:`PLOT_RE`) in a sentence that is not a question."""
    return any(PLOT_RE.search(s) for s in _STATEMENT_RE.findall(text) if s.strip() and not s.rstrip().endswith("?"))


def unusable(reply: str) -> bool:
    """Whether a generated reply should give way to a retrieved one in hybrid decoding: it broke
    down (:func:`degenerate`) or tells a plot, which the generator can only invent (:func:`describes_plot`)."""
    return degenerate(reply) or describes_plot(reply)


# Candidate scoring runs at most this many candidate sequences in one forward pass (their logits
# span the whole vocabulary, so this bounds the serving process's memory under load).
MAX_TAILS_PER_PASS = 32


def tail_chunks(counts: Sequence[int], max_rows: int, max_tails: int) -> list[tuple[int, int]]:
    """Consecutive row ranges [start, stop) of at most ``max_rows`` rows and ``max_tails`` candidates
    in all (a row with more candidates than that forms a range of its own)."""
    chunks, start, total = [], 0, 0
    for row, count in enumerate(counts):
        if row > start and (row - start >= max_rows or total + count > max_tails):
            chunks.append((start, row))
            start, total = row, 0
        total += count
    if start < len(counts):
        chunks.append((start, len(counts)))
    return chunks


CONTEXT_PASS_COST = 1000  # a decoding pass's fixed cost in padded context tokens (crs.padding)
TAIL_PASS_COST = 64  # a candidate-scoring pass's, in padded candidate tokens


def _output_layer(model: torch.nn.Module) -> torch.nn.Module | None:
    """The output (vocabulary) layer of a generator, of the backbone inside a :class:`PromptedLM`."""
    return (model.backbone if isinstance(model, PromptedLM) else model).get_output_embeddings()


class ReplyGenerator:
    """A tuned backbone with its tokenizer: decoding, ``[REC]`` state, and reply perplexity."""

    def __init__(self, tokenizer, model: PreTrainedModel, backbone: str, config: ConvConfig, device: str = "cpu",
                 prompt: SoftPrompt | None = None):
        self.tokenizer = tokenizer
        # With a soft prompt (crs.gen.prompting), ``model`` runs inside a PromptedLM that puts the
        # prompt before every sequence; ``backbone_model`` is the generator itself either way.
        self.backbone_model = model
        self.prompt = prompt
        self.model = (PromptedLM(model, prompt) if prompt is not None else model).to(device).eval()
        # Rendered context text -> the KG entity ids linked in it; a conditioned (kg) prompt reads
        # them (CRS.from_pretrained sets it with the recommender's linker).
        self.entity_source: Callable[[str], list[int]] | None = None
        self.backbone = backbone
        self.config = config
        self.device = device
        ids = tokenizer.convert_tokens_to_ids
        self.goal_id, self.topic_id, self.item_id, self.rec_id = ids([GOAL_TOKEN, TOPIC_TOKEN, ITEM_TOKEN, REC_TOKEN])
        self.seeker_id, self.recommender_id = ids([SEEKER_TOKEN, RECOMMENDER_TOKEN])
        self.eos_id, self.pad_id = tokenizer.eos_token_id, tokenizer.pad_token_id
        # The [exemplar] token and the index it draws from (None for generators trained without them).
        self.exemplar_id: int | None = tokenizer.get_vocab().get(EXEMPLAR_TOKEN)
        self._exemplar_index: ExemplarIndex | None = None
        self._index_folder: Path | None = None  # a checkpoint's exemplars/, read on first use
        # Added to each goal's log-probability (GOALS order) when the goal step is chosen; None: the
        # goal is decoded greedily with the topics (crs.eval.goals fits it on validation turns).
        self.goal_bias: list[float] | None = None
        # The goal step as a classifier over the goal scores and the dialogue's shape (crs.gen.goal_head);
        # when set, :meth:`generate` chooses goals with it (it takes precedence over goal_bias).
        self.goal_head: GoalHead | None = None
        # The topic step as a classifier over the candidates' scores and features (crs.gen.topic_head);
        # when set, a scored topic step given candidate features uses it instead of topic_none_bias.
        self.topic_head: TopicHead | None = None
        # Decoding arithmetic: None follows the process's inference precision (crs.precision).
        self.precision: str | None = None
        # Decoding's forward passes (decoding_precision): (FastGPT2 or bf16 copy, the model it was made
        # from, that model's weight versions), and whether decoding is under way.
        self._fast: tuple[fast.FastGPT2, torch.nn.Module, int] | None = None
        self._twin: tuple[torch.nn.Module, torch.nn.Module, int] | None = None
        self._decoding = False

    @contextlib.contextmanager
    def decoding_precision(self):
        """Decoding in the generator's precision (``precision``, else the process's inference
        precision, :mod:`crs.precision`), on the forward pass made for it (:meth:`_decoder`): a plain
        GPT-2 generator decodes on :class:`crs.gen.fast.FastGPT2` (in bf16 its weight products in
        bf16, the residual stream and norms in fp32, greedy choices and candidate scores from fp32
        logits: :meth:`_loop`, :meth:`_tail_log_probs`); another generator decodes on
        itself in fp32, or in bf16 on a bf16 copy of itself under autocast, the output layer kept
        fp32 (the original weights). Either is made on first use and made again when the weights
        change. Greedy choices between close words and the candidates' log-probabilities are thus
        never rounded to bf16's 8 bits; a copy is used because autocast alone casts every weight
        again at every step, which made batch-1 decoding slower than fp32."""
        if self._decoding:  # already inside
            yield
            return
        original = self.model
        try:
            self.model, scope = self._decoder(self.precision or inference_precision())
            self._decoding = True
            with scope:
                yield
        finally:
            self.model, self._decoding = original, False

    def _decoder(self, precision: str) -> tuple[object, contextlib.AbstractContextManager]:
        """What decodes in ``precision`` (see :meth:`decoding_precision`) and the context it runs in."""
        version = sum(p._version for p in self.model.parameters())
        if fast.supports(self.model):
            dtype = torch.bfloat16 if precision == "bf16" else torch.float32
            if self._fast is None or self._fast[1] is not self.model or self._fast[2] != version or self._fast[0].dtype != dtype:
                self._fast = (fast.FastGPT2(self.model, dtype), self.model, version)
            return self._fast[0], contextlib.nullcontext()
        if precision != "bf16":
            return self.model, contextlib.nullcontext()
        if self._twin is None or self._twin[1] is not self.model or self._twin[2] != version:
            twin = copy.deepcopy(self.model).to(torch.bfloat16).eval()
            source, head = (_output_layer(m) for m in (self.model, twin))
            if head is not None and source is not None:
                def fp32_head(hidden: torch.Tensor, source=source) -> torch.Tensor:
                    with torch.autocast(hidden.device.type, enabled=False):
                        return source(hidden.float())

                head.forward = fp32_head
            self._twin = (twin, self.model, version)
        return self._twin[0], autocast(self.device, precision)

    @property
    def exemplar_index(self) -> ExemplarIndex | None:
        """The retrieval index: built by training, or a checkpoint's, read when first needed (a
        generator served without exemplars never reads it)."""
        if self._exemplar_index is None and self._index_folder is not None:
            self._exemplar_index = ExemplarIndex.load(self._index_folder)
        return self._exemplar_index

    @exemplar_index.setter
    def exemplar_index(self, index: ExemplarIndex | None) -> None:
        self._exemplar_index, self._index_folder = index, None

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
        prompt = None
        if prompt_present(folder / PROMPT_DIR):
            if is_lora(folder / PROMPT_DIR):  # LoRA adapters: merged, the generator is then a plain one
                model = merge_lora(model, folder / PROMPT_DIR)
            else:
                prompt = load_prompt(folder / PROMPT_DIR, model)
        conv = config.conv if config.conv.serve_exemplars < 0 else replace(config.conv, exemplars=config.conv.serve_exemplars)
        generator = cls(tokenizer, model, config.generator.backbone, conv, device, prompt)
        if ExemplarIndex.present(folder / INDEX_DIR):
            generator._index_folder = folder / INDEX_DIR
        generator.goal_bias = read_goal_bias(folder / GOAL_BIAS_FILE)
        if (folder / GOAL_HEAD_FILE).is_file():
            generator.goal_head = GoalHead.load(folder / GOAL_HEAD_FILE)
        if (folder / TOPIC_HEAD_FILE).is_file():
            generator.topic_head = TopicHead.load(folder / TOPIC_HEAD_FILE)
        return generator

    def save_pretrained(self, folder: str | Path, half: bool = False, model: PreTrainedModel | None = None) -> None:
        """``generator/`` (safetensors; fp16 when ``half``; ``model`` instead of this generator's
        backbone when given), ``prompt/`` and the exemplar index ``exemplars/`` when there are ones,
        and ``tokenizer/`` into an existing folder."""
        folder = Path(folder)
        save_model(model if model is not None else self.backbone_model, folder / GENERATOR_DIR, half)
        if self.prompt is not None:
            save_prompt(self.prompt, folder / PROMPT_DIR)
        self.tokenizer.save_pretrained(str(folder / TOKENIZER_DIR))
        if self.exemplar_index is not None:
            self.exemplar_index.save(folder / INDEX_DIR)

    # ------------------------------------------------------------------ exemplars

    @property
    def uses_exemplars(self) -> bool:
        return self.config.exemplars > 0 and self.exemplar_id is not None and self.exemplar_index is not None

    def retrieve(self, keys: Sequence[str], exclude: Sequence[str] | None = None) -> list[list[str]]:
        """The exemplars of each context key (:func:`crs.gen.exemplars.context_key`); [] without an index."""
        if not self.uses_exemplars:
            return [[] for _ in keys]
        return self.exemplar_index.query(keys, self.config.exemplars, exclude)

    # ------------------------------------------------------------------ tokenisation

    def encode(self, text: str, limit: int, keep: str = "left") -> list[int]:
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) > limit:
            ids = ids[-limit:] if keep == "left" else ids[:limit]
        return ids

    def context_ids(self, context: str, exemplars: Sequence[str] = (), entities: Sequence[int] | None = None) -> ContextIds:
        """The context's last ``max_context_tokens`` ids, then ``[exemplar] reply`` for each exemplar
        (each cut to ``max_exemplar_tokens``) when this generator takes them. With a conditioned
        prompt the ids carry the context's linked entities (``entities``, else :attr:`entity_source`'s)."""
        ids = self.encode(context, self.config.max_context_tokens, keep="left")
        if self.exemplar_id is not None:
            for exemplar in exemplars:
                ids += [self.exemplar_id] + self.encode(exemplar, self.config.max_exemplar_tokens, keep="right")
        if entities is None and self.conditioned and self.entity_source is not None:
            entities = self.entity_source(context)
        return ContextIds.of(ids, entities or ())

    @property
    def conditioned(self) -> bool:
        """Whether the generator's prompt reads the context's linked entities (a kg prompt)."""
        return self.prompt is not None and self.prompt.conditioned

    def prompt_fields(self, contexts: Sequence[Sequence[int]]) -> dict[str, torch.Tensor]:
        """What a conditioned prompt reads for a batch whose rows start with ``contexts``: the linked
        entities (B, E; -1 pads) and each row's number of context tokens; {} for other generators."""
        if not self.conditioned:
            return {}
        found = context_entities(contexts)
        width = max([len(e) for e in found] + [1])
        entities = torch.full((len(found), width), -1, dtype=torch.long)
        for row, ids in enumerate(found):
            if ids:
                entities[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        return {"prompt_entities": entities.to(self.device),
                "prompt_context": torch.tensor([len(c) for c in contexts], dtype=torch.long, device=self.device)}

    def target_ids(self, target: str) -> list[int]:
        return self.encode(target, self.config.max_target_tokens - 1, keep="right") + [self.eos_id]

    def scored_target(self, steps: list[int], reply: str) -> tuple[list[int], int]:
        """The target ids of a reply after the prompt steps' ids, cut to ``max_target_tokens`` with
        ``</s>`` last, and how many of its first ids are steps (scored by neither perplexity nor
        hybrid decoding)."""
        target = (steps + self.encode(reply, self.config.max_target_tokens))[: self.config.max_target_tokens - 1] + [self.eos_id]
        return target, min(len(steps), len(target) - 1)

    def collate(self, pairs: Sequence[tuple[list[int], list[int]]]) -> dict[str, torch.Tensor]:
        """A training batch of (context ids, target ids); loss only on the target."""
        return {**collate(pairs, self.is_seq2seq, self.pad_id), **self.prompt_fields([c for c, _ in pairs])}

    # ------------------------------------------------------------------ the [REC] state

    @torch.no_grad()
    def rec_state(self, contexts: Sequence[DialogueContext], catalogue: Catalogue) -> torch.Tensor:
        return self.rec_state_texts([render_context(c, catalogue.titles) for c in contexts])

    @torch.no_grad()
    def rec_state_texts(self, contexts: Sequence[str], batch_size: int = 64) -> torch.Tensor:
        """Last-layer hidden state at a ``[REC]`` token appended to each context: shape (B, hidden)."""
        out = []
        for start in range(0, len(contexts), batch_size):
            ctx = [self.context_ids(text) for text in contexts[start : start + batch_size]]
            rows = [c + [self.rec_id] for c in ctx]
            ids, mask = pad_right(rows, self.pad_id)
            ids, mask = ids.to(self.device), mask.to(self.device)
            if self.is_seq2seq:
                hidden = self.model.get_encoder()(input_ids=ids, attention_mask=mask).last_hidden_state
            else:
                hidden = self.model(input_ids=ids, attention_mask=mask, output_hidden_states=True,
                                    **self.prompt_fields(ctx)).hidden_states[-1]
            last = mask.sum(1) - 1
            out.append(hidden[torch.arange(len(rows)), last].float().cpu())
        return torch.cat(out) if out else torch.zeros(0, self.hidden_size)

    # ------------------------------------------------------------------ the KG prompt's state

    @torch.no_grad()
    def prompt_state(self, contexts: Sequence[DialogueContext], catalogue: Catalogue) -> torch.Tensor:
        return self.prompt_state_texts([render_context(c, catalogue.titles) for c in contexts])

    @torch.no_grad()
    def prompt_state_texts(self, contexts: Sequence[str], batch_size: int = 64) -> torch.Tensor:
        """The KG-conditioned prompt's state for each context (no exemplars): shape (B, encoder_dim),
        what a recommender trained with ``prompt.rec_input`` takes (:meth:`crs.gen.prompting.KGPrompt.state`)."""
        if not self.conditioned or not hasattr(self.prompt, "state"):
            raise ValueError("this generator has no KG-conditioned prompt, so it has no prompt state for the recommender")
        embeddings = self.model.get_input_embeddings()
        out = []
        for start in range(0, len(contexts), batch_size):
            ctx = [self.context_ids(text) for text in contexts[start : start + batch_size]]
            ids, mask = pad_right([c or [self.pad_id] for c in ctx], self.pad_id)
            fields = self.prompt_fields(ctx)
            mask = PromptedLM._context_mask(mask.to(self.device), fields["prompt_context"])  # an empty context masks its pad
            weight = self.prompt.queries
            state = self.prompt.state(len(ctx), fields["prompt_entities"], embeddings(ids.to(self.device)).to(weight.dtype), mask)
            out.append(state.float().cpu())
        return torch.cat(out) if out else torch.zeros(0, self.prompt.state_dim)

    # ------------------------------------------------------------------ decoding

    @torch.no_grad()
    def generate(self, contexts: Sequence[DialogueContext], rankings: Sequence[Sequence[tuple[int, float]]], catalogue: Catalogue,
                 forced: Sequence[Steps | None] | None = None, batch_size: int = 64,
                 topic_filter: Callable[[int, list[str]], list[str]] | None = None,
                 reply_filter: Callable[[int, str], bool] | None = None,
                 topic_candidates: Callable[[int], list[str]] | None = None) -> list[Generated]:
        texts = [render_context(c, catalogue.titles) for c in contexts]
        tops = [catalogue.titles[r[0][0]] if r else NONE for r in rankings]
        keys = [context_key(c.turns, catalogue.titles) for c in contexts]
        exemplars = self.retrieve(keys)
        features = np.stack([goal_features(c) for c in contexts]) if self.goal_head is not None and contexts else None
        return self.generate_texts(texts, tops, forced, batch_size, exemplars, topic_filter, keys=keys, reply_filter=reply_filter,
                                   topic_candidates=topic_candidates, goal_features=features)

    @torch.no_grad()
    def generate_texts(self, contexts: Sequence[str], top_items: Sequence[str], forced: Sequence[Steps | None] | None = None,
                       batch_size: int = 64, exemplars: Sequence[Sequence[str]] | None = None,
                       topic_filter: Callable[[int, list[str]], list[str]] | None = None,
                       keys: Sequence[str] | None = None, reply_filter: Callable[[int, str], bool] | None = None,
                       topic_candidates: Callable[[int], list[str]] | None = None,
                       goal_features: np.ndarray | None = None) -> list[Generated]:
        """Greedy two-phase decoding (see the module docstring). ``top_items[i]`` fills the ``[item]``
        step when the predicted goal is to recommend; ``forced[i]`` gives all steps instead;
        ``exemplars[i]``: the retrieved exemplars of context i. With ``topic_filter(i, topics)`` (the
        topics of row i it allows, e.g. KG neighbours of the recommended movie), a recommending turn
        whose topic step said "none" has it decoded again with "none" barred, and every topic
        step keeps only what the filter allows. ``keys[i]``: the retrieval key of context i
        (:func:`crs.gen.exemplars.context_key`), which hybrid decoding needs (without keys it decodes
        as norepeat); ``reply_filter(i, reply)``: whether a retrieved reply may answer row i (e.g. it
        names nothing the recommended movie's KG facts do not hold). With ``conv.topic_choice``
        "scored", ``topic_candidates(i)`` (names) replaces the decoded topics of row i by
        :meth:`choose_topic`'s pick among them, or, when ``topic_candidates.features(i)`` gives their
        features and the checkpoint has a :attr:`topic_head`, by the head's. ``goal_features`` (N, :data:`crs.gen.goal_head.FEATURES`):
        the contexts' goal features, with which :attr:`goal_head` chooses the goal step."""
        with self.decoding_precision():
            exemplars = list(exemplars) if exemplars is not None else [()] * len(contexts)
            forced = list(forced) if forced is not None else [None] * len(contexts)
            results: list[Generated | None] = [None] * len(contexts)
            all_ids = [self.context_ids(context, row_exemplars) for context, row_exemplars in zip(contexts, exemplars)]
            for chunk in length_chunks([len(ids) for ids in all_ids], batch_size, CONTEXT_PASS_COST):
                ctx_ids = {i: all_ids[i] for i in chunk}
                # One pass over the contexts that both phases continue (the rerank mode samples from
                # repeated rows and runs them as it always did).
                shared = self.context_states([ctx_ids[i] for i in chunk]) if self.config.decoding != "rerank" else None
                # Phase 1: the goal and topic steps, up to the [item] token.
                free = [i for i in chunk if forced[i] is None]
                steps: dict[int, Steps] = {i: forced[i] for i in chunk if forced[i] is not None}
                if free:
                    # Scored topics replace the decoded ones, so decoding then stops at [topic]: the goal
                    # comes out the same (greedy decoding is causal) and the topic words are not decoded.
                    scored = topic_candidates is not None and self.config.topic_choice == "scored"
                    stop = {self.item_id, self.eos_id, self.seeker_id} | ({self.topic_id} if scored else set())
                    headed = self.goal_head is not None and goal_features is not None
                    if headed or self.goal_bias is not None:  # the goal chosen by its classifier or calibrated score, then the topics decoded
                        goals = self.choose_goals([ctx_ids[i] for i in free], goal_features[free] if headed else None, shared)
                        prefixes = [self.encode(f"{GOAL_TOKEN} {goal} {TOPIC_TOKEN}", 16) for goal in goals]
                        outs = [[] for _ in free] if scored else self._greedy([ctx_ids[i] for i in free], prefixes, stop=stop, max_new=24,
                                                                              shared=shared)
                    else:
                        goals = None
                        prefixes = [[self.goal_id] for _ in free]
                        outs = self._greedy([ctx_ids[i] for i in free], prefixes, stop=stop, max_new=24, shared=shared)
                    parsed = {i: parse_steps(self.tokenizer.decode(prefix + new, skip_special_tokens=False))
                              for i, prefix, new in zip(free, prefixes, outs)}
                    if goals is not None:  # a chosen goal stands as chosen, whatever its words decode back to
                        parsed = {i: (goal, parsed[i][1]) for i, goal in zip(free, goals)}
                    if scored:
                        candidate_features = getattr(topic_candidates, "features", None)
                        chosen = self.choose_topics([ctx_ids[i] for i in free], [parsed[i][0] for i in free], [topic_candidates(i) for i in free],
                                                    [candidate_features(i) for i in free] if candidate_features is not None else None, shared)
                        parsed = {i: (parsed[i][0], topics) for i, topics in zip(free, chosen)}
                    elif topic_filter is not None:
                        parsed.update(self._topics_again([i for i in free if parsed[i] == ("recommend", [])], ctx_ids, shared))
                        parsed = {i: (goal, topic_filter(i, topics) if topics else []) for i, (goal, topics) in parsed.items()}
                    for i, (goal, topics) in parsed.items():
                        item = top_items[i] if goal == "recommend" and top_items[i] != NONE else NONE
                        steps[i] = Steps(goal, topics, item)
                # Phase 2: the reply after "[goal] … [item] title [recommender]".
                prefixes = {i: self.encode(steps[i].render(), self.config.max_target_tokens) for i in chunk}
                prefill: dict = {}  # phase 2's first pass, which hybrid decoding's scoring starts from
                replies = self._replies(list(chunk), ctx_ids, prefixes, contexts, exemplars, prefill, shared)
                for i in chunk:
                    results[i] = Generated(steps[i].goal, steps[i].topics, steps[i].item, replies[i])
                if self.config.decoding == "hybrid" and keys is not None:
                    self._hybrid([results[i] for i in chunk], [ctx_ids[i] for i in chunk], [prefixes[i] for i in chunk],
                                 [keys[i] for i in chunk], None if reply_filter is None else (lambda j, text, chunk=chunk: reply_filter(chunk[j], text)),
                                 prefill)
            return results  # type: ignore[return-value]

    @torch.no_grad()
    def reply_candidates(self, context: str, steps: Steps, samples: int, seed: int, greedy: bool = True) -> list[str]:
        """Replies to ``context`` with the prompt steps ``steps`` forced: the greedy one (no repeated
        3-gram) when ``greedy``, then ``samples`` nucleus samples drawn with ``seed``, in that order
        (the caller keeps the first that suits it, e.g. the simulated seeker, which needs its fact
        said). The samples depend on ``seed`` only, not on whether the greedy reply was asked for."""
        with self.decoding_precision():
            ctx = self.context_ids(context)
            prefix = self.encode(steps.render(), self.config.max_target_tokens)
            stop = {self.eos_id, self.seeker_id, self.recommender_id}
            max_new = max(1, self.config.max_new_tokens - 20)
            options = {"no_repeat": 3, "min_new": self.config.min_reply_tokens}
            outs = self._greedy([ctx], [prefix], stop=stop, max_new=max_new, **options) if greedy else []
            if samples:
                outs += self._greedy([ctx] * samples, [prefix] * samples, stop=stop, max_new=max_new,
                                     sampler=torch.Generator().manual_seed(seed), **options)
            return [self._text(new) for new in outs]

    def _topics_again(self, rows: list[int], ctx_ids: dict[int, list[int]], shared: dict | None = None) -> dict[int, tuple[str, list[str]]]:
        """The topic step of recommending rows decoded with "none" barred as its first word."""
        if not rows:
            return {}
        prefix = self.encode(f"{GOAL_TOKEN} recommend {TOPIC_TOKEN}", 16)
        outs = self._greedy([ctx_ids[i] for i in rows], [prefix] * len(rows), stop={self.item_id, self.eos_id, self.seeker_id},
                            max_new=20, ban_first=self.none_ids, shared=shared)
        return {i: parse_steps(self.tokenizer.decode(prefix + new, skip_special_tokens=False)) for i, new in zip(rows, outs)}

    @cached_property
    def none_ids(self) -> frozenset[int]:
        """The first token of the topic step's "none"."""
        return frozenset(self.encode(f"{TOPIC_TOKEN} {NONE}", 8)[1:2])

    def _replies(self, rows: list[int], ctx_ids: dict[int, list[int]], prefixes: dict[int, list[int]], contexts: Sequence[str],
                 exemplars: Sequence[Sequence[str]], prefill: dict | None = None, shared: dict | None = None) -> dict[int, str]:
        """Phase 2 for ``rows``, decoded as ``config.decoding`` says; greedy decoding's first pass is
        kept in ``prefill`` (see :meth:`_loop`) and continues ``shared`` (:meth:`context_states`) when given."""
        stop = {self.eos_id, self.seeker_id, self.recommender_id}
        max_new = max(1, self.config.max_new_tokens - 20)
        mode = self.config.decoding
        if mode in ("greedy", "norepeat", "hybrid"):  # hybrid starts from the norepeat reply
            options = {"no_repeat": 3, "min_new": self.config.min_reply_tokens} if mode != "greedy" else {}
            outs = self._greedy([ctx_ids[i] for i in rows], [prefixes[i] for i in rows], stop=stop, max_new=max_new,
                                keep_prefill=prefill, shared=shared, **options)
            return {i: self._text(new) for i, new in zip(rows, outs)}
        # rerank: n nucleus samples per row, all rows in one batch (seeded by the contexts, so a
        # reply is reproducible), then each row's best candidate.
        n = self.config.sample_candidates
        sampler = torch.Generator().manual_seed(zlib.crc32("\n".join(contexts[i] for i in rows).encode("utf-8")))
        scores: list[float] = []
        outs = self._greedy([ctx_ids[i] for i in rows for _ in range(n)], [prefixes[i] for i in rows for _ in range(n)], stop=stop,
                            max_new=max_new, no_repeat=3, min_new=self.config.min_reply_tokens, sampler=sampler, scores=scores)
        best: dict[int, str] = {}
        for position, i in enumerate(rows):
            span = range(position * n, (position + 1) * n)
            candidates = [(self._text(outs[j]), scores[j] / max(len(outs[j]), 1)) for j in span]
            reference = f"{contexts[i].rsplit(SEEKER_TOKEN, 1)[-1]} {' '.join(exemplars[i])}"
            best[i] = max(candidates, key=lambda c: c[1] + rerank_bonus(c[0], reference, self.generic_ngrams))[0]
        return best

    # ------------------------------------------------------------------ hybrid decoding

    def _hybrid(self, results: list[Generated], ctx_ids: list[list[int]], prefixes: list[list[int]], keys: list[str],
                reply_filter: Callable[[int, str], bool] | None, prefill: dict | None = None) -> None:
        """Hybrid decoding (retrieve-and-rerank, after Weston et al. 2018's retrieve and refine): each
        row's generated reply competes with the training replies after the ``retrieved_candidates``
        most similar training contexts. A retrieved reply may answer only if it fits the turn
        (:func:`fits_turn`) and ``reply_filter`` allows it; every candidate is scored by the
        generator as the reply after this context and these prompt steps (mean token
        log-probability, ``</s>`` included), and the best retrieved one replaces the generated one
        when its score is within ``retrieval_margin`` of it or the generated one broke down or tells
        a plot (:func:`unusable`); with ``generic_penalty`` the scores are
        :meth:`Generated.choice_scores`'. Rows change in place. ``prefill``: the
        first pass of the decoding that wrote the replies (:meth:`_loop`), reused when it ran the same
        context and steps."""
        index = self.exemplar_index
        if index is None or not results:
            return
        found = index.query(keys, self.config.retrieved_candidates)
        steps, tails, options = [], [], []
        for row, (result, replies) in enumerate(zip(results, found)):
            options.append([result.reply] + [r for r in dict.fromkeys(replies)
                                             if r != result.reply and fits_turn(r, result.item != NONE, result.goal)
                                             and (reply_filter is None or reply_filter(row, r))])
            targets = [self.scored_target(prefixes[row][: self.config.max_target_tokens - 1], option) for option in options[-1]]
            skip = targets[0][1]  # the steps: the same for every candidate
            steps.append(targets[0][0][:skip])
            tails.append([target[skip:] for target, _ in targets])
        for result, row_options, (sums, counts) in zip(results, options, self._tail_log_probs(ctx_ids, steps, tails, prefill=prefill)):
            result.candidates = list(zip(row_options, (sums / counts.clamp(min=1)).tolist()))
        penalty = self.config.generic_penalty
        if penalty:  # the same candidates after the same steps with no context
            empty = [self.context_ids("")] * len(results)
            for result, (sums, counts) in zip(results, self._tail_log_probs(empty, steps, tails)):
                result.generic = (sums / counts.clamp(min=1)).tolist()
        for result in results:
            chosen = hybrid_choice(result.choice_scores(penalty), self.config.retrieval_margin, unusable(result.candidates[0][0]))
            if chosen:
                result.reply, result.source = result.candidates[chosen][0], "retrieved"

    @torch.no_grad()
    def goal_log_probs(self, contexts: list[list[int]], shared: dict | None = None) -> torch.Tensor:
        """(N, len(GOALS)): the log-probability of each goal's words (and the ``[topic]`` token that
        ends them) after each context's ``[goal]`` token. ``shared``: :meth:`context_states` of these
        contexts, continued instead of running them again."""
        tails = [self.encode(f"{goal} {TOPIC_TOKEN}", 16) for goal in GOALS]
        if not contexts:
            return torch.zeros(0, len(GOALS))
        return torch.stack([sums for sums, _ in self._tail_log_probs(contexts, [[self.goal_id]] * len(contexts), [tails] * len(contexts),
                                                                     shared=shared)])

    def choose_goals(self, contexts: list[list[int]], features: np.ndarray | None = None, shared: dict | None = None) -> list[str]:
        """Each context's goal: :attr:`goal_head`'s choice given the contexts' goal ``features``
        when both are there, else the highest log-probability plus :attr:`goal_bias`."""
        if self.goal_head is not None and features is not None:
            return self.goal_head.choose(self.goal_log_probs(contexts, shared).numpy(), features)
        scores = self.goal_log_probs(contexts, shared) + torch.tensor(self.goal_bias or [0.0] * len(GOALS))
        return [GOALS[int(j)] for j in scores.argmax(1)]

    @torch.no_grad()
    def context_states(self, contexts: list[list[int]]) -> dict | None:
        """One forward pass over ``contexts`` (left-padded) that the later passes over the same
        contexts continue (``shared`` of :meth:`_tail_log_probs` and :meth:`_greedy`): the goal
        step's scores, the topic step's and the reply's first decoding pass each start from these
        contexts, and run them once this way instead of once each. None where it does not apply (no
        contexts, a generator that does not decode on :class:`crs.gen.fast.FastGPT2`, a conditioned
        prompt)."""
        if not contexts or not isinstance(self.model, fast.FastGPT2) or self.prompt_fields(contexts):
            return None
        ids, mask = pad_left(contexts, self.pad_id)
        ids, mask = ids.to(self.device), mask.to(self.device)
        positions = (mask.cumsum(1) - 1).clamp(min=0)
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1)
        return {"model": self.model, "rows": {tuple(c): row for row, c in enumerate(contexts)}, "mask": mask, "cache": out.past_key_values}

    def choose_topic(self, context: list[int], goal: str, candidates: list[str]) -> list[str]:
        """The topic step as a choice: each candidate name (and "none", plus ``conv.topic_none_bias``)
        scored as the words after ``[goal] goal [topic]`` up to ``[item]``; the best one, or []."""
        return self.choose_topics([context], [goal], [candidates])[0]

    @torch.no_grad()
    def choose_topics(self, contexts: list[list[int]], goals: list[str], candidates: list[list[str]],
                      features: list[np.ndarray] | None = None, shared: dict | None = None) -> list[list[str]]:
        """:meth:`choose_topic` of several rows, their candidates scored in one batch. With
        ``features`` (row i: one :data:`crs.gen.topic_head.CANDIDATE_FEATURES` row per name of
        ``candidates[i]``) and a :attr:`topic_head`, the head decides from the scores and features."""
        if features is not None and len(features) != len(candidates):
            raise ValueError(f"choose_topics: {len(features)} feature rows for {len(candidates)} candidate rows")
        margins = self.topic_margins(contexts, goals, candidates, shared)
        chosen: list[list[str]] = [[] for _ in contexts]
        for i, row in enumerate(candidates):
            if margins[i] is None:
                continue
            first = {c: j for j, c in reversed(list(enumerate(row))) if c and c != NONE}  # a name's first row
            names = sorted(first, key=first.get)
            if self.topic_head is not None and features is not None:
                chosen[i] = self.topic_head.choose(names, margins[i], np.asarray(features[i])[[first[n] for n in names]], goals[i])
            else:
                best = int(np.argmax(np.append(margins[i], self.config.topic_none_bias)))
                chosen[i] = [] if best == len(names) else [names[best]]
        return chosen

    @torch.no_grad()
    def topic_margins(self, contexts: list[list[int]], goals: list[str], candidates: list[list[str]],
                      shared: dict | None = None) -> list[np.ndarray | None]:
        """Row i: each distinct candidate name's summed log-probability after ``[goal] goal [topic]``
        (up to ``[item]``) minus that of "none" (no bias added); None for a row without candidates.
        ``shared``: as for :meth:`goal_log_probs`."""
        names = [[c for c in dict.fromkeys(row) if c and c != NONE] for row in candidates]
        rows = [i for i, row in enumerate(names) if row]
        margins: list[np.ndarray | None] = [None] * len(contexts)
        if not rows:
            return margins
        none = self.encode(f"{NONE} {ITEM_TOKEN}", 8)
        tails = [[self.encode(f"{name} {ITEM_TOKEN}", 24) for name in names[i]] + [none] for i in rows]
        prefixes = [self.encode(f"{GOAL_TOKEN} {goals[i]} {TOPIC_TOKEN}", 16) for i in rows]
        for i, (sums, _) in zip(rows, self._tail_log_probs([contexts[i] for i in rows], prefixes, tails, shared=shared)):
            sums = sums.double().cpu().numpy()
            margins[i] = sums[:-1] - sums[-1]
        return margins

    @torch.no_grad()
    def _tail_log_probs(self, contexts: list[list[int]], prefixes: list[list[int]], tails: list[list[list[int]]],
                        batch_size: int = 16, prefill: dict | None = None, shared: dict | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """For each row i, the summed log-probability of each of ``tails[i]`` after ``contexts[i]`` and
        the target prefix ``prefixes[i]``, and each tail's length. A causal generator runs every row's
        context and prefix once (rows batched, left-padded) and copies its key/value cache to the
        row's tails, so only the tails run again; T5 scores (context, prefix + tail) pairs. With
        ``prefill`` (a first pass kept by :meth:`_loop`) that ran exactly these rows, its cache and
        next-token logits are used and the context is not run again. With ``shared``
        (:meth:`context_states`), the rows it holds run their prefixes after its cache
        (:meth:`_continue_shared`), so the context is not run again either."""
        if self.is_seq2seq:
            out = []
            for context, prefix, row_tails in zip(contexts, prefixes, tails):
                losses, counts = self._target_nll([(context, prefix + tail) for tail in row_tails], [len(prefix)] * len(row_tails))
                out.append((-losses, counts))
            return out
        rows_all = [context + prefix for context, prefix in zip(contexts, prefixes)]
        reuse = prefill is not None and prefill.get("model") is self.model and prefill.get("rows") == rows_all
        out = []
        for start, stop in tail_chunks([len(t) for t in tails], batch_size, MAX_TAILS_PER_PASS):
            rows, row_tails = rows_all[start:stop], tails[start:stop]
            continued = None if reuse else self._continue_shared(shared, contexts[start:stop], prefixes[start:stop])
            if reuse:
                chosen = torch.arange(start, stop, device=self.device)
                mask, past = prefill["mask"][chosen], fast.KVCache(prefill["cache"].keys, prefill["cache"].values)
                past.batch_select_indices(chosen)
                first = torch.log_softmax(prefill["logits"][chosen], -1)
            elif continued is not None:  # the prefixes after the shared pass's cache of their contexts
                ids, mask, past, positions, last = continued
                first_out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=past, logits_at=last)
                first = torch.log_softmax(first_out.logits.float(), -1)
                past = first_out.past_key_values
            else:
                ids, mask = pad_left(rows, self.pad_id)
                ids, mask = ids.to(self.device), mask.to(self.device)
                positions = (mask.cumsum(1) - 1).clamp(min=0)
                first_out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1,
                                       **self.prompt_fields(contexts[start:stop]))
                first = torch.log_softmax(first_out.logits[:, -1].float(), -1)
                past = first_out.past_key_values
            owner = torch.tensor([row for row, t in enumerate(row_tails) for _ in t], dtype=torch.long, device=self.device)
            tail_ids, tail_mask = pad_right([tail for t in row_tails for tail in t], self.pad_id)
            tail_ids, tail_mask = tail_ids.to(self.device), tail_mask.to(self.device)
            sums = first[owner, tail_ids[:, 0]]
            if tail_ids.size(1) > 1:  # the tokens after the first, predicted from the ones before them
                # The lean decoding pass runs them in passes of similar length (crs.padding;
                # retrieved replies differ in length several times over: padding every tail to the
                # longest ran 2.4 times the positions needed over 10 turns of 20 chats); another
                # generator's cache is selected in place, so it runs them in one pass.
                lean = isinstance(self.model, fast.FastGPT2)
                lengths = tail_mask.sum(1)
                context_lengths = mask.sum(1)
                groups = length_chunks(lengths.tolist(), len(lengths), TAIL_PASS_COST) if lean else [list(range(len(lengths)))]
                for group in groups:
                    group = torch.tensor(group, dtype=torch.long, device=self.device)
                    width = int(lengths[group].max())
                    if width < 2:
                        continue
                    rows_of = owner[group]
                    group_past = fast.KVCache(past.keys, past.values) if lean else past
                    group_past.batch_select_indices(rows_of)
                    inputs, targets, scored = tail_ids[group, : width - 1], tail_ids[group, 1:width], tail_mask[group, 1:width]
                    tail_positions = context_lengths[rows_of].unsqueeze(1) + torch.arange(width - 1, device=self.device)
                    full_mask = torch.cat([mask[rows_of], tail_mask[group, : width - 1]], 1)
                    if lean:
                        # Only the scored positions reach the output layer; the target's logit is
                        # fp32, the normaliser (logsumexp over the vocabulary) is computed from
                        # logits in the products' dtype: in bf16 it moves by at most their rounding.
                        at = scored.bool()
                        hidden = self.model(input_ids=inputs, attention_mask=full_mask, position_ids=tail_positions,
                                            past_key_values=group_past, logits_at=at).hidden
                        log_probs = torch.zeros(scored.shape, dtype=torch.float32, device=self.device)
                        log_probs[at] = (self.model.token_logits(hidden, targets[at].unsqueeze(-1)).squeeze(-1)
                                         - self.model.rough_logits(hidden).logsumexp(-1))
                    else:
                        logits = self.model(input_ids=inputs, attention_mask=full_mask, position_ids=tail_positions,
                                            past_key_values=group_past).logits.float()
                        # log_softmax gathered at the targets, without a second vocabulary-wide tensor
                        log_probs = (logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - logits.logsumexp(-1)) * scored
                    sums[group] = sums[group] + log_probs.sum(1)
            sums, counts = sums.cpu(), tail_mask.sum(1).cpu()
            position = 0
            for t in row_tails:
                out.append((sums[position : position + len(t)], counts[position : position + len(t)]))
                position += len(t)
        return out

    @torch.no_grad()
    def _target_nll(self, pairs: list[tuple[list[int], list[int]]], skips: list[int], batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
        """Each (context, target) pair's summed negative log-likelihood of its target tokens after the
        first ``skips[i]``, and their count."""
        losses, counts = [torch.zeros(0)], [torch.zeros(0, dtype=torch.long)]
        for start in range(0, len(pairs), batch_size):
            batch = self.collate(pairs[start : start + batch_size])
            scored = batch["labels"].clone()
            for row, skip in enumerate(skips[start : start + batch_size]):  # score the reply only, not the steps
                positions = torch.nonzero(scored[row] != IGNORE).flatten()
                scored[row, positions[:skip]] = IGNORE
            loss, count = row_nll(self.model, batch, self.is_seq2seq, scored)
            losses.append(loss)
            counts.append(count)
        return torch.cat(losses), torch.cat(counts)

    def _text(self, new: list[int]) -> str:
        reply = self.tokenizer.decode([t for t in new if t not in (self.eos_id, self.seeker_id, self.recommender_id)],
                                      skip_special_tokens=False)
        return reply.replace("<pad>", "").replace("</s>", "").strip()

    @cached_property
    def generic_ngrams(self) -> frozenset[tuple[str, str]]:
        """The most common word bigrams of the training replies (the exemplar index's): what generic replies are made of."""
        if self.exemplar_index is None:
            return frozenset()
        counts = Counter(gram for reply in self.exemplar_index.replies for gram in _bigrams(reply))
        return frozenset(gram for gram, _ in counts.most_common(GENERIC_NGRAMS))

    def _continue_shared(self, shared: dict | None, contexts: list[list[int]], prefixes: list[list[int]]
                         ) -> tuple[torch.Tensor, torch.Tensor, fast.KVCache, torch.Tensor, torch.Tensor] | None:
        """The inputs of a pass that runs ``prefixes`` after ``shared``'s cache of their ``contexts``
        (:meth:`context_states`): the prefix ids (right-padded after the left-padded contexts, so the
        padding between a short prefix and what follows it is masked), the mask over both, the
        contexts' cache, the positions (counting tokens only) and each row's last prefix position.
        None when ``shared`` does not hold every context (or is not this model's) or a prefix is empty."""
        if (shared is None or shared.get("model") is not self.model or not contexts or not all(prefixes)
                or any(tuple(c) not in shared["rows"] for c in contexts)):
            return None
        chosen = torch.tensor([shared["rows"][tuple(c)] for c in contexts], dtype=torch.long, device=self.device)
        past = fast.KVCache(shared["cache"].keys, shared["cache"].values)
        past.batch_select_indices(chosen)
        context_mask = shared["mask"][chosen]
        ids, prefix_mask = pad_right(prefixes, self.pad_id)
        ids, prefix_mask = ids.to(self.device), prefix_mask.to(self.device)
        positions = context_mask.sum(1, keepdim=True) + torch.arange(ids.size(1), device=self.device)
        last = torch.zeros_like(prefix_mask, dtype=torch.bool)
        last[torch.arange(len(prefixes), device=self.device), prefix_mask.sum(1) - 1] = True
        return ids, torch.cat([context_mask, prefix_mask], 1), past, positions, last

    def _greedy(self, contexts: list[list[int]], prefixes: list[list[int]], stop: set[int], max_new: int,
                shared: dict | None = None, **options) -> list[list[int]]:
        """Continuation of each (context, prefix) until a stop id (greedy unless ``options`` ask for
        sampling, see :meth:`_loop`); returns the new ids (stop id included). With ``shared``
        (:meth:`context_states` of a set of contexts holding all of these), the first pass runs the
        prefixes only, after that pass's keys and values of their contexts."""
        continued = self._continue_shared(shared, contexts, prefixes)
        if continued is not None:
            ids, mask, past, positions, last = continued
            if options.get("keep_prefill") is not None:
                options["keep_prefill"]["rows"] = [ctx + prefix for ctx, prefix in zip(contexts, prefixes)]
            return self._loop(ids, mask, stop, max_new, start=(past, positions, last), **options)
        if self.is_seq2seq:
            # An empty context (the recommender opens the dialogue) is one <pad>, as in training (collate).
            enc_ids, enc_mask = pad_right([c or [self.pad_id] for c in contexts] or [[self.pad_id]], self.pad_id)
            encoder_out = self.model.get_encoder()(input_ids=enc_ids.to(self.device), attention_mask=enc_mask.to(self.device))
            # Decoder prefixes of different lengths: left-pad and let the mask hide the padding
            # (T5's position bias is relative, so left padding does not move the tokens).
            rows = [[self.pad_id] + prefix for prefix in prefixes]  # decoder start token is <pad>
            dec_ids, dec_mask = pad_left(rows, self.pad_id)
            # The decoder start <pad> must stay visible: pad_left masks by length, so it is.
            return self._loop(dec_ids, dec_mask, stop, max_new, encoder_out=encoder_out, enc_mask=enc_mask.to(self.device), **options)
        rows = [ctx + prefix for ctx, prefix in zip(contexts, prefixes)]
        ids, mask = pad_left(rows, self.pad_id)
        if options.get("keep_prefill") is not None:  # what _loop keeps is of these rows
            options["keep_prefill"]["rows"] = rows
        return self._loop(ids, mask, stop, max_new, first=self.prompt_fields(contexts), **options)

    def _loop(self, ids: torch.Tensor, mask: torch.Tensor, stop: set[int], max_new: int, encoder_out=None, enc_mask=None,
              no_repeat: int = 0, min_new: int = 0, sampler: torch.Generator | None = None,
              scores: list[float] | None = None, ban_first: frozenset[int] = frozenset(),
              first: dict | None = None, keep_prefill: dict | None = None,
              start: tuple[fast.KVCache, torch.Tensor, torch.Tensor] | None = None) -> list[list[int]]:
        """Continue each row until a stop id: greedy, or nucleus sampling with ``sampler``.

        ``no_repeat``: never repeat a token n-gram of this length among the new tokens; ``min_new``:
        no stop id before this many new tokens; ``scores`` (filled when given): each row's summed
        log-probability of its new tokens under the model's own distribution; ``first``: extra
        arguments of the first forward pass (a conditioned prompt's inputs). ``keep_prefill`` (a dict,
        filled when the model is a :class:`crs.gen.fast.FastGPT2`, whose caches a later pass does not
        change): the first pass's cache, mask and next-token logits, for scoring that continues the
        same rows (:meth:`_tail_log_probs`). ``start`` (cache, positions, last): ``ids`` continue
        that cache (``mask`` covers both), at these positions, and each row's next token follows its
        ``last`` position (see :meth:`_greedy`)."""
        ids, mask = ids.to(self.device), mask.to(self.device)
        batch = ids.size(0)
        positions = (mask.cumsum(1) - 1).clamp(min=0) if start is None else start[1]
        past = None if start is None else start[0]
        done = torch.zeros(batch, dtype=torch.bool, device=self.device)
        new: list[list[int]] = [[] for _ in range(batch)]
        totals = [0.0] * batch
        stop_ids = torch.tensor(sorted(stop), dtype=torch.long, device=self.device) if stop else None
        step_ids, step_pos = ids, positions
        # Greedy steps on a bf16 FastGPT2 choose among a shortlist from bf16 logits by fp32 logits
        # (FastGPT2.best_of); sampling and scores need every fp32 logit.
        shortlist = (isinstance(self.model, fast.FastGPT2) and self.model.dtype != torch.float32
                     and sampler is None and scores is None)
        for step in range(max_new):
            if encoder_out is not None:
                out = self.model(encoder_outputs=encoder_out, attention_mask=enc_mask, decoder_input_ids=step_ids,
                                 decoder_attention_mask=mask, past_key_values=past, use_cache=True)
            elif start is not None and step == 0:  # each row's last prefix token, wherever the padding leaves it
                out = self.model(input_ids=step_ids, attention_mask=mask, position_ids=step_pos, past_key_values=past, logits_at=start[2])
                out.hidden = out.hidden.unsqueeze(1)  # (B, 1, width), as with logits_to_keep=1
            else:
                out = self.model(input_ids=step_ids, attention_mask=mask, position_ids=step_pos, past_key_values=past, use_cache=True,
                                 logits_to_keep=1,  # only the last position's next-token logits are read
                                 **((first or {}) if past is None else {}))
            past = out.past_key_values
            if step == 0 and keep_prefill is not None and isinstance(self.model, fast.FastGPT2):
                keep_prefill.update(model=self.model, cache=past, mask=mask, logits=out.logits[:, -1].float().clone())
            rough = shortlist and not (step == 0 and keep_prefill is not None)  # (those logits are computed already)
            logits = self.model.rough_logits(out.hidden[:, -1]) if rough else out.logits[:, -1].float()
            logits[:, self.pad_id] = -math.inf
            log_probs = torch.log_softmax(logits, dim=-1) if scores is not None else None
            if step < min_new and stop_ids is not None:
                logits[:, stop_ids] = -math.inf
            if step == 0 and ban_first:
                logits[:, sorted(ban_first)] = -math.inf
            if no_repeat > 1 and step >= no_repeat - 1:
                for row in torch.nonzero(~done).flatten().tolist():
                    tail = tuple(new[row][len(new[row]) - no_repeat + 1 :])
                    banned = [new[row][j + no_repeat - 1] for j in range(len(new[row]) - no_repeat + 1)
                              if tuple(new[row][j : j + no_repeat - 1]) == tail]
                    if banned:
                        logits[row, banned] = -math.inf
            if sampler is None:
                token = self.model.best_of(out.hidden[:, -1], logits) if rough else logits.argmax(-1)
            else:
                token = self._nucleus(logits, sampler)
            token = torch.where(done, torch.full_like(token, self.pad_id), token)
            chosen = log_probs.gather(1, token.unsqueeze(1)).squeeze(1).tolist() if log_probs is not None else [0.0] * batch
            for row in torch.nonzero(~done).flatten().tolist():
                new[row].append(int(token[row]))
                totals[row] += chosen[row]
            done |= torch.tensor([int(t) in stop for t in token.tolist()], device=self.device)
            if bool(done.all()):
                break
            step_pos = mask.sum(1, keepdim=True)  # the new token's position: the tokens before it
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
            step_ids = token.unsqueeze(1)
        if scores is not None:
            scores[:] = totals
        return new

    def _nucleus(self, logits: torch.Tensor, sampler: torch.Generator) -> torch.Tensor:
        """One token per row from the smallest set of tokens holding ``top_p`` of the probability."""
        probs = torch.softmax(logits / self.config.temperature, dim=-1)
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        keep = sorted_probs.cumsum(-1) - sorted_probs < self.config.top_p
        sorted_probs = torch.where(keep, sorted_probs, torch.zeros_like(sorted_probs))
        picked = torch.multinomial(sorted_probs.cpu(), 1, generator=sampler).to(order.device)
        return order.gather(1, picked).squeeze(1)

    # ------------------------------------------------------------------ perplexity

    @torch.no_grad()
    def reply_loss(self, examples: Sequence[ConvExample], batch_size: int = 64) -> tuple[float, int]:
        """Summed negative log-likelihood of the gold replies (the tokens after ``[recommender]``,
        ``</s>`` included) given the context and the gold prompt steps, and the number of tokens."""
        missing = [e for e in examples if e.exemplars is None]
        for example, found in zip(missing, self.retrieve([e.key for e in missing])):
            example.exemplars = found
        pairs, skips = [], []
        for example in examples:
            target, skip = self.scored_target(self.encode(example.steps.render(), self.config.max_target_tokens - 1), example.reply)
            pairs.append((self.context_ids(example.context, example.exemplars or ()), target))
            skips.append(skip)
        losses, counts = self._target_nll(pairs, skips, batch_size)
        return float(losses.sum()), int(counts.sum())
