"""Tuning-free prompting: the pre-trained language model alone ranks movies, with no task tuning.

The fourth prompting paradigm of the survey (Liu et al. 2023, "Pre-train, Prompt, and Predict",
https://arxiv.org/abs/2107.13586): a hard prompt template from ``prompts/zero_shot.yaml`` is filled
with the movies the user liked ("A user liked Heat (1995) and Up (2009). Next they may want to
watch") and each candidate movie is scored by the likelihood the LM gives its title as the
continuation, as in LM-likelihood zero-shot recommendation (Sileo et al. 2022, "Zero-Shot
Recommendation as Language Modeling", https://arxiv.org/abs/2112.00253).

Scoring, per backbone:

* ``dialogpt`` (causal decoder): the input is ``</s>`` (GPT-2's start/separator) + the prompt; the
  candidate's span is ``" Title (Year)."``: the display name and a closing ``"."`` that ends the
  span, so a title that is only the start of a longer one ("Alien" before "Aliens") pays for
  stopping there. The prompt runs once; its ``past_key_values`` are repeated over the batch of
  candidate spans (right-padded: a causal model never attends to padding on the right, so no
  attention mask is needed).
* ``t5`` (encoder-decoder): T5's span-corruption format (Raffel et al. 2020,
  https://arxiv.org/abs/1910.10683) as stage ``pretrain-lm`` writes it (``train.pretrain_lm.span_corrupt``:
  sentinels placed as ids, targets ``<extra_id_0> span … </s>`` with no closing sentinel). The encoder
  reads ``prompt <extra_id_0>.</s>`` once; the decoder scores the target ``<extra_id_0> Title (Year) </s>``
  for the batch of candidates against the repeated encoder states: with one sentinel in the input,
  ``</s>`` is what closes the one span. The opening sentinel is the same for every candidate and is
  not scored; the title tokens and the closing ``</s>`` are.

A candidate's score is the sum of its span tokens' log-probabilities (``length_normalise=False``,
the default) or their mean (``True``). The sum is the likelihood of the whole title, so the LM's
prior for well-known movies counts; the mean rewards long titles whose later tokens are
predictable once the first is given. The sum ranked better on validation (ReDial validation
dialogues 60-300, 871 new-items instances, the one-epoch scratch-small dialogpt of stage
``pretrain-lm``, popularity candidates): new-items Recall@10 0.063 against 0.051, MRR 0.032 against
0.029. The four templates of ``prompts/zero_shot.yaml`` differed by less than the noise there
(Recall@10 0.063-0.067), so the default stays the plainest one.

The harness (:mod:`crs.eval.harness`) ranks the whole catalogue, so :meth:`ZeroShotRanker.score_items`
re-ranks only a candidate set and keeps every other movie in a finite, ordered tail:

* candidates: the candidate recommender's (default: popularity on the training dialogues) top
  ``num_candidates`` movies among those *not* mentioned in the dialogue, plus the mentioned movies
  themselves, so the new-items protocol always sees ``num_candidates`` fresh candidates and the
  standard protocol lets the LM decide whether a movie under discussion comes back;
* liked movies: every catalogue movie mentioned so far (``context.mentioned_movies``, by either
  speaker, in order of first mention), the last ``max_liked`` of them; ``seeker_only=True`` keeps
  the seeker's own mentions only;
* every non-candidate scores ``CANDIDATE_FLOOR - p``, with ``p`` its position in the candidate
  recommender's order: far below any LM score, finite (no ``-inf`` for :func:`crs.eval.metrics.rank_of`),
  and ordered, so Recall@k beyond the candidate set is the candidate recommender's;
* a context with no liked movie has nothing to condition the prompt on: its candidates keep the
  candidate recommender's order (the LM is not asked).
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch
import yaml

from crs.data.catalogue import Catalogue
from crs.data.context import DialogueContext
from crs.data.redial import SEEKER
from crs.gen.backbone import BACKBONES, backbone_name, load_model
from crs.paths import PROJECT_ROOT
from crs.rec.interface import BaseRecommender, Recommender
from crs.text.tokenizer import load_tokenizer

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

logger = logging.getLogger(__name__)

DEFAULT_TEMPLATES_PATH = PROJECT_ROOT / "prompts" / "zero_shot.yaml"
DEFAULT_TEMPLATE_NAME = "watch_next"
LIKED_FIELD = "liked"
NUM_CANDIDATES = 100
MAX_LIKED = 5
MAX_SPAN_TOKENS = 32  # longer titles are cut (a handful in ReDial)
BATCH_SIZE = 128  # candidate spans per forward pass
MAX_PADDED_SHARE = 1.25  # a batch's padded tokens over its real tokens, at most
# Non-candidates score CANDIDATE_FLOOR - position; LM scores are clipped from below at LM_SCORE_MIN.
CANDIDATE_FLOOR = -1.0e6
LM_SCORE_MIN = CANDIDATE_FLOOR / 2
CLOSING_TEXT = "."  # ends a dialogpt span; follows <extra_id_0> in the t5 encoder input
LM_DIR, TOKENIZER_DIR, CATALOGUE_FILE = "lm", "tokenizer", "kg/catalogue.json"


# --------------------------------------------------------------------------- templates


def check_template(template: str, name: str = "template") -> str:
    """``template`` itself; a ValueError unless it has ``{liked}`` and no other field."""
    if not isinstance(template, str) or not template.strip():
        raise ValueError(f"zero-shot {name}: must be a non-empty string, got {template!r}")
    if "{" + LIKED_FIELD + "}" not in template:
        raise ValueError(f"zero-shot {name} {template!r} has no {{{LIKED_FIELD}}} field for the liked movies")
    try:
        template.format(**{LIKED_FIELD: "x"})
    except (KeyError, IndexError, ValueError) as error:
        raise ValueError(f"zero-shot {name} {template!r}: only {{{LIKED_FIELD}}} may be a field "
                         f"(write literal braces as {{{{ }}}}): {error!r}") from None
    return template


def load_templates(path: str | Path = DEFAULT_TEMPLATES_PATH) -> dict[str, str]:
    """The named templates of a YAML file: a mapping ``name: "text with {liked}"``, each validated.

    A relative ``path`` that does not exist from the working directory is looked up from the
    repository root, so the default works from anywhere.
    """
    path = Path(path)
    if not path.is_file() and not path.is_absolute() and (PROJECT_ROOT / path).is_file():
        path = PROJECT_ROOT / path
    if not path.is_file():
        raise FileNotFoundError(f"zero-shot templates file {path} does not exist")
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(raw, dict) or not raw:
        raise ValueError(f"{path}: expected a non-empty mapping of template name to template text")
    return {str(name): check_template(text, f"template {name!r} in {path}") for name, text in raw.items()}


def join_titles(titles: Sequence[str]) -> str:
    """``"A"``, ``"A and B"``, ``"A, B and C"``."""
    if len(titles) <= 1:
        return "".join(titles)
    return f"{', '.join(titles[:-1])} and {titles[-1]}"


# --------------------------------------------------------------------------- the ranker


class ZeroShotRanker(BaseRecommender):
    """Ranks candidate movies by the pre-trained LM's likelihood of their titles after a hard prompt.

    ``template`` is a template text (with ``{liked}``) or the name of one in
    ``prompts/zero_shot.yaml``; ``candidate_recommender`` supplies the candidate set for
    :meth:`score_items` (it is not needed by :meth:`rank`).
    """

    name = "zero-shot"

    def __init__(self, tokenizer: "PreTrainedTokenizerBase", model: "PreTrainedModel", catalogue: Catalogue,
                 backbone: str = "dialogpt", template: str | None = None,
                 candidate_recommender: Recommender | None = None, num_candidates: int = NUM_CANDIDATES,
                 length_normalise: bool = False, max_liked: int = MAX_LIKED, seeker_only: bool = False,
                 include_mentioned: bool = True, batch_size: int = BATCH_SIZE, name: str = "zero-shot"):
        super().__init__(catalogue)
        if backbone not in BACKBONES:
            raise ValueError(f"zero-shot backbone {backbone!r}: choose from {BACKBONES}")
        if bool(getattr(model.config, "is_encoder_decoder", False)) != (backbone == "t5"):
            raise ValueError(f"zero-shot backbone {backbone!r} does not fit a {model.config.model_type} model")
        if num_candidates < 1 or max_liked < 1 or batch_size < 1:
            raise ValueError("num_candidates, max_liked and batch_size must be >= 1")
        self.tokenizer, self.model, self.backbone = tokenizer, model.eval(), backbone
        self.default_template = self.resolve_template(template)
        self.candidate_recommender = candidate_recommender
        self.num_candidates, self.length_normalise, self.max_liked = num_candidates, length_normalise, max_liked
        self.seeker_only, self.include_mentioned = seeker_only, include_mentioned
        self.batch_size, self.name = batch_size, name
        self._spans: dict[int, list[int]] = {}  # movie id → span token ids
        self._closing_ids = self._attached_ids(CLOSING_TEXT)
        if backbone == "t5":
            self._sentinel = tokenizer.convert_tokens_to_ids("<extra_id_0>")
            if self._sentinel == tokenizer.unk_token_id:
                raise ValueError("the t5 zero-shot format needs the sentinel <extra_id_0>")
        # Learned positions (GPT-2) bound prompt + span; T5's relative positions do not.
        self._max_tokens = getattr(model.config, "n_positions", None) or 512

    # ------------------------------------------------------------------ loading

    @staticmethod
    def missing_parts(folder: str | Path, need_catalogue: bool = True) -> list[str]:
        """What :meth:`from_pretrained` needs and ``folder`` lacks (empty when it is complete)."""
        folder = Path(folder)
        missing = []
        if not (folder / LM_DIR / "config.json").is_file():
            missing.append(f"{LM_DIR}/config.json")
        if _tokenizer_dir(folder) is None:
            missing.append(f"{TOKENIZER_DIR}/")
        if need_catalogue and not (folder / CATALOGUE_FILE).is_file():
            missing.append(CATALOGUE_FILE)
        return missing

    @classmethod
    def present(cls, folder: str | Path) -> bool:
        """Whether ``folder`` holds a pre-trained LM and its tokenizer (``lm/config.json``, ``tokenizer/``)."""
        return not cls.missing_parts(folder, need_catalogue=False)

    @classmethod
    def from_pretrained(cls, folder: str | Path, template: str | None = None,
                        candidate_recommender: Recommender | None = None, catalogue: Catalogue | None = None,
                        **options) -> "ZeroShotRanker":
        """Load ``folder/lm`` (weights cast to float32), ``folder/tokenizer`` and ``folder/kg/catalogue.json``.

        The tokenizer may also sit beside the folder (``folder/../tokenizer``: a training run's
        stage layout). ``catalogue``, when given, stands in for a missing ``kg/catalogue.json``
        and must list the same movies as one that is present. ``options`` go to the constructor.
        """
        folder = Path(folder)
        missing = cls.missing_parts(folder, need_catalogue=catalogue is None)
        if missing:
            raise FileNotFoundError(f"zero-shot LM folder {folder} is incomplete: missing {', '.join(missing)}")
        if (folder / CATALOGUE_FILE).is_file():
            own = Catalogue.read(folder / CATALOGUE_FILE)
            if catalogue is not None and own.movie_ids != catalogue.movie_ids:
                raise ValueError(f"zero-shot LM folder {folder} was built on another movie catalogue")
            catalogue = own
        tokenizer = load_tokenizer(_tokenizer_dir(folder))
        model = load_model(folder / LM_DIR)
        if model.get_input_embeddings().num_embeddings < len(tokenizer):
            raise ValueError(f"{folder / LM_DIR} has {model.get_input_embeddings().num_embeddings} embeddings, "
                             f"fewer than the tokenizer's {len(tokenizer)} ids")
        backbone = backbone_name(model.config)
        return cls(tokenizer, model, catalogue, backbone, template, candidate_recommender, **options)

    @staticmethod
    def resolve_template(template: str | None) -> str:
        """A template text: ``template`` itself when it has ``{liked}``, else the named template."""
        if template is None or "{" + LIKED_FIELD + "}" not in template:
            templates = load_templates()
            name = template or DEFAULT_TEMPLATE_NAME
            if name not in templates:
                raise ValueError(f"zero-shot template {name!r} is neither a template with {{{LIKED_FIELD}}} nor "
                                 f"one of the named templates {sorted(templates)}")
            return templates[name]
        return check_template(template)

    # ------------------------------------------------------------------ scoring

    def prompt_text(self, liked_ids: Sequence[int], template: str | None = None) -> str:
        """The filled template for the liked movies (ReDial ids), trailing white space removed."""
        template = self.resolve_template(template) if template is not None else self.default_template
        titles = [self.catalogue.by_id(movie).display_name for movie in liked_ids]
        return template.format(**{LIKED_FIELD: join_titles(titles)}).rstrip()

    def rank(self, liked_ids: list[int], candidates: list[int], template: str | None = None,
             k: int = 10) -> list[tuple[int, float]]:
        """The k best candidates (ReDial ids) as (movie id, score), best first; ties keep candidate order."""
        scores = self.score_candidates(liked_ids, candidates, template)
        order = np.lexsort((np.arange(len(candidates)), -scores))[:k]
        return [(candidates[i], float(scores[i])) for i in order]

    @torch.no_grad()
    def score_candidates(self, liked_ids: Sequence[int], candidates: Sequence[int],
                         template: str | None = None) -> np.ndarray:
        """(len(candidates),) log-likelihood of each candidate's span after the prompt (sum or mean)."""
        if not candidates:
            return np.zeros(0, dtype=np.float64)
        spans = [self.span_ids(movie) for movie in candidates]
        prompt_ids = self._prompt_ids(self.prompt_text(liked_ids, template), max(map(len, spans)))
        device = self.model.device
        prompt = torch.tensor([prompt_ids], dtype=torch.long, device=device)  # (1, P)
        if self.backbone == "dialogpt":
            output = self.model(input_ids=prompt, use_cache=True)
            state = (output.past_key_values, output.logits[:, -1:])  # cache, (1, 1, V)
        else:
            state = self.model.get_encoder()(input_ids=prompt).last_hidden_state  # (1, P, H)
        scores = np.zeros(len(spans), dtype=np.float64)
        for chunk in self._length_buckets(spans):
            batch = [spans[i] for i in chunk]
            lengths = torch.tensor([len(span) for span in batch], device=device)  # (B,)
            targets = torch.full((len(batch), int(lengths.max())), self.tokenizer.pad_token_id, dtype=torch.long,
                                 device=device)  # (B, L), right-padded
            for row, span in enumerate(batch):
                targets[row, : len(span)] = torch.tensor(span)
            logits = self._span_logits(state, targets)  # (B, L, V): position j predicts targets[:, j]
            log_probs = torch.log_softmax(logits.float(), dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
            mask = torch.arange(targets.shape[1], device=device).unsqueeze(0) < lengths.unsqueeze(1)  # (B, L)
            total = (log_probs * mask).sum(dim=1)  # (B,)
            scores[chunk] = (total / lengths if self.length_normalise else total).double().cpu().numpy()
        return scores

    def _length_buckets(self, spans: list[list[int]]) -> list[list[int]]:
        """Span indices in batches of similar length (sorted; a batch closes at ``batch_size`` spans or when
        its padded size would exceed MAX_PADDED_SHARE times its real tokens): one padded batch wastes much."""
        order = sorted(range(len(spans)), key=lambda i: len(spans[i]))
        buckets: list[list[int]] = []
        real = 0  # tokens of the open bucket's spans
        for i in order:
            length = len(spans[i])  # the longest so far: the open bucket's padded width
            fits = buckets and len(buckets[-1]) < self.batch_size
            if fits and (len(buckets[-1]) + 1) * length <= MAX_PADDED_SHARE * (real + length):
                buckets[-1].append(i)
                real += length
            else:
                buckets.append([i])
                real = length
        return buckets

    def _span_logits(self, state, targets: torch.Tensor) -> torch.Tensor:
        """(B, L, V) next-token logits for each span position, from the prompt's cache or encoder states."""
        batch_size = targets.shape[0]
        if self.backbone == "dialogpt":
            cache, first = state
            logits = first.expand(batch_size, -1, -1)  # (B, 1, V): the prompt's last position
            if targets.shape[1] > 1:
                past = copy.deepcopy(cache)
                past.batch_repeat_interleave(batch_size)
                rest = self.model(input_ids=targets[:, :-1], past_key_values=past, use_cache=True).logits
                logits = torch.cat([logits, rest], dim=1)  # (B, L, V)
            return logits
        from transformers.modeling_outputs import BaseModelOutput

        start = torch.full((batch_size, 1), self.model.config.decoder_start_token_id, dtype=torch.long,
                           device=targets.device)
        opening = torch.full((batch_size, 1), self._sentinel, dtype=torch.long, device=targets.device)
        decoder_input = torch.cat([start, opening, targets[:, :-1]], dim=1)  # (B, L + 1)
        encoded = BaseModelOutput(last_hidden_state=state.expand(batch_size, -1, -1))  # (B, P, H)
        attention = torch.ones(encoded.last_hidden_state.shape[:2], dtype=torch.long, device=targets.device)
        logits = self.model(encoder_outputs=encoded, attention_mask=attention, decoder_input_ids=decoder_input).logits
        return logits[:, 1:]  # drop the prediction of <extra_id_0>, the same for every candidate

    def span_ids(self, movie_id: int) -> list[int]:
        """Token ids scored for a candidate: ``Title (Year).`` (dialogpt) or ``Title (Year)</s>`` (t5)."""
        span = self._spans.get(movie_id)
        if span is None:
            title = self.catalogue.by_id(movie_id).display_name
            if self.backbone == "dialogpt":
                span = self._ids(title + CLOSING_TEXT)[:MAX_SPAN_TOKENS]
            else:
                span = self._ids(title)[: MAX_SPAN_TOKENS - 1] + [self.tokenizer.eos_token_id]
            self._spans[movie_id] = span
        return span

    def _prompt_ids(self, text: str, span_tokens: int) -> list[int]:
        """The model input before the spans, its start cut when prompt + span would not fit the positions."""
        ids = self._ids(text)
        if self.backbone == "dialogpt":
            ids = [self.tokenizer.eos_token_id] + ids
        else:
            ids = ids + [self._sentinel] + self._closing_ids + [self.tokenizer.eos_token_id]
        room = self._max_tokens - span_tokens
        if len(ids) > room:
            logger.debug("zero-shot prompt of %d tokens cut to its last %d", len(ids), room)
            ids = ids[-room:]
        return ids

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _attached_ids(self, text: str) -> list[int]:
        """Ids of ``text`` as it reads right after a word ("watch." → "." without the word-start "▁")."""
        ids = self._ids(text)
        space = self.tokenizer.convert_tokens_to_ids("▁")
        return ids[1:] if len(ids) > 1 and ids[0] == space else ids

    # ------------------------------------------------------------------ the harness's interface

    def liked_movies(self, context: DialogueContext) -> list[int]:
        """ReDial ids the prompt names: the last ``max_liked`` catalogue movies mentioned (by the seeker only
        when ``seeker_only``), in order of first mention."""
        if self.seeker_only:
            seen: dict[int, None] = {}
            for turn in context.turns:
                if turn.role == SEEKER:
                    for movie in turn.movies:
                        seen.setdefault(movie, None)
            movies = list(seen)
        else:
            movies = list(dict.fromkeys(context.mentioned_movies))
        return [movie for movie in movies if movie in self.catalogue][-self.max_liked :]

    def score_items(self, context: DialogueContext) -> np.ndarray:
        return self.score_batch([context])[0]

    def score_batch(self, contexts: list[DialogueContext]) -> np.ndarray:
        """(len(contexts), num_items): LM scores on the candidates, the candidate recommender's order below."""
        if self.candidate_recommender is None:
            raise ValueError("ZeroShotRanker.score_items needs a candidate_recommender "
                             "(e.g. crs.rec.baselines.PopularityRecommender.fit(train_dialogues, catalogue))")
        if not contexts:
            return np.zeros((0, len(self.catalogue)))
        base = np.asarray(self.candidate_recommender.score_batch(contexts), dtype=np.float64)  # (B, N)
        return np.stack([self._rerank(context, row) for context, row in zip(contexts, base)])

    def _rerank(self, context: DialogueContext, base: np.ndarray) -> np.ndarray:
        num_items = len(self.catalogue)
        order = np.lexsort((np.arange(num_items), -base))  # the candidate recommender's ranking
        position = np.empty(num_items, dtype=np.int64)
        position[order] = np.arange(num_items)
        scores = CANDIDATE_FLOOR - position.astype(np.float64)
        mentioned = self.mentioned_items(context)
        is_mentioned = np.zeros(num_items, dtype=bool)
        is_mentioned[mentioned] = True
        candidates = order[~is_mentioned[order]][: self.num_candidates].tolist()
        if self.include_mentioned:
            candidates += sorted(set(mentioned), key=lambda item: position[item])
        liked = self.liked_movies(context)
        if not liked:
            scores[candidates] = -position[candidates].astype(np.float64)  # above the floor, same order
            return scores
        lm = self.score_candidates(liked, [self.catalogue[i].movie_id for i in candidates])
        scores[candidates] = np.maximum(lm, LM_SCORE_MIN)
        return scores


def _tokenizer_dir(folder: Path) -> Path | None:
    for candidate in (folder / TOKENIZER_DIR, folder.parent / TOKENIZER_DIR):
        if candidate.is_dir():
            return candidate
    return None
