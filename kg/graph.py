"""The DBpedia subgraph of ReDial movies (as extracted for KBRD/KGSF/UniCRS), as PyG-style tensors.

``edge_index`` (2, E) holds head → tail entity ids and ``edge_type`` (E,) relation ids, the names
torch_geometric's ``RGCNConv`` takes. :func:`extend_with_metadata` adds what ``movie_info.json``
knows (genre, director, writer, star), so that every catalogue movie is a node: the 1,678 movies
missing from the subgraph get a node of their own, linked to existing people and genres matched by
name, or to new nodes where none exists.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import unquote

import torch

from kg.types import CatalogueLike

logger = logging.getLogger(__name__)

SELF_LOOP = "self_loop"
MOVIE, PERSON, GENRE, OTHER = "movie", "person", "genre", "other"

# DBpedia relations whose tails are people, and the one whose tails are genres.
PERSON_RELATIONS = frozenset(
    {"starring", "director", "writer", "producer", "executiveProducer", "cinematography", "composer",
     "musicComposer", "editing", "editor", "narrator", "author", "person"}
)
GENRE_RELATION = "genre"
# movie_info.json field → relation name used for its edges.
METADATA_RELATIONS = {"genres": "genre", "directors": "director", "writers": "writer", "stars": "starring"}
# ReDial genres (IMDb's) whose DBpedia entity has another name; others match their own name.
GENRE_ALIASES = {"sci-fi": "science fiction", "film-noir": "film noir", "horror": "horror fiction", "crime": "crime fiction"}

_DISAMBIGUATION_RE = re.compile(r"\s*\([^()]*\)\s*$")


def uri_name(uri: str) -> str:
    """``<http://dbpedia.org/resource/Keanu_Reeves>`` → ``"Keanu Reeves"``; keeps ``(film)`` suffixes."""
    local = uri.strip("<>").rsplit("/", 1)[-1]
    return unquote(local).replace("_", " ").strip()


def relation_name(uri: str) -> str:
    """``<http://dbpedia.org/ontology/starring>`` → ``"starring"``."""
    return uri.strip("<>").rsplit("/", 1)[-1]


def base_name(name: str) -> str:
    """A name without its disambiguation: ``"The Mechanic (2011 film)"`` → ``"The Mechanic"``."""
    return _DISAMBIGUATION_RE.sub("", name).strip()


def name_key(name: str) -> str:
    """The key names are matched on: disambiguation dropped, case and spacing folded."""
    return " ".join(base_name(name).casefold().split())


@dataclass
class KnowledgeGraph:
    entity_names: list[str]  # readable names, disambiguation kept ("Heat (1995 film)")
    entity_uris: list[str | None]  # DBpedia URI, None for nodes added from metadata
    entity_types: list[str]  # MOVIE, PERSON, GENRE or OTHER
    relation_names: list[str]
    edge_index: torch.Tensor  # (2, E) head → tail, long
    edge_type: torch.Tensor  # (E,), long
    movie_to_entity: dict[int, int]  # ReDial movie id → entity id
    self_loop_relation: int | None = None
    notes: dict[str, int] = field(default_factory=dict)  # counts from loading and extension

    @property
    def num_entities(self) -> int:
        return len(self.entity_names)

    @property
    def num_relations(self) -> int:
        return len(self.relation_names)

    @property
    def num_edges(self) -> int:
        return int(self.edge_index.shape[1])

    def counts(self) -> dict[str, int]:
        types = Counter(self.entity_types)
        loops = int((self.edge_type == self.self_loop_relation).sum()) if self.self_loop_relation is not None else 0
        return {
            "entities": self.num_entities,
            "relations": self.num_relations,
            "triples": self.num_edges,
            "self_loops": loops,
            "movie_nodes": types[MOVIE],
            "person_nodes": types[PERSON],
            "genre_nodes": types[GENRE],
            "other_nodes": types[OTHER],
            "catalogue_movies_with_node": len(self.movie_to_entity),
        }

    def relation_id(self, name: str) -> int:
        return self.relation_names.index(name)

    def triples(self) -> list[tuple[int, int, int]]:
        """(head, relation, tail) triples as Python ints."""
        heads, tails = self.edge_index.tolist()
        return list(zip(heads, self.edge_type.tolist(), tails))

    def neighbours(self, entity: int) -> list[tuple[int, int]]:
        """(relation, entity) pairs adjacent to ``entity`` in either direction, self-loops excluded."""
        heads, tails = self.edge_index
        out = []
        for mask, other in ((heads == entity, tails), (tails == entity, heads)):
            for rel, ent in zip(self.edge_type[mask].tolist(), other[mask].tolist()):
                if rel != self.self_loop_relation and ent != entity:
                    out.append((rel, ent))
        return out


