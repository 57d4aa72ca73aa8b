import pytest
import torch

from kg.graph import MOVIE, PERSON, KnowledgeGraph
from kg.rgcn import RGCNEncoder, message_passing_graph


def four_node_graph():
    # 0 -r0-> 1, 1 -r1-> 2, 2 -r0-> 3
    edge_index = torch.tensor([[0, 1, 2], [1, 2, 3]])
    edge_type = torch.tensor([0, 1, 0])
    return edge_index, edge_type


def test_shapes_and_relation_sensitivity():
    torch.manual_seed(0)
    encoder = RGCNEncoder(num_entities=4, num_relations=2, dim=8, num_layers=2, num_bases=2, dropout=0.0)
    edge_index, edge_type = four_node_graph()
    out = encoder(edge_index, edge_type).embeddings
    assert out.shape == (4, 8)
    changed = encoder(edge_index, torch.tensor([0, 0, 0])).embeddings  # the middle edge changes relation
    assert not torch.allclose(out[2], changed[2])  # node 2 receives the changed edge
    assert torch.allclose(out[0], changed[0])  # node 0 receives no message on any path of length <= 2


def test_registered_graph_and_reset_parameters():
    torch.manual_seed(0)
    encoder = RGCNEncoder(4, 2, dim=8, num_layers=1, num_bases=2, dropout=0.0)
    edge_index, edge_type = four_node_graph()
    encoder.set_graph(edge_index, edge_type)
    before = encoder().embeddings.detach().clone()
    assert torch.allclose(before, encoder(edge_index, edge_type).embeddings)
    assert "edge_index" not in encoder.state_dict()  # the graph is data, not a weight
    encoder.reset_parameters()
    assert not torch.allclose(before, encoder().embeddings)
    with pytest.raises(ValueError, match="num_layers"):
        RGCNEncoder(4, 2, num_layers=0)


def test_gradient_reaches_the_embeddings():
    encoder = RGCNEncoder(4, 2, dim=8, num_bases=2, dropout=0.0)
    edge_index, edge_type = four_node_graph()
    encoder(edge_index, edge_type).embeddings[3].sum().backward()
    assert encoder.embedding.weight.grad[2].abs().sum() > 0  # 2 → 3 carries node 2's embedding


def test_message_passing_graph_groups_rare_relations_and_adds_reverse_edges():
    kg = KnowledgeGraph(
        entity_names=["m", "p", "q"], entity_uris=[None] * 3, entity_types=[MOVIE, PERSON, PERSON],
        relation_names=["starring", "director", "self_loop"],
        edge_index=torch.tensor([[0, 0, 0, 0], [1, 2, 0, 1]]), edge_type=torch.tensor([0, 0, 2, 1]),
        movie_to_entity={1: 0}, self_loop_relation=2,
    )
    edge_index, edge_type, names = message_passing_graph(kg, min_relation_edges=2)
    assert names == ["starring", "other"]  # director has one triple: grouped; self-loops dropped
    assert edge_index.shape == (2, 6) and edge_type.tolist() == [0, 0, 1, 0, 0, 1]
    assert edge_index[:, 3:].tolist() == [[1, 2, 1], [0, 0, 0]]  # reverse edges, same types
    _, inverse_type, inverse_names = message_passing_graph(kg, min_relation_edges=2, inverse_relations=True)
    assert inverse_names == ["starring", "other", "starring^-1", "other^-1"] and inverse_type.tolist()[3:] == [2, 2, 3]
    dropped, _, same_names = message_passing_graph(kg, min_relation_edges=2, drop=torch.tensor([True, False, False, False]))
    assert dropped.shape == (2, 4) and same_names == names


@pytest.mark.data
def test_one_forward_on_the_real_graph(extended_kg):
    edge_index, edge_type, names = message_passing_graph(extended_kg)
    encoder = RGCNEncoder(extended_kg.num_entities, len(names), dim=16, num_bases=4)
    with torch.no_grad():
        out = encoder(edge_index, edge_type).embeddings
    assert out.shape == (extended_kg.num_entities, 16) and torch.isfinite(out).all()
