"""The learned KG + text recommender network (:class:`KGTextRecModel`): scores for the whole catalogue."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from crs.rec.features import NUM_MENTION_FEATURES
from kg.rgcn import RGCNEncoder

if TYPE_CHECKING:
    from crs.config import RecConfig, RGCNConfig


@dataclass
class RecOutput:
    scores: "torch.Tensor"  # (B, N) over the catalogue
    loss: "torch.Tensor | None" = None


class AttentionPooling(nn.Module):
    """Self-attention pooling of a set of entity embeddings into one user vector (KBRD, Chen et al.
    2019, https://arxiv.org/abs/1908.05391): a = softmax(v^T tanh(W h_e)), u = sum_e a_e h_e."""

    def __init__(self, dim: int):
        super().__init__()
        self.project = nn.Linear(dim, dim)
        self.score = nn.Linear(dim, 1, bias=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        logits = self.score(torch.tanh(self.project(x))).squeeze(-1)  # (B, E)
        logits = logits.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(logits, dim=-1).nan_to_num(0.0)  # rows without entities → all zero
        return torch.einsum("be,bed->bd", weights, x)  # (B, D)


class KGTextRecModel(nn.Module):
    """Scores every catalogue movie for a batch of contexts by adding up:

    * KG side: R-GCN entity embeddings of the linked context entities, attention-pooled (KBRD),
      dotted with each movie's R-GCN embedding; the generator's ``[REC]`` state, when given, is
      projected and added to this user vector;
    * text side: the context's sentence embedding against each movie's (title + facts) embedding,
      through learned projections plus a learned weight on their raw cosine similarity, so movies
      with little KG signal still rank by what the dialogue says;
    * mentions: a learned weight per mention feature (by seeker, by recommender, recency, seeker
      sentiment): the explicit, learned handling of movies already in the dialogue; the sentiment
      also shifts each context movie's embedding before pooling;
    * co-occurrence with the context's movies in training dialogues, with a learned weight;
    * a learned per-movie bias (popularity).
    """

    def __init__(self, config: "RecConfig", rgcn: "RGCNConfig", num_entities: int, num_relations: int,
                 item_entities: torch.Tensor, item_text: torch.Tensor | None, text_top: nn.Module | None = None,
                 tune_lr: float = 5e-5):
        super().__init__()

        self.config = config
        num_items = int(item_entities.shape[0])
        dim = rgcn.dim
        self.register_buffer("item_entities", item_entities.long().clone())
        if config.use_kg:
            self.encoder = RGCNEncoder(num_entities, num_relations, dim, rgcn.num_layers, rgcn.num_bases, rgcn.dropout)
            self.pool = AttentionPooling(dim)
            # Added to a context movie's embedding, scaled by the seeker's sentiment towards it.
            self.sentiment_direction = nn.Parameter(torch.zeros(dim))
        if config.use_text:
            if item_text is None:
                raise ValueError("rec.use_text needs item text embeddings")
            self.register_buffer("item_text", item_text.float().clone())
            text_dim = int(item_text.shape[1])
            self.context_projection = nn.Linear(text_dim, dim)
            self.item_projection = nn.Linear(text_dim, dim)
            self.text_similarity_weight = nn.Parameter(torch.tensor(5.0))
            # The sentence encoder's top layers when they are tuned (crs.text.encoder.TunableTop).
            self.text_top = text_top
            self.tune_lr = tune_lr
        if config.rec_state_dim:
            # Zero at the start: the model begins as the one without the state and uses it only
            # as far as training finds it helpful.
            self.rec_state_projection = nn.Linear(config.rec_state_dim, dim)
            nn.init.zeros_(self.rec_state_projection.weight)
            nn.init.zeros_(self.rec_state_projection.bias)
        self.mention_weights = nn.Linear(NUM_MENTION_FEATURES, 1, bias=False)
        if config.use_cooccurrence:
            self.cooccurrence_weight = nn.Parameter(torch.tensor(0.5))
        self.item_bias = nn.Parameter(torch.zeros(num_items))

    def param_groups(self, lr: float, tune_lr: float | None = None) -> list[dict]:
        """Optimizer groups: the tuned sentence-encoder layers at their own (smaller) rate."""
        top = getattr(self, "text_top", None)
        if top is None:
            return [{"params": [p for p in self.parameters() if p.requires_grad]}]
        top_ids = {id(p) for p in top.parameters()}
        rest = [p for p in self.parameters() if p.requires_grad and id(p) not in top_ids]
        return [{"params": rest}, {"params": list(top.parameters()), "lr": tune_lr if tune_lr is not None else self.tune_lr}]

    def entity_embeddings(self) -> torch.Tensor:
        """(num_entities, D) from the R-GCN over the registered graph."""
        return self.encoder().embeddings

    def item_vectors(self, entity_embeddings: torch.Tensor | None) -> torch.Tensor:
        """(N, D) the item side that user vectors are scored against."""
        if self.config.use_kg:
            return entity_embeddings[self.item_entities]
        return self.item_projection(self.item_text)

    def forward(self, entities: torch.Tensor, mentions: torch.Tensor, entity_sentiment: torch.Tensor | None = None,
                cooccurrence: torch.Tensor | None = None,
                text: torch.Tensor | None = None, rec_state: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                entity_embeddings: torch.Tensor | None = None, text_hidden: torch.Tensor | None = None,
                text_mask: torch.Tensor | None = None, excluded: torch.Tensor | None = None) -> RecOutput:
        """Scores (B, N) of every catalogue movie; with ``labels``, the cross-entropy loss, from which
        ``excluded`` (B, N; bool) takes movies out of each row's softmax (``rec.negatives``)."""
        batch_size = entities.shape[0]
        if text_hidden is not None:
            text = self.text_top(text_hidden, text_mask)  # (B, H), through the tuned top layers
        scores = self.item_bias.unsqueeze(0).expand(batch_size, -1)  # (B, N)
        user = None
        if self.config.use_kg:
            table = self.entity_embeddings() if entity_embeddings is None else entity_embeddings  # (V, D)
            mask = entities >= 0  # (B, E)
            x = table[entities.clamp(min=0)]  # (B, E, D)
            if entity_sentiment is not None:
                x = x + entity_sentiment.unsqueeze(-1) * self.sentiment_direction  # (B, E, D)
            user = self.pool(x, mask)  # (B, D)
        if self.config.use_text and text is not None:
            item_text = self.item_text  # (N, H)
            scores = scores + self.context_projection(text) @ self.item_projection(item_text).T  # (B, N)
            scores = scores + self.text_similarity_weight * (text @ item_text.T)
        if rec_state is not None and self.config.rec_state_dim:
            state = self.rec_state_projection(rec_state)  # (B, D)
            user = state if user is None else user + state
        if user is not None:
            scores = scores + user @ self.item_vectors(table if self.config.use_kg else None).T
        scores = scores + self.mention_weights(mentions).squeeze(-1)  # (B, N)
        if self.config.use_cooccurrence and cooccurrence is not None:
            scores = scores + self.cooccurrence_weight * cooccurrence
        loss = None
        if labels is not None:
            logits = scores if excluded is None else scores.masked_fill(excluded, float("-inf"))
            loss = nn.functional.cross_entropy(logits, labels)
        return RecOutput(scores=scores, loss=loss)
