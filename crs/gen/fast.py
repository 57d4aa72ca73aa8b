"""A lean inference-only forward pass of a GPT-2 generator, for decoding on the CPU.

Decoding calls the generator once per new token. For the small generators served here, most of
such a call was spent around the arithmetic: transformers' per-call mask building, output
capturing, cache bookkeeping, a GELU written as seven element-wise operations. :class:`FastGPT2`
computes the same function from the same weights with a few fused PyTorch operations
(``F.layer_norm``, ``F.linear``, ``F.scaled_dot_product_attention``, ``F.gelu``), and takes the
arguments decoding passes to the transformers model (``input_ids``, ``attention_mask``,
``position_ids``, ``past_key_values``, ``logits_to_keep``), so :class:`crs.gen.reply.ReplyGenerator`
swaps it in for decoding only: training, perplexity and the ``[REC]`` state keep the transformers
model.

``dtype`` is the arithmetic of the weight products: float32 gives the transformers model's results
to float rounding; bfloat16 (where the CPU runs it natively, :mod:`crs.precision`) keeps the
residual stream and the layer norms in float32, and the output (vocabulary) layer three ways
(``logits`` in float32; ``rough_logits`` in bfloat16; ``token_logits`` of chosen words in float32),
so that greedy choices between close words and candidate scores are not rounded to bfloat16's
8 bits (:meth:`FastGPT2.best_of`).

:func:`supports` says whether a model can run this way (a plain ``GPT2LMHeadModel`` with the
standard attention and a GELU activation); other generators (T5, a soft-prompted generator)
decode with their own forward pass.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# transformers' activation names -> F.gelu's ``approximate``
_GELU = {"gelu_new": "tanh", "gelu_pytorch_tanh": "tanh", "gelu_fast": "tanh", "gelu": "none"}


def supports(model: torch.nn.Module) -> bool:
    """Whether :class:`FastGPT2` computes what ``model`` computes."""
    config = getattr(model, "config", None)
    return (type(model).__name__ == "GPT2LMHeadModel" and config is not None
            and config.activation_function in _GELU
            and bool(getattr(config, "scale_attn_weights", True))
            and not getattr(config, "scale_attn_by_inverse_layer_idx", False)
            and not getattr(config, "reorder_and_upcast_attn", False)
            and not getattr(config, "add_cross_attention", False))


class KVCache:
    """Keys and values of the positions run so far, one (B, heads, T, head size) pair per layer.

    The part of transformers' cache interface decoding uses: :meth:`get_seq_length` and
    :meth:`batch_select_indices`. A forward pass returns a new cache and leaves the one it was given
    as it was, so a cache can be continued more than once."""

    def __init__(self, keys: list[torch.Tensor], values: list[torch.Tensor]):
        self.keys, self.values = keys, values

    def get_seq_length(self) -> int:
        return int(self.keys[0].size(2)) if self.keys else 0

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        """Keep (or repeat) the rows ``indices``, in place. Indexing, not ``index_select``: on the
        CPU the latter copies these 4-D tensors some 40 times slower (torch 2.13), and this copy is
        what every scored tail (goal, topic, retrieved reply) pays."""
        self.keys = [k[indices] for k in self.keys]
        self.values = [v[indices] for v in self.values]


class Output:
    """A forward pass's result: ``hidden`` (the final, normalised hidden states of the positions
    asked for), ``past_key_values``, and ``logits`` (float32), computed from ``hidden`` when first read."""

    def __init__(self, model: "FastGPT2", hidden: torch.Tensor, cache: KVCache):
        self.model, self.hidden, self.past_key_values = model, hidden, cache
        self._logits: torch.Tensor | None = None

    @property
    def logits(self) -> torch.Tensor:
        if self._logits is None:
            self._logits = F.linear(self.hidden, self.model.head, self.model.head_bias)
        return self._logits


class FastGPT2:
    """``model``'s forward pass for inference, its weight products in ``dtype``. The weights are
    copied (in ``dtype``; the embeddings, layer norms and output layer in float32, the output layer
    also in ``dtype``), so training the model afterwards does not change this one: make a new one."""

    def __init__(self, model: torch.nn.Module, dtype: torch.dtype = torch.float32):
        if not supports(model):
            raise ValueError(f"FastGPT2 runs plain GPT-2 generators only, not {type(model).__name__}")
        config = self.config = model.config
        body = model.transformer
        self.dtype = dtype
        self.heads = int(config.n_head)
        self.eps = float(config.layer_norm_epsilon)
        self.approximate = _GELU[config.activation_function]
        self.device = body.wte.weight.device

        def fp32(tensor: torch.Tensor) -> torch.Tensor:
            return tensor.detach().to(torch.float32).contiguous()

        def linear(conv) -> tuple[torch.Tensor, torch.Tensor]:  # transformers' Conv1D: x @ W + b, W (in, out)
            return conv.weight.detach().t().to(dtype).contiguous(), conv.bias.detach().to(dtype).contiguous()

        self.wte, self.wpe = fp32(body.wte.weight), fp32(body.wpe.weight)
        self.layers = [{
            "ln_1": (fp32(block.ln_1.weight), fp32(block.ln_1.bias)),
            "qkv": linear(block.attn.c_attn), "attn_out": linear(block.attn.c_proj),
            "ln_2": (fp32(block.ln_2.weight), fp32(block.ln_2.bias)),
            "fc": linear(block.mlp.c_fc), "mlp_out": linear(block.mlp.c_proj),
        } for block in body.h]
        self.ln_f = (fp32(body.ln_f.weight), fp32(body.ln_f.bias))
        head = model.get_output_embeddings()
        self.head = fp32(head.weight)
        self.head_bias = fp32(head.bias) if getattr(head, "bias", None) is not None else None
        # The output layer in the products' dtype (the same tensors in float32), for rough_logits.
        self.rough_head = self.head.to(dtype)
        self.rough_bias = self.head_bias.to(dtype) if self.head_bias is not None else None

    @torch.no_grad()
    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                 position_ids: torch.Tensor | None = None, past_key_values: KVCache | None = None,
                 use_cache: bool = True, logits_to_keep: int = 0, logits_at: torch.Tensor | None = None) -> Output:
        """The logits of the last ``logits_to_keep`` positions (all when 0) and the cache continued
        by ``input_ids``; with ``logits_at`` (B, T, bool), the logits of those positions only, as
        (number of positions, vocabulary) in row-major order (scoring needs no logits at padding).
        ``attention_mask`` (B, past + T) covers the cached positions and the new ones (1: a token,
        0: padding); without it every position is a token; without ``position_ids`` the new tokens
        follow the cache; ``use_cache`` is accepted as transformers' models take it (a cache is
        always returned). As in transformers, a padded position's own output is meaningless: it
        attends to itself only, so that nothing becomes NaN."""
        batch, length = input_ids.shape
        past = past_key_values.get_seq_length() if past_key_values is not None else 0
        total = past + length
        if position_ids is None:
            position_ids = torch.arange(past, total, device=self.device).expand(batch, length)
        keys_ok = (attention_mask.bool() if attention_mask is not None
                   else torch.ones(batch, total, dtype=torch.bool, device=self.device))[:, None, None, :]
        if length > 1:  # causal among the new tokens; each position sees itself
            key_positions = torch.arange(total, device=self.device)
            query_positions = torch.arange(past, total, device=self.device)[:, None]
            allowed = (keys_ok & (key_positions <= query_positions)) | (key_positions == query_positions)
        else:
            allowed = keys_ok
        hidden = self.wte[input_ids] + self.wpe[position_ids]  # float32 residual stream
        width = hidden.size(-1)
        head_size = width // self.heads
        keys, values = [], []
        for number, layer in enumerate(self.layers):
            x = F.layer_norm(hidden, (width,), *layer["ln_1"], self.eps).to(self.dtype)
            q, k, v = F.linear(x, *layer["qkv"]).view(batch, length, 3, self.heads, head_size).permute(2, 0, 3, 1, 4)
            if past_key_values is not None:
                k = torch.cat([past_key_values.keys[number], k], 2)
                v = torch.cat([past_key_values.values[number], v], 2)
            keys.append(k)
            values.append(v)
            attended = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
            attended = attended.transpose(1, 2).reshape(batch, length, width)
            hidden = hidden + F.linear(attended, *layer["attn_out"]).float()
            x = F.layer_norm(hidden, (width,), *layer["ln_2"], self.eps).to(self.dtype)
            x = F.gelu(F.linear(x, *layer["fc"]), approximate=self.approximate)
            hidden = hidden + F.linear(x, *layer["mlp_out"]).float()
        if logits_at is not None:  # (the logits are computed from ``hidden`` when read)
            hidden = hidden[logits_at]
        elif logits_to_keep:
            hidden = hidden[:, -logits_to_keep:]
        return Output(self, F.layer_norm(hidden, (width,), *self.ln_f, self.eps), KVCache(keys, values))

    # The output layer, three ways. In bf16 the vocabulary-wide product is the largest of a decoding
    # step; these let a step run it in bf16 and still choose and score with fp32 logits.
    def rough_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """(..., vocabulary) logits from the output layer in the products' dtype, as float32."""
        return F.linear(hidden.to(self.rough_head.dtype), self.rough_head, self.rough_bias).float()

    def token_logits(self, hidden: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """The fp32 logits of ``tokens`` (..., k) at ``hidden`` (..., width): (..., k)."""
        logits = torch.einsum("...w,...kw->...k", hidden, self.head[tokens])
        return logits + self.head_bias[tokens] if self.head_bias is not None else logits

    def best_of(self, hidden: torch.Tensor, rough: torch.Tensor, shortlist: int = 8) -> torch.Tensor:
        """Greedy choice with fp32 logits at the cost of rough ones: the ``shortlist`` tokens with the
        highest ``rough`` logits (``rough_logits``, -inf where a token is barred), then the one of them
        with the highest fp32 logit. It is the fp32 argmax unless more than ``shortlist`` tokens lie
        within the rough logits' rounding of the best (bf16: a few hundredths)."""
        values, tokens = rough.topk(min(shortlist, rough.size(-1)), dim=-1)
        exact = self.token_logits(hidden, tokens).masked_fill(values == float("-inf"), float("-inf"))
        return tokens.gather(-1, exact.argmax(-1, keepdim=True)).squeeze(-1)
