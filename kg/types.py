"""What kg reads from a movie catalogue, as structural types: kg takes any catalogue, imports none.

``crs.data.Catalogue`` and its ``Movie`` fit them; so does any object with these attributes (a test's
hand-made list of movies, a checkpoint's saved catalogue).
"""

from __future__ import annotations

from typing import Protocol, Sequence


class MovieLike(Protocol):
    """One catalogue movie, as the metadata extension (:mod:`kg.graph`) and the linker (:mod:`kg.linker`) read it."""

    @property
    def movie_id(self) -> int: ...  # ReDial movie id

    @property
    def title(self) -> str: ...  # without the year

    @property
    def year(self) -> int | None: ...

    @property
    def display_name(self) -> str: ...  # "Title (Year)": the name of a movie node added by the extension

    @property
    def mentions(self) -> int: ...  # ReDial mentions: the linker's tie-break between movies of one title

    @property
    def plot(self) -> str: ...  # synopsis ("" if none): the linker counts ordinary words in them

    @property
    def genres(self) -> Sequence[str]: ...

    @property
    def directors(self) -> Sequence[str]: ...

    @property
    def writers(self) -> Sequence[str]: ...

    @property
    def stars(self) -> Sequence[str]: ...

    @property
    def has_metadata(self) -> bool: ...  # any genre, director, writer or star


class CatalogueLike(Protocol):
    """An ordered collection of movies."""

    @property
    def movies(self) -> Sequence[MovieLike]: ...

    def __len__(self) -> int: ...
