"""The SentencePiece tokenizer of the generator, its special tokens, and the corpus it is trained on.

A unigram language-model tokenizer (Kudo & Richardson 2018, "SentencePiece: A simple and language
independent subword tokenizer", https://arxiv.org/abs/1808.06226) is trained on the training
dialogues, the catalogue's movie descriptions and verbalised knowledge-graph facts, then wrapped
as a transformers ``T5Tokenizer`` with T5's id layout (Raffel et al. 2020, https://arxiv.org/abs/1910.10683):
``<pad>`` 0, ``</s>`` 1, ``<unk>`` 2, no ``<s>``, and 100 sentinels ``<extra_id_0..99>`` after the
pieces for span corruption. The same tokenizer serves the DialoGPT-style backbone.

Two facts about transformers 5 shape this module:

- ``T5Tokenizer(vocab_file=...)`` ignores the file and builds a 104-token placeholder vocabulary;
  ``T5Tokenizer.from_pretrained(folder)`` with ``spiece.model`` in the folder converts the model.
  The conversion reads every SentencePiece model as a unigram model, so only ``unigram`` is offered
  (a BPE model would be segmented differently from SentencePiece itself).
- T5's pre-tokenizer splits on white space, which drops the space before a special token
  ("like [MOVIE]" decodes as "like[MOVIE]"), and ``T5Tokenizer`` re-installs it on every load.
  :func:`load_tokenizer` therefore swaps in a pre-tokenizer that keeps every space as a ``▁`` piece,
  as SentencePiece itself does. Always load the tokenizer with :func:`load_tokenizer`.
"""

from __future__ import annotations

import logging
import os
import re
from collections import ChainMap
from pathlib import Path
from typing import Iterable, Iterator

import sentencepiece as spm
from tokenizers import decoders, pre_tokenizers
from transformers import T5Tokenizer

from crs.config import TOKENIZER_MODEL_TYPES
from crs.data.catalogue import Catalogue, Movie
from crs.data.redial import Dialogue
from crs.text.render import render_turns
from crs.text.tokens import (  # noqa: F401  (the tokenizer's tokens, importable from here too)
    EXEMPLAR_TOKEN,
    GOAL_TOKEN,
    ITEM_TOKEN,
    MOVIE_TOKEN,
    OPTIONAL_TOKENS,
    REC_TOKEN,
    RECOMMENDER_TOKEN,
    SEEKER_TOKEN,
    SPECIAL_TOKENS,
    TOPIC_TOKEN,
    escape_control_tokens,
)
from kg.graph import KnowledgeGraph, base_name

logger = logging.getLogger(__name__)

# T5's id layout; SentencePiece writes these pieces at these ids.
PAD_ID, EOS_ID, UNK_ID = 0, 1, 2
NUM_SENTINELS = 100  # <extra_id_0> ... <extra_id_99>, T5's default
SPIECE_FILE = "spiece.model"
# Bytes; SentencePiece's default (4192) would silently drop long dialogues and plots.
MAX_LINE_BYTES = 1 << 16
_SPACE = "▁"

_FILM_YEAR_RE = re.compile(r"\s*\((\d{4}) film\)$")
_CAMEL_RE = re.compile(r"(?<=[a-z])(?=[A-Z])")


def describe_movie(movie: Movie) -> str:
    """``"Title (Year). Genres: ... Directed by ... Written by ... Starring ... Plot: ..."``, empty parts left out."""
    parts = [f"{movie.display_name}."]
    if movie.genres:
        parts.append(f"Genres: {', '.join(movie.genres)}.")
    if movie.directors:
        parts.append(f"Directed by {', '.join(movie.directors)}.")
    if movie.writers:
        parts.append(f"Written by {', '.join(movie.writers)}.")
    if movie.stars:
        parts.append(f"Starring {', '.join(movie.stars)}.")
    if movie.plot:
        parts.append(f"Plot: {movie.plot}")
    return " ".join(parts)


def readable_entity(name: str) -> str:
    """An entity name as text: "Heat (1995 film)" → "Heat (1995)", "Charlie Weber (actor)" → "Charlie Weber"."""
    with_year = _FILM_YEAR_RE.sub(r" (\1)", name)
    return with_year if with_year != name else base_name(name)


def verbalise_facts(kg: KnowledgeGraph) -> Iterator[str]:
    """``"<head> <relation> <tail>."`` per triple, self-loops skipped; "musicComposer" reads "music composer"."""
    relations = [_CAMEL_RE.sub(" ", name).lower() for name in kg.relation_names]
    for head, relation, tail in kg.triples():
        if relation == kg.self_loop_relation or head == tail:
            continue
        head_name, tail_name = readable_entity(kg.entity_names[head]), readable_entity(kg.entity_names[tail])
        yield f"{head_name} {relations[relation]} {tail_name}."


