"""Names as the plots draw them: one line, not too long, and only glyphs a font has.

matplotlib draws with the fonts of ``rcParams["font.family"]``, falling back from
one to the next (matplotlib >= 3.6); its default, DejaVu Sans, has no CJK glyphs.
A name with a character none of those fonts has would be drawn with blank boxes
and a warning, so it is labelled readably instead: its drawable part plus the end
of its ID (``"Müller 株式会社"`` -> ``"Müller (…a1b2c3)"``), or, when nothing of it
is drawable, the kind and the end of its ID (``"株式会社サンプル"`` -> ``"Customer
…a1b2c3"``). To draw such names as they are, add a font that has them to the list,
e.g. ``matplotlib.rcParams["font.family"] = ["DejaVu Sans", "Noto Sans CJK JP"]``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

import pandas as pd

__all__ = ["MAX_NAME", "clean", "customer_labels", "drawable", "labels"]

#: Longest name shown in full; longer ones end in "…".
MAX_NAME = 40


def clean(name: str) -> str:
    """One line (whitespace, newlines included, collapsed), at most :data:`MAX_NAME` characters."""
    text = " ".join(name.split())
    return text if len(text) <= MAX_NAME else text[: MAX_NAME - 1].rstrip() + "…"


def drawable(text: str) -> bool:
    """Whether the fonts of ``rcParams["font.family"]`` have every character of ``text``."""
    covered = _covered()
    return all(ord(c) in covered for c in text)


def labels(names: Iterable[object], ids: Iterable[object], kind: str) -> list[str]:
    """A drawable, one-line label per name; see the module docstring for the rule."""
    return [
        _label(str(name), str(id_), kind, tagged=False)
        for name, id_ in zip(names, ids, strict=True)
    ]


def customer_labels(
    names: Iterable[object], ids: Iterable[object], frame: pd.DataFrame
) -> list[str]:
    """:func:`labels` for customers, with the end of the ID where ``frame`` has the name twice."""
    known = frame[["Customer ID", "Customer Name"]].drop_duplicates()
    counts = known["Customer Name"].astype(str).map(clean).value_counts()
    shared = set(counts[counts > 1].index)
    return [
        _label(str(name), str(id_), "Customer", tagged=clean(str(name)) in shared)
        for name, id_ in zip(names, ids, strict=True)
    ]


def _label(name: str, id_: str, kind: str, *, tagged: bool) -> str:
    text = clean(name)
    tag = id_.rstrip("=")[-6:]
    if drawable(text):
        return f"{text} (…{tag})" if tagged else text
    covered = _covered()
    kept = clean("".join(c if ord(c) in covered else " " for c in name))
    if any(c.isalnum() for c in kept):
        return f"{kept} (…{tag})"
    return f"{kind} …{tag}"


def _covered() -> frozenset[int]:
    """Code points the fonts of ``rcParams["font.family"]`` (as matplotlib resolves them) have."""
    from matplotlib import rcParams
    from matplotlib.font_manager import FontProperties, findfont

    paths: list[str] = []
    for family in rcParams["font.family"]:
        try:
            paths.append(findfont(FontProperties(family=[family]), fallback_to_default=False))
        except ValueError:  # not installed: matplotlib skips it too
            continue
    return _charmap(tuple(paths))


@functools.cache
def _charmap(paths: tuple[str, ...]) -> frozenset[int]:
    from matplotlib.font_manager import get_font

    codes: set[int] = {ord(" ")}
    for path in paths:
        codes.update(get_font(path).get_charmap())
    return frozenset(codes)
