"""The supported surface is exactly what ``prismatic_usage.__all__`` lists."""

from __future__ import annotations

import subprocess
import sys
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


def test_public_submodules_are_attributes_of_a_fresh_import() -> None:
    # Names load lazily; submodules must still resolve as they did when all loaded eagerly.
    code = (
        "import prismatic_usage as pu\n"
        "print(pu.billing.billing_summary.__name__, pu.columns.CUSTOMER_INSTANCE is not None,\n"
        "      pu.errors.PrismaticUsageError.__name__, pu.config.FetchOptions.__name__,\n"
        "      callable(pu.audit), hasattr(pu, 'no_such_module'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [
        "billing_summary", "True", "PrismaticUsageError", "FetchOptions", "True", "False"
    ]  # fmt: skip
