"""Soft prompts for the generator: KG-conditioned (ours), peft's prompt and prefix tuning, peft's LoRA.

The survey's *fixed-PTM prompt tuning* trains only prompt vectors in front of a frozen generator;
*prompt+PTM tuning* then tunes prompt and generator together (stage ``conv-prompt``, train.prompt).
Four kinds of prompt (``prompt.kind``):

* ``kg`` (:class:`KGPrompt`), as UniCRS (Wang et al. 2022) conditions its prompt: ``n`` learned
  queries cross-attend to the R-GCN embeddings of the entities linked in the context (the
  recommender's, fixed) and to the context's token embeddings; the attended vectors pass an MLP and
  become the prompt. Cross-attention rather than an MLP over pooled inputs because the number of
  linked entities varies per turn (0 to 32) and each query can pick different ones (a person, a
  genre, a movie); the context tokens make the prompt useful when nothing was linked.
* ``peft-prompt``: peft's ``PromptEmbedding`` (``PromptTuningConfig``), ``n`` vectors, the same for
  every context (Lester et al. 2021).
* ``peft-prefix``: peft's ``PrefixEncoder`` (``PrefixTuningConfig``), key/value pairs per layer
  (Li & Liang 2021), the same for every context.
* ``lora``: peft's LoRA adapters on the attention and feed-forward weights (Hu et al. 2022): no
  prompt vectors; the tuned generator is the base with its adapters merged.

A prompt reaches the generator in one of two ways (``prompt.injection``; peft-prompt is always
``embeds``, peft-prefix ``prefix``): ``embeds`` puts ``n`` vectors before the input tokens' embeddings
(positions 0..n-1, the tokens after them), ``prefix`` puts ``n`` key/value pairs in every layer's
cache (the tokens at positions n, n+1, …, as peft's prefix tuning gives them). :class:`PromptedLM`
wraps the backbone and does either in the first forward pass of a sequence; later passes (decoding
with the cache) only see the prompt through the cache, so every decoding and scoring path of
:class:`crs.gen.reply.ReplyGenerator` works unchanged. Both are tested equal to peft's own
``PeftModelForCausalLM`` forward with the same weights. Soft prompts need the ``dialogpt`` backbone.

A checkpoint keeps a prompt in ``prompt/``: ``prompt.json`` (kind, sizes) and ``prompt.safetensors``
(the prompt's weights; the entity table is not stored: it is the recommender's R-GCN output, which
serving computes), or for LoRA peft's adapter files (merged into the generator on loading).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Sequence

import torch
from torch import nn
from transformers import DynamicCache, PreTrainedModel

from crs.config import PromptConfig
from crs.gen.backbone import IGNORE

logger = logging.getLogger(__name__)

PROMPT_DIR = "prompt"
PROMPT_FILE, PROMPT_WEIGHTS = "prompt.json", "prompt.safetensors"
LORA_TARGETS = ["c_attn", "c_proj", "c_fc"]  # GPT-2's attention and feed-forward Conv1D layers


class ContextIds(list):
    """A context's token ids that also carry the KG entities linked in it (what a kg prompt reads)."""

    entities: tuple[int, ...] = ()

    @classmethod
    def of(cls, ids: Sequence[int], entities: Sequence[int] = ()) -> "ContextIds":
        out = cls(ids)
        out.entities = tuple(int(e) for e in entities)
        return out


def context_entities(contexts: Sequence[Sequence[int]]) -> list[tuple[int, ...]]:
    return [getattr(c, "entities", ()) for c in contexts]


def backbone_sizes(model: PreTrainedModel) -> tuple[int, int, int]:
    """(layers, hidden size, attention heads) of a GPT-2 family backbone."""
    config = model.config
    if config.is_encoder_decoder:
        raise ValueError("soft prompts need the dialogpt backbone (a causal decoder); this generator is an encoder-decoder")
    return int(config.n_layer), int(config.n_embd), int(config.n_head)


