"""Genres a movie's metadata may have cut, predicted from its plot; genres its plot states.

``movie_info.json`` lists at most three genres per movie (IMDb's), and in nine lists of ten in
alphabetical order: a movie with four or more genres keeps the first three of the alphabet and
loses the rest. "The Lord of the Rings: The Fellowship of the Ring" is listed as action, adventure,
drama: not fantasy. So a user who turns fantasy down could be offered it. For a movie with three
listed genres in alphabetical order, the genres after the third are unknown (those before it that
are not listed are truly absent); for three in another order, every genre not listed is unknown.

:func:`fit` learns, per genre, a logistic regression (scikit-learn) from the movie's sentence
embedding (title and plot, the bundled MiniLM) and its listed genres, on the labels the lists do
tell (listed: yes; absent from a list of one or two, or alphabetically before the third: no), and
flags an unknown genre when its probability passes a threshold. The threshold is chosen on a held-out
third of the three-genre movies whose third genre is hidden (a simulated cut), as the one with the
best F2 (recall counts twice: a flagged movie is only kept out when the user turns its genre down,
so a false flag costs one candidate, a missed one shows the user what they refused).

A genre no metadata carries at all is read from the title and plot by name (:data:`STATED_GENRES`:
"superhero", from heroes, teams and the word; "martial arts", from kung fu, karate, samurai) into ``Movie.plot_genres``, which
:class:`crs.rec.request.MovieFacts` takes as a genre like a listed one. A series whose title its
plot names as a name (:func:`stated_series`: The Dark Knight's plot names Batman, whose title stem
two catalogue titles share) goes into ``Movie.plot_series``, and so do the series a character ties
it to (:func:`character_series`: Return of the Jedi's plot and Star Wars' both name Darth Vader, and
the two share their stars); a series turned down keeps those movies out too. Themes (:data:`kg.lexicon.THEMES`: zombies, Christmas, time travel, ...) the title
or plot states go into ``Movie.plot_themes`` (:func:`stated_themes`), facts for requests.

The result is a fact list per movie (genre words, no plot text): ``Movie.maybe_genres`` in the
checkpoint's ``kg/catalogue.json``. :class:`crs.rec.request.MovieFacts` keeps such movies out when
their flagged genre is turned down; nothing else reads them (a wanted genre, an answer about the
movie and the replies' genre checks keep to the listed genres). Written by the rec stage, and for an
existing checkpoint (``--write`` also writes ``kg/plot_words.json``, the word lists the entity
linker grades titles with, :class:`kg.evidence.PlotWords`, which a checkpoint without plots needs)::

    python -m crs.rec.hidden_genres --checkpoint checkpoints/default [--data-dir DIR] [--write]
"""

from __future__ import annotations

import argparse
import json
import logging
import re
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Iterable

import numpy as np

from crs.data.catalogue import Catalogue, Movie
from kg.graph import name_key
from kg.lexicon import COMMON_WORDS, PLACE_WORDS, SETTINGS, THEMES
from kg.text import normalise_key

logger = logging.getLogger(__name__)

LISTED_MAX = 3  # movie_info.json's genre lists are cut at three
MIN_MOVIES = 20  # a genre listed for fewer movies gets no model
THRESHOLDS = (0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5)
HELD_OUT = 3  # one in this many three-genre movies is held out to choose the threshold


def unknown_genres(listed: tuple[str, ...], vocabulary: list[str]) -> list[str]:
    """The genres of ``vocabulary`` that a list of ``listed`` genres may have cut: none for a
    shorter list than :data:`LISTED_MAX`; for a full list in alphabetical order, those after its last;
    else every genre it does not hold."""
    if len(listed) < LISTED_MAX:
        return []
    if list(listed) == sorted(listed):
        return [g for g in vocabulary if g > listed[-1]]
    return [g for g in vocabulary if g not in listed]


def _label(listed: tuple[str, ...], genre: str, vocabulary: list[str]) -> int | None:
    if genre in listed:
        return 1
    return None if genre in unknown_genres(listed, vocabulary) else 0


def _features(embeddings: np.ndarray, lists: list[tuple[str, ...]], vocabulary: list[str]) -> np.ndarray:
    index = {g: i for i, g in enumerate(vocabulary)}
    onehot = np.zeros((len(lists), len(vocabulary)), dtype=np.float32)
    for row, listed in enumerate(lists):
        for genre in listed:
            if genre in index:
                onehot[row, index[genre]] = 1.0
    mean, std = embeddings.mean(0), embeddings.std(0)
    return np.hstack([(embeddings - mean) / np.where(std > 0, std, 1.0), onehot])


