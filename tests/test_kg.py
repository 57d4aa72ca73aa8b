import pytest
import torch

from crs.data import Catalogue, Movie
from kg.graph import GENRE, MOVIE, PERSON, KnowledgeGraph, base_name, extend_with_metadata, load_kg, name_key, uri_name


def test_names_from_uris():
    assert uri_name("<http://dbpedia.org/resource/Keanu_Reeves>") == "Keanu Reeves"
    assert uri_name("<http://dbpedia.org/resource/Are_We_Done_Yet%3F>") == "Are We Done Yet?"
    assert base_name("The Mechanic (2011 film)") == "The Mechanic"
    assert name_key("  Heat (1995 film) ") == "heat"


def tiny_graph() -> KnowledgeGraph:
    # 0: movie A, 1: person P, 2: genre "Comedy"; relations: starring, genre, director, writer, self_loop.
    # Edges: A self-loop, A starring P.
    return KnowledgeGraph(
        entity_names=["A (film)", "Pat Smith", "Comedy"],
        entity_uris=["<a>", "<p>", "<c>"],
        entity_types=[MOVIE, PERSON, GENRE],
        relation_names=["starring", "genre", "director", "writer", "self_loop"],
        edge_index=torch.tensor([[0, 0], [0, 1]]),
        edge_type=torch.tensor([4, 0]),
        movie_to_entity={1: 0},
        self_loop_relation=4,
    )


def test_extension_adds_missing_movies_and_matches_names():
    catalogue = Catalogue([
        Movie(1, "A", 2000, 3, genres=("comedy",), stars=("Pat Smith",)),
        Movie(2, "B", 2001, 1, genres=("comedy", "western"), directors=("Pat Smith",), writers=("New Writer",)),
        Movie(3, "C", None, 0),
    ])
    kg = extend_with_metadata(tiny_graph(), catalogue, enrich_linked_movies=False)
    assert set(kg.movie_to_entity) == {1, 2, 3}
    b = kg.movie_to_entity[2]
    assert kg.entity_names[b] == "B (2001)" and kg.entity_types[b] == MOVIE
    triples = set(kg.triples())
    assert (b, 1, 2) in triples  # "comedy" matched the existing genre entity
    assert (b, 2, 1) in triples  # director matched the existing person by name
    western = kg.entity_names.index("western (genre)")
    writer = kg.entity_names.index("New Writer")
    assert (b, 1, western) in triples and kg.entity_types[western] == GENRE
    assert (b, 3, writer) in triples and kg.entity_types[writer] == PERSON
    assert (b, 4, b) in triples  # new nodes get a self-loop like every original head
    assert kg.notes["new_movies_without_metadata"] == 1
    # Movie 1 was already linked; without enrichment it gains no edge.
    assert not [t for t in kg.triples() if t[0] == 0 and t[1] == 1]
    enriched = extend_with_metadata(tiny_graph(), catalogue, enrich_linked_movies=True)
    assert (0, 1, 2) in set(enriched.triples())
    assert (0, 0, 1) in set(enriched.triples()) and enriched.num_edges == len(set(enriched.triples()))  # no duplicate


@pytest.mark.data
def test_real_subgraph_counts_match_the_data_readme(data_dir):
    kg = load_kg(data_dir)
    counts = kg.counts()
    assert counts["entities"] == 31161
    assert counts["relations"] == 25
    assert counts["triples"] == 105364
    assert counts["self_loops"] == 24032
    assert counts["catalogue_movies_with_node"] == 5246
    assert kg.edge_index.shape == (2, 105364) and kg.edge_index.dtype == torch.long
    assert int(kg.edge_index.max()) < kg.num_entities and int(kg.edge_type.max()) < kg.num_relations
    assert "Keanu Reeves" in kg.entity_names


@pytest.mark.data
def test_every_catalogue_movie_is_a_node_after_extension(extended_kg, catalogue):
    kg = extended_kg
    assert len(kg.movie_to_entity) == len(catalogue) == 6924
    assert len(set(kg.movie_to_entity.values())) == 6924
    assert kg.num_entities > 31161 and kg.num_edges > 105364
    assert kg.notes["added_movie_nodes"] == 1678
    assert all(kg.entity_types[e] == MOVIE for e in kg.movie_to_entity.values())
    # A movie missing from DBpedia but with metadata is connected to a genre.
    missing = next(m for m in catalogue.movies if kg.entity_uris[kg.movie_to_entity[m.movie_id]] is None and m.genres)
    relations = {kg.relation_names[r] for r, _ in kg.neighbours(kg.movie_to_entity[missing.movie_id])}
    assert "genre" in relations
