"""The API documents itself: every public parameter is described, ``help()`` starts usefully."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import prismatic_usage

SECTIONS = ("Parameters", "Attributes", "Other Parameters")


def documented_names(doc: str | None, sections: tuple[str, ...] = SECTIONS) -> set[str]:
    """Names listed in a numpydoc docstring's given sections (``a, b : type`` lists both)."""
    lines = inspect.cleandoc(doc or "").splitlines()
    names: set[str] = set()
    inside = False
    for line, underline in zip(lines, [*lines[1:], ""], strict=True):
        if re.fullmatch(r"-{3,}", underline.strip()) and line.strip():
            inside = line.strip() in sections
            continue
        if inside and line and not line[0].isspace() and not re.fullmatch(r"-{3,}", line):
            head = line.split(" : ", 1)[0]
            names.update(n.strip().lstrip("*") for n in head.split(","))
    return names


def _own(cls: type) -> Iterator[tuple[str, Callable[..., Any]]]:
    """Public methods defined by ``cls`` itself (inherited ones are documented where defined)."""
    for name, value in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(value, staticmethod | classmethod):
            value = value.__func__
        if inspect.isfunction(value):
            yield f"{cls.__name__}.{name}", value


def public_callables() -> Iterator[tuple[str, Callable[..., Any], str | None]]:
    """(qualified name, callable whose signature counts, docstring that must list it)."""
    for name in prismatic_usage.__all__:
        obj = getattr(prismatic_usage, name)
        if inspect.isclass(obj):
            if not issubclass(obj, BaseException) or "__init__" in vars(obj):
                yield name, obj, obj.__doc__
            for qualified, method in _own(obj):
                yield qualified, method, method.__doc__
        elif callable(obj):
            yield name, obj, obj.__doc__


CASES = list(public_callables())


@pytest.mark.parametrize(("name", "obj", "doc"), CASES, ids=[c[0] for c in CASES])
def test_every_public_parameter_is_documented_where_it_is_taken(
    name: str, obj: Callable[..., Any], doc: str | None
) -> None:
    params = [p for p in inspect.signature(obj).parameters if p not in ("self", "cls")]
    missing = [p for p in params if p not in documented_names(doc)]
    assert not missing, f"{name} does not document {missing} in its Parameters section"


def test_the_parameter_reader_reads_numpydoc() -> None:
    doc = """Summary.

    Parameters
    ----------
    start, end : datetime.date
        Both included.
    *, tz
        A zone.
    **kwargs
        More.

    Returns
    -------
    not_a_parameter : int
    """
    assert documented_names(doc) == {"start", "end", "", "tz", "kwargs"}
    assert documented_names("See fetch_usage for the parameters.") == set()
