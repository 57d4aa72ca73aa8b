"""``python -m crs.data.kg_stats [--data-dir DIR]``: knowledge-graph counts before and after the metadata extension.

The graph code lives in kg/, which imports nothing from crs; this command joins it to the ReDial
catalogue and the config, so it lives on the crs side.
"""

from __future__ import annotations

import argparse

from crs.config import add_config_arguments, config_from_args
from crs.data.catalogue import Catalogue
from kg.graph import extend_with_metadata, load_kg


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m crs.data.kg_stats", description=__doc__.splitlines()[0])
    add_config_arguments(parser)
    args = parser.parse_intermixed_args(argv)
    data = config_from_args(args).data
    data_dir = data.resolve_data_dir()
    catalogue = Catalogue.load(data_dir)
    base = load_kg(data_dir)
    rows = {"DBpedia subgraph": base.counts()}
    for enrich in (False, True):
        label = "extended, all movies enriched" if enrich else "extended, missing movies only"
        extended = extend_with_metadata(base, catalogue, enrich_linked_movies=enrich)
        rows[label] = extended.counts()
    keys = list(rows["DBpedia subgraph"])
    print("| | " + " | ".join(keys) + " |\n" + "|---" * (len(keys) + 1) + "|")
    for label, counts in rows.items():
        print(f"| {label} | " + " | ".join(f"{counts[k]:,}" for k in keys) + " |")
    print(f"\ncatalogue movies: {len(catalogue):,}; with a DBpedia URI: {base.notes['movies_with_uri']:,}; "
          f"with an entity in the subgraph: {len(base.movie_to_entity):,}")
    print("extension (all movies enriched): " + ", ".join(f"{k} {v:,}" for k, v in sorted(extended.notes.items())))


if __name__ == "__main__":
    main()
