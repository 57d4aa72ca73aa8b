"""Published ReDial results that our reports print beside our own figures.

Each row says where the figures come from. They were measured on the complete ReDial train split;
ours train on the 35% subset the data folder carries, which the report states beside the table.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Anchor:
    name: str
    protocol: str  # "standard" or "new_items"
    recall: dict[int, float]  # k → Recall@k
    source: str


ANCHORS: tuple[Anchor, ...] = (
    Anchor("KBRD", "standard", {1: 0.030, 10: 0.163, 50: 0.338}, "Chen et al. 2019, as re-run in UniCRS (Wang et al. 2022)"),
    Anchor("KGSF", "standard", {1: 0.039, 10: 0.183, 50: 0.378}, "Zhou et al. 2020"),
    Anchor("UniCRS", "standard", {1: 0.051, 10: 0.224, 50: 0.428}, "Wang et al. 2022"),
    Anchor("C2-CRS", "standard", {1: 0.053, 10: 0.233, 50: 0.407}, "Zhou et al. 2022"),
    Anchor("MESE", "standard", {1: 0.056, 10: 0.256, 50: 0.455}, "Yang et al. 2022"),
    Anchor("KGSF", "new_items", {1: 0.016, 10: 0.147, 50: 0.327}, "repeated items removed (project's reference figures)"),
    Anchor("UniCRS", "new_items", {1: 0.024, 10: 0.180, 50: 0.335}, "repeated items removed (project's reference figures)"),
)


def anchors_for(protocol: str) -> list[Anchor]:
    return [anchor for anchor in ANCHORS if anchor.protocol == protocol]