def load_kg(data_dir: str | Path) -> KnowledgeGraph:
    """Read ``kg/`` of the data folder: entity2id, relation2id, dbpedia_subkg, redial_movie_to_dbpedia."""
    kg_dir = Path(data_dir) / "kg"
    missing = [name for name in ("entity2id.json", "relation2id.json", "dbpedia_subkg.json", "redial_movie_to_dbpedia.json")
               if not (kg_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{kg_dir} lacks {missing}")
    entity2id: dict[str, int] = json.loads((kg_dir / "entity2id.json").read_text(encoding="utf-8"))
    relation2id: dict[str, int] = json.loads((kg_dir / "relation2id.json").read_text(encoding="utf-8"))
    subkg: dict[str, list[list[int]]] = json.loads((kg_dir / "dbpedia_subkg.json").read_text(encoding="utf-8"))
    movie_uris: dict[str, str | None] = json.loads((kg_dir / "redial_movie_to_dbpedia.json").read_text(encoding="utf-8"))

    num_entities = max(entity2id.values()) + 1
    uris: list[str | None] = [None] * num_entities
    for uri, index in entity2id.items():
        uris[index] = uri
    names = [uri_name(uri) if uri else f"entity {i}" for i, uri in enumerate(uris)]
    relations = [""] * (max(relation2id.values()) + 1)
    for uri, index in relation2id.items():
        relations[index] = relation_name(uri)

    heads, rels, tails = [], [], []
    skipped = 0
    for head, edges in subkg.items():
        for rel, tail in edges:
            if not (0 <= tail < num_entities and 0 <= rel < len(relations)):
                skipped += 1
                continue
            heads.append(int(head))
            rels.append(rel)
            tails.append(tail)
    if skipped:
        logger.warning("skipped %d triples with unknown entity or relation ids", skipped)

    movie_to_entity = {int(movie): entity2id[uri] for movie, uri in movie_uris.items() if uri and uri in entity2id}
    types = [OTHER] * num_entities
    for rel, tail in zip(rels, tails):
        if relations[rel] == GENRE_RELATION:
            types[tail] = GENRE
        elif relations[rel] in PERSON_RELATIONS:
            types[tail] = PERSON
    for entity in movie_to_entity.values():
        types[entity] = MOVIE
    return KnowledgeGraph(
        entity_names=names,
        entity_uris=uris,
        entity_types=types,
        relation_names=relations,
        edge_index=torch.tensor([heads, tails], dtype=torch.long),
        edge_type=torch.tensor(rels, dtype=torch.long),
        movie_to_entity=movie_to_entity,
        self_loop_relation=relations.index(SELF_LOOP) if SELF_LOOP in relations else None,
        notes={"skipped_triples": skipped, "movies_with_uri": sum(1 for uri in movie_uris.values() if uri)},
    )


def extend_with_metadata(kg: KnowledgeGraph, catalogue: CatalogueLike, enrich_linked_movies: bool = True,
                         metadata_edges: bool = True) -> KnowledgeGraph:
    """A new graph in which every catalogue movie is a node with its metadata edges.

    Movies without an entity get a node named after their title. Genre, director, writer and star
    names are matched to existing entities of the right type by :func:`name_key` (genres also
    through GENRE_ALIASES); unmatched names become new nodes. With ``enrich_linked_movies`` the
    movies already in DBpedia get the metadata edges too (DBpedia rarely carries film genres).
    New nodes get a self-loop, like every head of the original subgraph. With ``metadata_edges``
    false, only the missing movie nodes are added (an ablation: the graph DBpedia alone gives).
    """
    names, uris, types = list(kg.entity_names), list(kg.entity_uris), list(kg.entity_types)
    movie_to_entity = dict(kg.movie_to_entity)
    by_key: dict[tuple[str, str], int] = {}
    for entity, (name, kind) in enumerate(zip(names, types)):
        if kind in (PERSON, GENRE):
            by_key.setdefault((kind, name_key(name)), entity)
    existing = set(zip(kg.edge_index[0].tolist(), kg.edge_type.tolist(), kg.edge_index[1].tolist()))
    new_heads, new_rels, new_tails = [], [], []
    notes = Counter()

    def add_node(name: str, kind: str) -> int:
        names.append(name)
        uris.append(None)
        types.append(kind)
        entity = len(names) - 1
        if kg.self_loop_relation is not None:
            new_heads.append(entity), new_rels.append(kg.self_loop_relation), new_tails.append(entity)
        notes[f"added_{kind}_nodes"] += 1
        return entity

    def entity_for(value: str, kind: str) -> int:
        key = name_key(value)
        lookup = [(kind, GENRE_ALIASES.get(key, key)), (kind, key)] if kind == GENRE else [(kind, key)]
        for candidate in lookup:
            if candidate in by_key:
                notes[f"matched_{kind}_names"] += 1
                return by_key[candidate]
        entity = add_node(value if kind == PERSON else f"{value} (genre)", kind)
        by_key[(kind, key)] = entity
        return entity

    for movie in catalogue.movies:
        entity = movie_to_entity.get(movie.movie_id)
        is_new = entity is None
        if is_new:
            entity = add_node(movie.display_name, MOVIE)
            movie_to_entity[movie.movie_id] = entity
        if not metadata_edges or not (is_new or enrich_linked_movies):
            continue
        for field_name, relation in METADATA_RELATIONS.items():
            kind = GENRE if field_name == "genres" else PERSON
            rel = kg.relation_id(relation)
            for value in getattr(movie, field_name):
                tail = entity_for(value, kind)
                if (entity, rel, tail) not in existing:
                    existing.add((entity, rel, tail))
                    new_heads.append(entity), new_rels.append(rel), new_tails.append(tail)
                    notes["added_triples_new_movies" if is_new else "added_triples_linked_movies"] += 1
        if is_new and not movie.has_metadata:
            notes["new_movies_without_metadata"] += 1

    edge_index = torch.cat([kg.edge_index, torch.tensor([new_heads, new_tails], dtype=torch.long)], dim=1)
    edge_type = torch.cat([kg.edge_type, torch.tensor(new_rels, dtype=torch.long)])
    return replace(
        kg,
        entity_names=names,
        entity_uris=uris,
        entity_types=types,
        edge_index=edge_index,
        edge_type=edge_type,
        movie_to_entity=movie_to_entity,
        notes={**kg.notes, **notes},
    )


def load_extended_kg(data_dir: str | Path, catalogue: CatalogueLike, enrich_linked_movies: bool = True,
                     metadata_edges: bool = True) -> KnowledgeGraph:
    """The subgraph in ``data_dir/kg`` extended with ``catalogue``'s metadata (:func:`extend_with_metadata`)."""
    return extend_with_metadata(load_kg(data_dir), catalogue, enrich_linked_movies, metadata_edges)


def save_kg(kg: KnowledgeGraph, folder: str | Path) -> None:
    """Write the graph as ``entities.json``, ``relations.json`` and ``triples.safetensors``."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    entities = {"names": kg.entity_names, "uris": kg.entity_uris, "types": kg.entity_types,
                "movie_to_entity": {str(k): v for k, v in kg.movie_to_entity.items()}, "notes": kg.notes}
    (folder / "entities.json").write_text(json.dumps(entities), encoding="utf-8")
    (folder / "relations.json").write_text(json.dumps({"names": kg.relation_names, "self_loop": kg.self_loop_relation}), encoding="utf-8")
    save_file({"edge_index": kg.edge_index.contiguous(), "edge_type": kg.edge_type.contiguous()}, str(folder / "triples.safetensors"))


def read_kg(folder: str | Path) -> KnowledgeGraph:
    """The graph :func:`save_kg` wrote; names the file that is missing."""
    from safetensors.torch import load_file

    folder = Path(folder)
    for name in ("entities.json", "relations.json", "triples.safetensors"):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"knowledge graph folder {folder} lacks {name}")
    entities = json.loads((folder / "entities.json").read_text(encoding="utf-8"))
    relations = json.loads((folder / "relations.json").read_text(encoding="utf-8"))
    tensors = load_file(str(folder / "triples.safetensors"))
    return KnowledgeGraph(
        entity_names=entities["names"],
        entity_uris=entities["uris"],
        entity_types=entities["types"],
        relation_names=relations["names"],
        edge_index=tensors["edge_index"],
        edge_type=tensors["edge_type"],
        movie_to_entity={int(k): v for k, v in entities["movie_to_entity"].items()},
        self_loop_relation=relations["self_loop"],
        notes=entities.get("notes", {}),
    )
