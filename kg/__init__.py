"""The DBpedia knowledge graph of ReDial movies: loading, metadata extension, entity linking."""