class SoftPrompt(nn.Module):
    """The prompt of a batch: (B, n, H) vectors (``embeds``) or (B, n, layers * 2 * H) key/values (``prefix``)."""

    kind = ""
    conditioned = False  # reads the linked entities and the context

    def __init__(self, config: PromptConfig, injection: str, layers: int, hidden: int, heads: int):
        super().__init__()
        self.config, self.injection = config, injection
        self.n, self.layers, self.hidden, self.heads = config.virtual_tokens, layers, hidden, heads

    @property
    def width(self) -> int:
        return self.hidden if self.injection == "embeds" else self.layers * 2 * self.hidden

    def forward(self, batch_size: int, entities: torch.Tensor | None = None, context: torch.Tensor | None = None,
                context_mask: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def meta(self) -> dict:
        return {"kind": self.kind, "injection": self.injection, "virtual_tokens": self.n, "layers": self.layers,
                "hidden": self.hidden, "heads": self.heads, "encoder_dim": self.config.encoder_dim,
                "encoder_heads": self.config.encoder_heads}


class PeftPrompt(SoftPrompt):
    """peft's prompt tuning (``PromptEmbedding``) or prefix tuning (``PrefixEncoder``): one prompt for every context."""

    def __init__(self, config: PromptConfig, layers: int, hidden: int, heads: int, word_embeddings: nn.Module | None = None):
        from peft import PrefixTuningConfig, PromptTuningConfig, PromptTuningInit
        from peft.tuners.prefix_tuning import PrefixEncoder
        from peft.tuners.prompt_tuning import PromptEmbedding

        injection = "embeds" if config.kind == "peft-prompt" else "prefix"
        super().__init__(config, injection, layers, hidden, heads)
        self.kind = config.kind
        common = {"task_type": "CAUSAL_LM", "num_virtual_tokens": self.n, "token_dim": hidden, "num_layers": layers,
                  "num_attention_heads": heads, "num_transformer_submodules": 1}
        if injection == "embeds":
            # Initialised from randomly drawn vocabulary embeddings (peft's SAMPLE_VOCAB), at the
            # scale of real token vectors; RANDOM would draw N(0, 1), far larger than GPT-2's.
            init = PromptTuningInit.SAMPLE_VOCAB if word_embeddings is not None else PromptTuningInit.RANDOM
            self.peft_config = PromptTuningConfig(prompt_tuning_init=init, **common)
            self.encoder = PromptEmbedding(self.peft_config, word_embeddings)
        else:
            self.peft_config = PrefixTuningConfig(prefix_projection=False, **common)
            self.encoder = PrefixEncoder(self.peft_config)
        self.register_buffer("indices", torch.arange(self.n), persistent=False)

    def forward(self, batch_size: int, entities=None, context=None, context_mask=None) -> torch.Tensor:
        return self.encoder(self.indices.unsqueeze(0).expand(batch_size, -1))


class KGPrompt(SoftPrompt):
    """Prompt vectors conditioned on the context's linked KG entities and its tokens (module docstring)."""

    kind = "kg"
    conditioned = True

    def __init__(self, config: PromptConfig, layers: int, hidden: int, heads: int, entity_dim: int):
        super().__init__(config, config.injection, layers, hidden, heads)
        dim = config.encoder_dim
        self.entity_dim = entity_dim
        # The recommender's R-GCN output, (entities, entity_dim): attached, not trained, not saved.
        self.register_buffer("entity_table", torch.zeros(0, entity_dim), persistent=False)
        self.queries = nn.Parameter(torch.randn(self.n, dim) * 0.02)
        self.entity_in = nn.Linear(entity_dim, dim)
        self.context_in = nn.Linear(hidden, dim)
        self.kind_embedding = nn.Parameter(torch.zeros(2, dim))  # entity or context token
        self.attention = nn.MultiheadAttention(dim, config.encoder_heads, batch_first=True)
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Sequential(nn.Linear(dim, dim), nn.Tanh(), nn.Linear(dim, self.width))
        nn.init.normal_(self.out[-1].weight, std=0.02)
        nn.init.zeros_(self.out[-1].bias)

    def attach(self, entity_table: torch.Tensor) -> None:
        """The recommender's entity embeddings (R-GCN output), which the prompt reads."""
        if entity_table.dim() != 2 or entity_table.shape[1] != self.entity_dim:
            raise ValueError(f"entity table of shape {tuple(entity_table.shape)}; this prompt reads {self.entity_dim}-wide entity embeddings")
        self.entity_table = entity_table.detach().float().to(self.queries.device)

    def forward(self, batch_size: int, entities: torch.Tensor | None = None, context: torch.Tensor | None = None,
                context_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.out(self.encode(batch_size, entities, context, context_mask))

    @property
    def state_dim(self) -> int:
        return int(self.queries.shape[1])

    def state(self, batch_size: int, entities: torch.Tensor | None = None, context: torch.Tensor | None = None,
              context_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, encoder_dim): the prompt state the recommender takes as one more input (``prompt.rec_input``):
        the mean of the attended queries, before they are mapped to prompt vectors."""
        return self.encode(batch_size, entities, context, context_mask).mean(1)

    def encode(self, batch_size: int, entities: torch.Tensor | None = None, context: torch.Tensor | None = None,
               context_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, n, encoder_dim): the queries after attending to the entities and context tokens."""
        parts, masks = [], []
        if entities is not None and entities.numel() and len(self.entity_table):
            valid = (entities >= 0) & (entities < len(self.entity_table))
            vectors = self.entity_table[entities.clamp(min=0, max=len(self.entity_table) - 1)]
            parts.append(self.entity_in(vectors) + self.kind_embedding[0])
            masks.append(valid)
        if context is not None and context.numel():
            parts.append(self.context_in(context) + self.kind_embedding[1])
            masks.append(context_mask.bool())
        queries = self.queries.unsqueeze(0).expand(batch_size, -1, -1)
        if parts:
            memory, mask = torch.cat(parts, 1), torch.cat(masks, 1)
            empty = ~mask.any(1)  # a row with nothing to attend to keeps its queries
            mask = mask | empty.unsqueeze(1)
            attended, _ = self.attention(queries, memory.to(queries.dtype), memory.to(queries.dtype), key_padding_mask=~mask)
            attended = torch.where(empty[:, None, None], torch.zeros_like(attended), attended)
            queries = self.norm(queries + attended)
        return queries

    def meta(self) -> dict:
        return {**super().meta(), "entity_dim": self.entity_dim}


def build_prompt(config: PromptConfig, model: PreTrainedModel, entity_dim: int = 0) -> SoftPrompt | None:
    """The soft prompt ``config.kind`` names for ``model`` (None for ``none`` and ``lora``)."""
    if config.kind in ("none", "lora"):
        return None
    layers, hidden, heads = backbone_sizes(model)
    if config.kind == "kg":
        if entity_dim < 1:
            raise ValueError("a kg prompt needs the recommender's entity embeddings (entity_dim)")
        return KGPrompt(config, layers, hidden, heads, entity_dim)
    return PeftPrompt(config, layers, hidden, heads, model.get_input_embeddings())


def add_lora(model: PreTrainedModel, config: PromptConfig):
    """``model`` with peft's LoRA adapters on its attention and feed-forward layers (only they train)."""
    from peft import LoraConfig, get_peft_model

    backbone_sizes(model)
    lora = LoraConfig(task_type="CAUSAL_LM", r=config.lora_rank, lora_alpha=config.lora_alpha, lora_dropout=0.05,
                      target_modules=LORA_TARGETS, fan_in_fan_out=True)
    return get_peft_model(model, lora)


class PromptedLM(nn.Module):
    """A GPT-2 family backbone with a soft prompt in front of every sequence (module docstring).

    ``forward`` takes the backbone's arguments plus, for a conditioned prompt, ``prompt_entities``
    (B, E; -1 pads) and ``prompt_context`` (B,): how many of each row's first real tokens are the
    context (the rest is the target, which the prompt must not see). Positions and the attention
    mask passed in are those of the tokens alone; outputs have the tokens' length."""

    def __init__(self, backbone: PreTrainedModel, prompt: SoftPrompt):
        super().__init__()
        self.backbone, self.prompt = backbone, prompt

    @property
    def config(self):
        return self.backbone.config

    def num_parameters(self, only_trainable: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not only_trainable)

    def get_input_embeddings(self) -> nn.Module:
        return self.backbone.get_input_embeddings()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, position_ids: torch.Tensor | None = None,
                past_key_values=None, labels: torch.Tensor | None = None, prompt_entities: torch.Tensor | None = None,
                prompt_context: torch.Tensor | None = None, **kwargs):
        n = self.prompt.n
        batch, length = input_ids.shape
        device = input_ids.device
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        fresh = past_key_values is None or past_key_values.get_seq_length() == 0
        if position_ids is None:
            if not fresh:
                raise ValueError("PromptedLM: pass position_ids with a cache")
            position_ids = (attention_mask.cumsum(1) - 1).clamp(min=0)
        full_mask = torch.cat([torch.ones(batch, n, dtype=attention_mask.dtype, device=device), attention_mask], 1)
        positions = position_ids + n
        if not fresh:
            return self.backbone(input_ids=input_ids, attention_mask=full_mask, position_ids=positions,
                                 past_key_values=past_key_values, labels=labels, **kwargs)
        embeds = self.backbone.get_input_embeddings()(input_ids)
        context, context_mask = None, None
        if self.prompt.conditioned:
            context_mask = self._context_mask(attention_mask, prompt_context)
            context = embeds
        prompt = self.prompt(batch, prompt_entities, context, context_mask)
        if self.prompt.injection == "prefix":
            cache = prefix_cache(prompt.to(embeds.dtype), self.prompt.layers, self.prompt.heads)
            return self.backbone(inputs_embeds=embeds, attention_mask=full_mask, position_ids=positions,
                                 past_key_values=cache, labels=labels, **kwargs)
        start = torch.arange(n, device=device).unsqueeze(0).expand(batch, -1)
        if labels is not None:
            labels = torch.cat([torch.full((batch, n), IGNORE, dtype=labels.dtype, device=device), labels], 1)
        out = self.backbone(inputs_embeds=torch.cat([prompt.to(embeds.dtype), embeds], 1), attention_mask=full_mask,
                            position_ids=torch.cat([start, positions], 1), past_key_values=past_key_values, labels=labels, **kwargs)
        if out.logits is not None and out.logits.size(1) > length:  # the prompt's own positions are not the caller's
            out.logits = out.logits[:, n:]
        if getattr(out, "hidden_states", None) is not None:
            out.hidden_states = tuple(h[:, n:] for h in out.hidden_states)
        return out

    @staticmethod
    def _context_mask(attention_mask: torch.Tensor, context_lengths: torch.Tensor | None) -> torch.Tensor:
        """(B, L): the context tokens of each row: its first ``context_lengths`` real tokens (rows may be padded on either side)."""
        if context_lengths is None:
            raise ValueError("a conditioned prompt needs prompt_context (the context tokens of each row)")
        real = attention_mask.bool()
        rank = attention_mask.cumsum(1)  # 1 for the first real token
        return real & (rank <= context_lengths.to(rank.device).unsqueeze(1))


def prefix_cache(prefix: torch.Tensor, layers: int, heads: int) -> DynamicCache:
    """A cache holding a (B, n, layers * 2 * H) prefix as each layer's keys and values, laid out as
    peft's ``get_prompt`` lays them out (K then V of layer 0, of layer 1, …)."""
    batch, n, width = prefix.shape
    hidden = width // (2 * layers)
    parts = prefix.view(batch, n, layers * 2, heads, hidden // heads).permute(2, 0, 3, 1, 4).split(2)
    return DynamicCache([(kv[0], kv[1]) for kv in parts])


# ----------------------------------------------------------------------------- persistence


def save_prompt(prompt: SoftPrompt, folder: str | Path) -> None:
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / PROMPT_FILE).write_text(json.dumps(prompt.meta(), indent=2) + "\n", encoding="utf-8")
    save_file({k: v.detach().cpu().contiguous() for k, v in prompt.state_dict().items()}, str(folder / PROMPT_WEIGHTS))


def present(folder: str | Path) -> bool:
    folder = Path(folder)
    return (folder / PROMPT_FILE).is_file() or (folder / "adapter_config.json").is_file()


def is_lora(folder: str | Path) -> bool:
    return (Path(folder) / "adapter_config.json").is_file()


def load_prompt(folder: str | Path, model: PreTrainedModel) -> SoftPrompt:
    """A saved prompt for ``model``; a missing, broken or mismatched file is named."""
    from safetensors.torch import load_file

    folder = Path(folder)
    try:
        meta = json.loads((folder / PROMPT_FILE).read_text(encoding="utf-8"))
        config = PromptConfig(kind=meta["kind"], injection=meta["injection"], virtual_tokens=int(meta["virtual_tokens"]),
                              encoder_dim=int(meta["encoder_dim"]), encoder_heads=int(meta["encoder_heads"]))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{folder / PROMPT_FILE}: not a prompt description ({error!r})") from error
    layers, hidden, heads = backbone_sizes(model)
    if (layers, hidden, heads) != (meta["layers"], meta["hidden"], meta["heads"]):
        raise ValueError(f"{folder / PROMPT_FILE}: made for a {meta['layers']}-layer, {meta['hidden']}-wide generator, "
                         f"not this {layers}-layer, {hidden}-wide one")
    prompt = KGPrompt(config, layers, hidden, heads, int(meta["entity_dim"])) if config.kind == "kg" else PeftPrompt(config, layers, hidden, heads)
    try:
        prompt.load_state_dict(load_file(str(folder / PROMPT_WEIGHTS)))
    except Exception as error:  # safetensors raises its own error types for truncated or garbled files
        raise ValueError(f"{folder / PROMPT_WEIGHTS}: does not fit {folder / PROMPT_FILE} ({' '.join(str(error).split())[:200]})") from error
    return prompt.eval()


def merge_lora(model: PreTrainedModel, folder: str | Path) -> PreTrainedModel:
    """``model`` with the LoRA adapters saved in ``folder`` merged into its weights."""
    from peft import PeftModel

    return PeftModel.from_pretrained(model, str(folder)).merge_and_unload()


def trainable_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