def build_corpus(train_dialogues: Iterable[Dialogue], catalogue: Catalogue,
                 kg: KnowledgeGraph | None = None) -> Iterator[str]:
    """Tokenizer (and language-model) training text: one line per dialogue, movie, and KG fact.

    Pass the training split only: validation and test dialogues must not shape the vocabulary.
    Movie mentions are rendered with the catalogue's "Title (Year)", or the record's own title for
    the few ids missing from the catalogue.
    """
    titles = catalogue.titles
    for dialogue in train_dialogues:
        yield render_turns(dialogue.turns, ChainMap(titles, dialogue.movie_mentions), "corpus")
    for movie in catalogue.movies:
        yield describe_movie(movie)
    if kg is not None:
        yield from verbalise_facts(kg)


def _keep_spaces(tokenizer: T5Tokenizer) -> T5Tokenizer:
    """Make spaces pieces of their own, as in SentencePiece, so that "like [MOVIE]" decodes unchanged.

    ``prepend_scheme="first"`` adds SentencePiece's dummy ``▁`` prefix to the start of the text only,
    not after each special token ("[MOVIE]'s" stays one word).
    """
    backend = tokenizer.backend_tokenizer
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement=_SPACE, prepend_scheme="first", split=True)
    backend.decoder = decoders.Metaspace(replacement=_SPACE, prepend_scheme="first", split=True)
    return tokenizer


def check_tokenizer(tokenizer: T5Tokenizer) -> None:
    """Fail unless each special token is one id, the T5 ids are in place and the sentinels exist."""
    for token in SPECIAL_TOKENS:
        ids = tokenizer(token, add_special_tokens=False)["input_ids"]
        if token in OPTIONAL_TOKENS and token not in tokenizer.get_vocab():
            continue
        if len(ids) != 1 or ids[0] == tokenizer.unk_token_id:
            raise ValueError(f"special token {token!r} does not map to one id: {ids}")
    found = (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id)
    if found != (PAD_ID, EOS_ID, UNK_ID):
        raise ValueError(f"pad/eos/unk ids are {found}, T5's layout needs {(PAD_ID, EOS_ID, UNK_ID)}")
    sentinels = tokenizer.convert_tokens_to_ids([f"<extra_id_{i}>" for i in range(NUM_SENTINELS)])
    if tokenizer.unk_token_id in sentinels or len(set(sentinels)) != NUM_SENTINELS:
        raise ValueError(f"the tokenizer lacks the {NUM_SENTINELS} sentinels <extra_id_N>")


def load_tokenizer(folder: str | Path) -> T5Tokenizer:
    """The tokenizer :func:`train_tokenizer` wrote to ``folder`` (``spiece.model`` or ``tokenizer.json``)."""
    folder = Path(folder)
    if not ((folder / SPIECE_FILE).is_file() or (folder / "tokenizer.json").is_file()):
        raise FileNotFoundError(f"tokenizer folder {folder} has neither {SPIECE_FILE} nor tokenizer.json")
    tokenizer = _keep_spaces(T5Tokenizer.from_pretrained(str(folder), extra_ids=NUM_SENTINELS))
    check_tokenizer(tokenizer)
    return tokenizer


def train_tokenizer(lines: Iterable[str], out_dir: str | Path, vocab_size: int = 8000, model_type: str = "unigram",
                    max_lines: int = 0) -> T5Tokenizer:
    """Train SentencePiece on ``lines`` and save it to ``out_dir`` as a transformers tokenizer.

    The special tokens are user-defined symbols (never split); every character of the corpus is
    kept (character coverage 1.0). ``max_lines`` > 0 trains on a random sample of that many
    lines. The tokenizer has ``vocab_size`` pieces plus the 100 sentinels; SentencePiece may stop
    short of ``vocab_size`` on a small corpus.
    """
    if model_type not in TOKENIZER_MODEL_TYPES:
        raise ValueError(f"model_type {model_type!r}: T5Tokenizer wraps SentencePiece {TOKENIZER_MODEL_TYPES} only")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_prefix=str(out_dir / Path(SPIECE_FILE).stem),
        model_type=model_type,
        vocab_size=vocab_size,
        user_defined_symbols=list(SPECIAL_TOKENS),
        character_coverage=1.0,
        pad_id=PAD_ID,
        eos_id=EOS_ID,
        unk_id=UNK_ID,
        bos_id=-1,
        pad_piece="<pad>",
        eos_piece="</s>",
        unk_piece="<unk>",
        hard_vocab_limit=False,
        max_sentence_length=MAX_LINE_BYTES,
        input_sentence_size=max_lines,
        shuffle_input_sentence=True,
        num_threads=os.cpu_count() or 1,
        minloglevel=1,
    )
    tokenizer = load_tokenizer(out_dir)
    tokenizer.save_pretrained(str(out_dir))
    logger.info("tokenizer with %d ids (%d pieces + %d sentinels) written to %s",
                len(tokenizer), len(tokenizer) - NUM_SENTINELS, NUM_SENTINELS, out_dir)
    return tokenizer
