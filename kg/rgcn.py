"""R-GCN encoder of the knowledge graph (Schlichtkrull et al. 2018, "Modeling Relational Data with
Graph Convolutional Networks", https://arxiv.org/abs/1703.06103), as KBRD (Chen et al. 2019) uses it.

Layers are ``torch_geometric.nn.RGCNConv`` with basis decomposition. The graph is data: it is passed
to :meth:`RGCNEncoder.forward` as ``edge_index`` / ``edge_type`` (or registered once with
:meth:`RGCNEncoder.set_graph` as non-persistent buffers), never read from files here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch_geometric.nn import RGCNConv

from kg.graph import KnowledgeGraph


def message_passing_graph(kg: KnowledgeGraph, min_relation_edges: int = 1000, inverse_relations: bool = False,
                          drop: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Edges for message passing over ``kg``.

    Self-loops are dropped (RGCNConv has its own root weight). Relations with fewer than
    ``min_relation_edges`` triples share one type, "other": RGCNConv's cost grows with the number
    of relation types (one N×D×D product each), and rare relations carry little signal. Every edge
    also runs tail → head so that movies hear from their people and genres and back; the reverse
    edge gets the same type, as in KBRD, or an inverse type of its own with ``inverse_relations``.

    ``drop`` (a bool mask over ``kg``'s edges) removes edges, such as held-out link-prediction
    triples, after the relation types are chosen, so the types stay those of the whole graph.

    Returns ``edge_index`` (2, 2E'), ``edge_type`` (2E',) and the relation type names.
    """
    keep = torch.ones_like(kg.edge_type, dtype=torch.bool)
    if kg.self_loop_relation is not None:
        keep = kg.edge_type != kg.self_loop_relation
    counts = torch.bincount(kg.edge_type[keep], minlength=kg.num_relations)
    frequent = [r for r in range(kg.num_relations) if r != kg.self_loop_relation and counts[r] >= min_relation_edges]
    names = [kg.relation_names[r] for r in frequent]
    remap = torch.full((kg.num_relations,), len(frequent), dtype=torch.long)  # rare → "other"
    remap[torch.tensor(frequent, dtype=torch.long)] = torch.arange(len(frequent))
    if any(counts[r] > 0 and r not in frequent for r in range(kg.num_relations) if r != kg.self_loop_relation):
        names.append("other")
    if drop is not None:
        keep = keep & ~drop
    edge_index = kg.edge_index[:, keep]
    edge_type = remap[kg.edge_type[keep]]
    reverse_type = edge_type + len(names) if inverse_relations else edge_type
    if inverse_relations:
        names = names + [f"{name}^-1" for name in names]
    both_index = torch.cat([edge_index, edge_index.flip(0)], dim=1)  # (2, 2E')
    both_type = torch.cat([edge_type, reverse_type])  # (2E',)
    return both_index, both_type, names


@dataclass
class RGCNOutput:
    embeddings: torch.Tensor  # (num_entities, dim)


class RGCNEncoder(nn.Module):
    """Entity embeddings → ``num_layers`` R-GCN layers → contextual entity embeddings.

    Args:
        num_entities: nodes of the graph.
        num_relations: relation types of ``edge_type`` (inverses included).
        dim: embedding and hidden size (default 128, as KBRD).
        num_layers: R-GCN layers (default 1).
        num_bases: basis matrices shared by all relations (default 8).
        dropout: on the input embeddings and between layers.
    """

    def __init__(self, num_entities: int, num_relations: int, dim: int = 128, num_layers: int = 1, num_bases: int = 8, dropout: float = 0.1):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.num_entities, self.num_relations, self.dim = num_entities, num_relations, dim
        self.embedding = nn.Embedding(num_entities, dim)
        self.layers = nn.ModuleList(
            RGCNConv(dim, dim, num_relations, num_bases=min(num_bases, num_relations)) for _ in range(num_layers)
        )
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("edge_index", torch.empty(2, 0, dtype=torch.long), persistent=False)
        self.register_buffer("edge_type", torch.empty(0, dtype=torch.long), persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.embedding.weight)
        for layer in self.layers:
            layer.reset_parameters()

    def set_graph(self, edge_index: torch.Tensor, edge_type: torch.Tensor) -> None:
        device = self.embedding.weight.device
        self.edge_index = edge_index.to(device)
        self.edge_type = edge_type.to(device)

    def forward(self, edge_index: torch.Tensor | None = None, edge_type: torch.Tensor | None = None) -> RGCNOutput:
        edge_index = self.edge_index if edge_index is None else edge_index
        edge_type = self.edge_type if edge_type is None else edge_type
        x = self.dropout(self.embedding.weight)  # (N, D)
        for position, layer in enumerate(self.layers):
            x = layer(x, edge_index, edge_type)  # (N, D)
            if position < len(self.layers) - 1:
                x = self.dropout(torch.relu(x))
        return RGCNOutput(embeddings=x)
