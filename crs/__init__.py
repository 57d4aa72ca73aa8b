"""crs — a conversational movie recommender built on ReDial and a DBpedia knowledge graph."""

__version__ = "0.1.0"
