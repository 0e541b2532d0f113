"""The API documents itself: every public parameter is described, ``help()`` starts usefully."""

from __future__ import annotations

import inspect
import pydoc
import re
from collections.abc import Callable, Iterator
from pathlib import Path
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


# -- help(prismatic_usage) ----------------------------------------------------------------------

#: pydoc's text for the package is ~2,730 lines: the full numpydoc of ~45 public names (most
#: of it, every parameter described) plus ~650 lines pydoc adds for the 11 exception classes
#: (methods inherited from ``Exception``), which no docstring controls. 3,000 leaves room for
#: docs to grow; documenting a private module's members would overshoot it (and fail below).
MAX_HELP_LINES = 3000


def _help_text() -> str:
    return pydoc.render_doc(prismatic_usage, renderer=pydoc.plaintext)


def _section(text: str, name: str) -> list[str]:
    """The lines of one top-level pydoc section (``CLASSES``, ``FUNCTIONS``, ...)."""
    lines = text.splitlines()
    start = lines.index(name) + 1
    end = next((i for i in range(start, len(lines)) if lines[i][:1].isupper()), len(lines))
    return lines[start:end]


def _quick_start() -> str:
    doc = inspect.cleandoc(prismatic_usage.__doc__ or "")
    block = doc.split("::\n\n", 1)[1].split("\n\n", 2)
    code = "\n\n".join(block[:2])
    assert all(line.startswith("    ") or not line for line in code.splitlines())
    return inspect.cleandoc(code)


def test_help_starts_with_a_quick_start_that_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    description = _section(_help_text(), "DESCRIPTION")
    assert description[0].strip().startswith("Quick start")
    assert "from prismatic_usage import fetch_report, write_reports" in "\n".join(description[:5])
    monkeypatch.chdir(tmp_path)
    exec(compile(_quick_start(), "prismatic_usage/__init__.py", "exec"), {})
    printed = capsys.readouterr().out
    assert "Customer Name" in printed and "Deployed Instances" in printed
    assert f"wrote {Path('usage-out') / 'customer-instance-data.csv'}" in printed
    assert (tmp_path / "usage-out" / "instance-compute-data.csv").stat().st_size > 0


def test_help_documents_exactly_the_public_api() -> None:
    text = _help_text()
    classes = {
        m.group(1)
        for line in _section(text, "CLASSES")
        if (m := re.match(r"    class (\w+)", line))
    }
    functions = {
        m.group(1)
        for line in _section(text, "FUNCTIONS")
        if (m := re.match(r"    (?:async )?(\w+)\(", line))
    }
    data = {m.group(1) for line in _section(text, "DATA") if (m := re.match(r"    (\w+) =", line))}
    public = set(prismatic_usage.__all__)
    assert classes | functions | (data - {"__all__", "__version__"}) == public - {"__version__"}
    # Internal modules appear only by name under PACKAGE CONTENTS (pydoc lists every
    # submodule; the description says which are public), never with their members.
    contents = [line.strip() for line in _section(text, "PACKAGE CONTENTS")]
    assert "_startup" in contents and all(
        re.fullmatch(r"\w+( \(package\))?", c) for c in contents if c
    )
    assert "internal" in "\n".join(_section(text, "DESCRIPTION"))
    assert len(text.splitlines()) < MAX_HELP_LINES


def test_no_public_docstring_sends_the_reader_elsewhere_for_its_parameters() -> None:
    import inspect

    import prismatic_usage

    for name in prismatic_usage.__all__:
        doc = inspect.getdoc(getattr(prismatic_usage, name)) or ""
        assert "See the module docstring" not in doc, name
        assert "see fetch_usage for the parameters" not in doc, name