def _fit_models(features: np.ndarray, lists: list[tuple[str, ...]], vocabulary: list[str], rows: list[int], c: float, seed: int) -> dict:
    from sklearn.linear_model import LogisticRegression

    models = {}
    for genre in vocabulary:
        known = [(r, _label(lists[r], genre, vocabulary)) for r in rows]
        known = [(r, y) for r, y in known if y is not None]
        labels = np.array([y for _, y in known])
        if len(set(labels.tolist())) < 2:
            continue
        models[genre] = LogisticRegression(C=c, max_iter=2000, random_state=seed).fit(features[[r for r, _ in known]], labels)
    return models


def _probabilities(models: dict, features: np.ndarray) -> dict[str, np.ndarray]:
    """Each genre's probability for every row of ``features``, one pass per genre."""
    return {genre: model.predict_proba(features)[:, 1] for genre, model in models.items()}


def fit(movies: list[Movie], embeddings: np.ndarray, c: float = 0.05, seed: int = 0) -> tuple[dict[int, tuple[str, ...]], dict]:
    """The genres each movie's list may have cut and that its plot makes likely (movie id → genre
    words, movies with none left out), and how the threshold was chosen (``metrics``). ``embeddings``:
    one row per movie of ``movies`` (title and plot encoded)."""
    lists = [tuple(m.genres) for m in movies]
    counts = Counter(g for listed in lists for g in listed)
    vocabulary = sorted(g for g, n in counts.items() if n >= MIN_MOVIES)
    metrics: dict = {"movies": len(movies), "genres": len(vocabulary)}
    rng = np.random.default_rng(seed)
    full = [r for r, listed in enumerate(lists) if len(listed) == LISTED_MAX and list(listed) == sorted(listed) and listed[-1] in vocabulary]
    rng.shuffle(full)
    held = set(full[: len(full) // HELD_OUT])
    if not vocabulary or not held:
        return {}, {**metrics, "skipped": "too few movies with full genre lists"}
    # The simulated cut: a held-out movie shows its first two genres; its third is to be found
    # among the genres after the second.
    shown = [listed[:-1] if r in held else listed for r, listed in enumerate(lists)]
    features = _features(embeddings, shown, vocabulary)
    models = _fit_models(features, lists, vocabulary, [r for r in range(len(lists)) if r not in held], c, seed)
    probs = _probabilities(models, features)
    scores, truth = [], []
    for r in sorted(held):
        for g in vocabulary:
            if g > shown[r][-1] and g not in shown[r] and g in models:
                scores.append(float(probs[g][r]))
                truth.append(g == lists[r][-1])
    scores_a, truth_a = np.array(scores), np.array(truth, dtype=bool)
    by_threshold = {}
    for t in THRESHOLDS:
        flagged = scores_a >= t
        tp = int((flagged & truth_a).sum())
        precision = tp / max(int(flagged.sum()), 1)
        recall = tp / max(int(truth_a.sum()), 1)
        f2 = 5 * precision * recall / max(4 * precision + recall, 1e-9)
        by_threshold[str(t)] = {"precision": round(precision, 4), "recall": round(recall, 4), "f2": round(f2, 4)}
    threshold = float(max(THRESHOLDS, key=lambda t: (by_threshold[str(t)]["f2"], -t)))
    metrics.update(held_out_movies=len(held), held_out_pairs=len(scores), threshold=threshold, by_threshold=by_threshold)
    # Refit on every movie with its lists as they are, and flag the unknown genres.
    features = _features(embeddings, lists, vocabulary)
    probs = _probabilities(_fit_models(features, lists, vocabulary, list(range(len(lists))), c, seed), features)
    flagged: dict[int, tuple[str, ...]] = {}
    for r, movie in enumerate(movies):
        found = tuple(g for g in unknown_genres(lists[r], vocabulary) if g in probs and probs[g][r] >= threshold)
        if found:
            flagged[movie.movie_id] = found
    metrics["flagged_movies"] = len(flagged)
    metrics["flagged_by_genre"] = dict(sorted(Counter(g for found in flagged.values() for g in found).items()))
    return flagged, metrics


# Genres a movie's title or plot states that no metadata carries: IMDb's genres have no superhero
# genre and DBpedia gives "Superhero film" to one catalogue movie, yet "a superhero movie" and "no
# superhero movies" are common requests. Heroes and teams by name, and the word itself.
STATED_GENRES = {
    "superhero": re.compile(
        r"\b(?:super[- ]?heroe?s?|super[- ]?powers?|avengers|x-men|justice\s+league|spider-?man|batman|superman|supergirl|"
        r"wonder\s+woman|iron\s+man|captain\s+america|incredible\s+hulk|the\s+hulk|wolverine|deadpool|aquaman|ant-man|"
        r"black\s+panther|guardians\s+of\s+the\s+galaxy|fantastic\s+four|daredevil|green\s+lantern|hellboy|doctor\s+strange|"
        r"venom|catwoman|elektra|ghost\s+rider|the\s+punisher|watchmen|suicide\s+squad|teen\s+titans|asgard|marvel\s+comics|dc\s+comics)\b",
        re.IGNORECASE),
    "martial arts": re.compile(r"\b(?:martial[\s-]+arts?|kung[\s-]?fu|karate|samurai|ninjas?|shaolin|wushu|jiu[\s-]?jitsu|taekwondo)\b",
                               re.IGNORECASE),
}


# Words that state a genre only in an action movie that is not a horror movie: "mutants" are the
# X-Men films' heroes ("Logan" names none) and the turtles', but also the monsters of horror films.
ACTION_STATED_GENRES = {"superhero": re.compile(r"\bmutants?\b", re.IGNORECASE)}


def stated_genres(movie: Movie) -> tuple[str, ...]:
    """The :data:`STATED_GENRES` the movie's title or plot names (and :data:`ACTION_STATED_GENRES`
    in a listed action movie not listed as horror)."""
    text = f"{movie.title}. {movie.plot}"
    found = [genre for genre, pattern in STATED_GENRES.items() if pattern.search(text)]
    if "action" in movie.genres and "horror" not in movie.genres:
        found += [genre for genre, pattern in ACTION_STATED_GENRES.items() if genre not in found and pattern.search(text)]
    return tuple(found)


STATED_THEMES = {theme: re.compile(rf"\b(?:{stated})\b", re.IGNORECASE) for theme, (_, _, stated) in {**THEMES, **SETTINGS}.items()}


def stated_themes(movie: Movie) -> tuple[str, ...]:
    """The :data:`kg.lexicon.THEMES` and :data:`kg.lexicon.SETTINGS` the movie's title or plot states
    (the words of :data:`STATED_THEMES`)."""
    text = f"{movie.title}. {movie.plot}"
    return tuple(theme for theme, pattern in STATED_THEMES.items() if pattern.search(text))


# Title stems of series (here, not in crs.rec.request, which imports this module).
_SEQUEL_RE = re.compile(
    r"(?:\s+(?:part|chapter|episode|vol|volume)\.?)?\s+(?:\d+|[ivx]+)$|:.*$|\s+[-–—]\s+.*$|\s+returns$|\s+reloaded$")


def title_key(title: str) -> str:
    """A title as franchise prefixes are matched: case, accents and punctuation folded, a leading
    article and a year in brackets dropped ("The X-Men (2000)" → "x men")."""
    key = normalise_key(re.sub(r"\s*\(\d{4}\)\s*$", "", title))
    return re.sub(r"^(?:the|a|an)\s+", "", key)


def name_words(text: str) -> str:
    """A name as series stems are compared: folded (:func:`kg.graph.name_key`), "&" read as "and",
    a leading article dropped."""
    return re.sub(r"^(?:the|a|an)\s+", "", " ".join(name_key(text).replace("&", "and").split()))


def franchise_key(title: str) -> str:
    """The stem that sequels share: ``"Toy Story 3"`` → ``"toy story"``, ``"Star Wars: The Force Awakens"``
    → ``"star wars"``, ``"The Godfather Part II"`` → ``"godfather"``."""
    key = name_words(title)
    for _ in range(2):
        key = _SEQUEL_RE.sub("", key).strip()
    return key


# A run of capitalised words in a plot ("the Joker", "Bruce Wayne", "Star Wars"), with the small
# words names hold ("Lord of the Rings"); a series is found when a run holds its name.
_NAME_RUN_RE = re.compile(r"[A-Z][\w'’-]*(?:\s+(?:[A-Z][\w'’-]*|of|the|and|&))*")
_SENTENCE_START_RE = re.compile(r"(?:^|[.!?:;\"“]\s*)$")
MIN_SERIES_KEY_CHARS = 4


def series_vocabulary(movies: list[Movie]) -> set[str]:
    """The series a plot may name: title stems (:func:`franchise_key`) shared by two
    or more catalogue titles, one of them not the stem alone ("Batman Returns", "Toy Story 2": a
    series, not two movies called "Paris"), of at least :data:`MIN_SERIES_KEY_CHARS` characters and
    not a common word ("Super")."""
    titles: dict[str, set[str]] = {}
    for movie in movies:
        key = franchise_key(movie.title)
        if len(key) >= MIN_SERIES_KEY_CHARS and key not in COMMON_WORDS:
            titles.setdefault(key, set()).add(title_key(movie.title))
    return {key for key, names in titles.items() if len(names) >= 2 and any(name != key for name in names)}


def stated_series(movie: Movie, vocabulary: set[str]) -> tuple[str, ...]:
    """The series of ``vocabulary`` the movie's plot names as a name (capitalised, not the first
    word of a sentence, where any word is capitalised), other than the movie's own series."""
    own = franchise_key(movie.title)
    found: list[str] = []
    for run in _NAME_RUN_RE.finditer(movie.plot):
        words = run.group(0).split()
        first = 1 if _SENTENCE_START_RE.search(movie.plot[: run.start()]) else 0
        for start in range(first, len(words)):
            for end in range(len(words), start, -1):
                key = name_words(" ".join(words[start:end]))
                if key in vocabulary and key != own and key not in found:
                    found.append(key)
    return tuple(found)


# A character's name ties two movies into one series when both plots name it ("Darth Vader" in Star
# Wars and Return of the Jedi, "Freddy Krueger", "Robert Langdon") and the two share a writer, two
# stars, or a director and a star; a name in more plots than this is no character's.
MAX_CHARACTER_PLOTS = 6
_SMALL_WORDS = frozenset({"of", "the", "and", "&"})


def character_names(movie: Movie) -> set[str]:
    """The names of two or more words the movie's plot holds (:func:`name_words` keys; the first
    word of a sentence dropped), other than places (:data:`kg.lexicon.PLACE_WORDS`)."""
    found = set()
    for run in _NAME_RUN_RE.finditer(movie.plot):
        words = run.group(0).split()
        if _SENTENCE_START_RE.search(movie.plot[: run.start()]):
            words = words[1:]
        while words and words[-1].lower() in _SMALL_WORDS:
            words.pop()
        while words and words[0].lower() in _SMALL_WORDS:
            words.pop(0)
        key = name_words(" ".join(words))
        if len(key.split()) >= 2 and not PLACE_WORDS & set(key.split()):
            found.add(key)
    return found


def _share_crew(a: Movie, b: Movie) -> bool:
    stars = set(a.stars) & set(b.stars)
    return bool(set(a.writers) & set(b.writers)) or len(stars) >= 2 or bool(stars and set(a.directors) & set(b.directors))


def joined(ids: Iterable[int], pairs: Iterable[tuple[int, int]]) -> dict[int, int]:
    """Each of ``ids`` → the least id of its group, groups joined through ``pairs`` (union-find)."""
    parent = {i: i for i in ids}

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {i: find(i) for i in parent}


def character_series(movies: list[Movie]) -> dict[int, tuple[str, ...]]:
    """Movie id → the title stems (:func:`franchise_key`) of the other series its characters tie it
    to: movies joined when their plots name the same character and they share crew
    (:data:`MAX_CHARACTER_PLOTS`), and joined on through each other (Return of the Jedi to The Empire
    Strikes Back to Star Wars). A movie whose ``movie_info.json`` entry another movie shares (the same
    IMDb id) is left out unless it is the dated one of most mentions: the plot is that movie's. A person's name is no character."""
    owner: dict[str, Movie] = {}
    for movie in movies:  # the dated movie of most mentions ("Star Wars (1977)", not "Star Wars Kid")
        if movie.imdb_id and (movie.imdb_id not in owner or (movie.year is not None, movie.mentions)
                              > (owner[movie.imdb_id].year is not None, owner[movie.imdb_id].mentions)):
            owner[movie.imdb_id] = movie
    own = [m for m in movies if m.plot and (not m.imdb_id or owner[m.imdb_id] is m)]
    people = {name_words(p) for m in movies for p in (*m.stars, *m.writers, *m.directors)}
    names = {m.movie_id: character_names(m) - people for m in own}
    plots = Counter(n for found in names.values() for n in found)
    by_name: dict[str, list[Movie]] = {}
    for movie in own:
        for name in names[movie.movie_id]:
            if plots[name] <= MAX_CHARACTER_PLOTS:
                by_name.setdefault(name, []).append(movie)
    group_of = joined((m.movie_id for m in own),
                      ((a.movie_id, b.movie_id) for group in by_name.values() for i, a in enumerate(group) for b in group[i + 1:]
                       if franchise_key(a.title) != franchise_key(b.title) and _share_crew(a, b)))
    keys: dict[int, set[str]] = {}
    for movie in own:
        keys.setdefault(group_of[movie.movie_id], set()).add(franchise_key(movie.title))
    found = {}
    for movie in own:
        other = keys[group_of[movie.movie_id]] - {franchise_key(movie.title), ""}
        if other:
            found[movie.movie_id] = tuple(sorted(other))
    return found


def movie_texts(movies: list[Movie]) -> list[str]:
    """What is encoded per movie: its title and plot (the plot only read here, never stored)."""
    return [f"{m.display_name}. {' '.join(m.plot.split())}" for m in movies]


def flag_catalogue(catalogue: Catalogue, encoder, progress: bool = False) -> tuple[Catalogue, dict]:
    """``catalogue`` with ``maybe_genres`` set from :func:`fit` (movies with genre lists and plots
    are what it learns from), ``plot_genres`` from :func:`stated_genres` and ``plot_series`` from
    :func:`stated_series`, and the metrics."""
    vocabulary = series_vocabulary(catalogue.movies)
    characters = character_series(catalogue.movies)
    stated = Catalogue([replace(m, plot_genres=stated_genres(m), plot_themes=stated_themes(m),
                                plot_series=tuple(dict.fromkeys((*stated_series(m, vocabulary), *characters.get(m.movie_id, ())))))
                        for m in catalogue.movies])
    counts = {genre: sum(genre in m.plot_genres for m in stated.movies) for genre in STATED_GENRES}
    series = {"series": len(vocabulary), "movies": sum(bool(m.plot_series) for m in stated.movies),
              "names": sum(len(m.plot_series) for m in stated.movies)}
    themes = {theme: sum(theme in m.plot_themes for m in stated.movies) for theme in STATED_THEMES}
    movies = [m for m in stated.movies if m.genres and m.plot.strip()]
    if not movies:
        return stated, {"skipped": "no movie has genres and a plot", "stated_genres": counts, "stated_series": series,
                        "stated_themes": themes}
    embeddings = np.asarray(encoder.encode(movie_texts(movies), progress=progress, desc="encode plots"), dtype=np.float32)
    flagged, metrics = fit(movies, embeddings)
    metrics["stated_genres"] = counts
    metrics["stated_series"] = series
    metrics["stated_themes"] = themes
    return Catalogue([replace(m, maybe_genres=flagged.get(m.movie_id, ())) for m in stated.movies]), metrics


def linking_config(folder: Path):
    """The linking settings of the checkpoint in ``folder`` (the defaults when its config names none)."""
    from crs.config import config_from_dict

    meta = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    return config_from_dict(meta["crs_config"]).linking


def main(argv: list[str] | None = None) -> int:
    from crs.config import DataConfig
    from crs.rec.kg_text import PLOT_WORDS_FILE, write_plot_words
    from crs.text.encoder import TextEncoder
    from kg.evidence import PlotWords

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="a checkpoint folder (its kg/catalogue.json gets the flags)")
    parser.add_argument("--data-dir", default="", help="folder with redial/movie_info.json (default: $CRS_DATA_DIR)")
    parser.add_argument("--write", action="store_true",
                        help="write the flags into the checkpoint's kg/catalogue.json, and kg/plot_words.json (words for linking)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    path = Path(args.checkpoint) / "kg" / "catalogue.json"
    if not path.is_file():
        parser.error(f"{path} is missing")
    try:
        shipped = Catalogue.read(path)
    except (OSError, ValueError, TypeError) as error:
        parser.error(f"{path}: {error}")
    plots = {m.movie_id: m.plot for m in Catalogue.load(DataConfig(data_dir=args.data_dir).resolve_data_dir()).movies}
    with_plots = Catalogue([replace(m, plot=plots.get(m.movie_id, "")) for m in shipped.movies])
    flagged, metrics = flag_catalogue(with_plots, TextEncoder("minilm", 128), progress=True)
    words = PlotWords.of(with_plots, linking_config(Path(args.checkpoint)))
    print(json.dumps(metrics, indent=2))
    if args.write:
        flagged.save(path)
        print(f"written to {path}")
        if words is not None:
            write_plot_words(Path(args.checkpoint), words)
            print(f"written to {Path(args.checkpoint) / PLOT_WORDS_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
