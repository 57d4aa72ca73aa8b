"""ReDial data layer: raw records → dialogues → turn samples, plus the movie catalogue."""

from crs.data.catalogue import Catalogue, Movie, split_title
from crs.data.redial import (
    RECOMMENDER,
    SEEKER,
    Dialogue,
    LoadReport,
    MovieFeedback,
    Turn,
    load_dialogues,
    movie_ids_in,
    normalise_text,
    render_mentions,
)
from crs.data.samples import Sample, build_samples, dialogue_samples
from crs.data.splits import ReDialSplits, load_split, load_splits

__all__ = [
    "Catalogue", "Dialogue", "LoadReport", "Movie", "MovieFeedback", "RECOMMENDER", "ReDialSplits", "SEEKER",
    "Sample", "Turn", "build_samples", "dialogue_samples", "load_dialogues", "load_split", "load_splits",
    "movie_ids_in", "normalise_text", "render_mentions", "split_title",
]
