"""The test suite itself: property tests never carry a timing assertion."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import tests


def test_every_property_test_runs_without_a_deadline() -> None:
    # A @settings on a plain helper is silently ignored and the test beside it keeps
    # Hypothesis's 200 ms deadline: a timing assertion that fails on a busy machine.
    found = 0
    for module_info in pkgutil.iter_modules(tests.__path__):
        module = importlib.import_module(f"tests.{module_info.name}")
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if function.__module__ != module.__name__:
                continue
            applied = getattr(function, "_hypothesis_internal_use_settings", None)
            is_property = hasattr(function, "hypothesis")
            if applied is not None and not is_property:
                raise AssertionError(f"{module.__name__}.{name}: @settings without @given")
            if is_property:
                found += 1
                assert applied is not None and applied.deadline is None, f"{name} has a deadline"
    assert found >= 5
