"""The supported surface is exactly what ``prismatic_usage.__all__`` lists."""

from __future__ import annotations

import types

import prismatic_usage


def test_all_lists_exactly_the_public_names() -> None:
    # dir(), not vars(): the names load on first use (PEP 562), and dir() lists them all.
    public = {
        name
        for name in dir(prismatic_usage)
        if not name.startswith("_")
        and not isinstance(getattr(prismatic_usage, name), types.ModuleType)
    }
    assert set(prismatic_usage.__all__) - {"__version__"} == public


def test_every_error_derives_from_the_base_class() -> None:
    errors = [
        getattr(prismatic_usage, name) for name in prismatic_usage.__all__ if name.endswith("Error")
    ]
    assert len(errors) == 11
    for error in errors:
        assert issubclass(error, prismatic_usage.PrismaticUsageError)
    assert issubclass(prismatic_usage.ConfigurationError, ValueError)
