"""Start-up: what loads before the first request, checked in real, fresh interpreters.

``import prismatic_usage`` and the command line's own imports must not load
pandas (and what only the frames, the billing summary and the files need):
the first request does not wait for them. Timing is measured in
``benchmarks/startup.py``, never asserted here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent

#: Not needed before the first request of a plain fetch.
AFTER_THE_FETCH = (
    "pandas",
    "matplotlib",
    "pyarrow.parquet",
    "prismatic_usage.audit",
    "prismatic_usage.billing",
    "prismatic_usage.columns",
    "prismatic_usage.export",
    "prismatic_usage.frames",
    "prismatic_usage.plots",
    "prismatic_usage.reconcile",
    "prismatic_usage.usage_store",
)


def loaded_after(code: str, modules: tuple[str, ...]) -> list[str]:
    """Which of ``modules`` a fresh interpreter has loaded after running ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {list(modules)!r} if m in sys.modules]))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True
    )
    loaded: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return loaded


def test_importing_the_package_loads_none_of_its_heavy_dependencies() -> None:
    heavy = ("pandas", "numpy", "pyarrow", "aiohttp", "gql", "graphql", "matplotlib")
    assert loaded_after("import prismatic_usage", heavy) == []


def test_the_command_line_loads_nothing_only_the_frames_and_files_need() -> None:
    assert loaded_after("import prismatic_usage.cli", AFTER_THE_FETCH) == []


def test_help_and_usage_errors_do_not_wait_for_the_fetch_machinery() -> None:
    fetch = ("aiohttp", "gql", "graphql", "pyarrow", "numpy", "prismatic_usage.client")
    assert loaded_after("import prismatic_usage.cli", fetch) == []


def test_a_public_name_loads_its_module_on_first_use() -> None:
    code = (
        "import prismatic_usage as p\n"
        "records = p.UsageRecords\n"
        "import sys\n"
        "assert 'pandas' not in sys.modules, 'UsageRecords needs no pandas'\n"
        "from prismatic_usage import billing_summary\n"
        "import prismatic_usage.billing\n"
        "assert billing_summary is prismatic_usage.billing.billing_summary\n"
        "assert p.UsageRecords is records and 'UsageRecords' in vars(p)\n"
    )
    assert loaded_after(code, ("pandas", "prismatic_usage.billing")) == [
        "pandas",
        "prismatic_usage.billing",
    ]


def test_audit_and_reconcile_stay_functions_whichever_loads_first() -> None:
    # Each is also a submodule's name; importing the submodule must not replace the function.
    code = (
        "import types, prismatic_usage.audit, prismatic_usage.reconcile\n"
        "import prismatic_usage as p\n"
        "assert not isinstance(p.audit, types.ModuleType), p.audit\n"
        "assert not isinstance(p.reconcile, types.ModuleType), p.reconcile\n"
        "assert p.audit.__module__ == 'prismatic_usage.audit'\n"
        "assert p.reconcile.__module__ == 'prismatic_usage.reconcile'\n"
    )
    assert loaded_after(code, ("prismatic_usage.audit",)) == ["prismatic_usage.audit"]


def test_an_unknown_name_is_still_an_attribute_error() -> None:
    code = (
        "import prismatic_usage as p\n"
        "try:\n    p.no_such_name\nexcept AttributeError as exc:\n"
        "    assert 'no_such_name' in str(exc)\nelse:\n    raise SystemExit('no error')\n"
    )
    assert loaded_after(code, ("pandas",)) == []


def test_dir_lists_every_public_name_before_any_is_loaded() -> None:
    code = (
        "import prismatic_usage as p\n"
        "assert set(p.__all__) <= set(dir(p)), set(p.__all__) - set(dir(p))\n"
        "assert 'fetch_report' not in vars(p)\n"
    )
    assert loaded_after(code, ("pandas",)) == []


def test_the_background_import_runs_once_and_loads_pandas() -> None:
    code = (
        "import threading\n"
        "from prismatic_usage import _prewarm\n"
        "_prewarm.start(); _prewarm.start()\n"
        "threads = [t for t in threading.enumerate() if t.name == 'prismatic-usage-import']\n"
        "assert len(threads) == 1, threads\n"
        "assert not threads[0].daemon\n"
        "threads[0].join()\n"
    )
    assert loaded_after(code, ("pandas", "pyarrow.pandas_compat")) == [
        "pandas",
        "pyarrow.pandas_compat",
    ]


def test_the_startup_benchmark_runs() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "startup.py"), "--smoke"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for line in ("import prismatic_usage", "first request", "full pace", "total / floor"):
        assert line in done.stdout


_SHOW_POOL = """
import atexit, sys
def _show():
    if "pyarrow" in sys.modules:
        import pyarrow
        print("POOL", pyarrow.default_memory_pool().backend_name, file=sys.stderr)
atexit.register(_show)
"""


def _pool_of(tmp_path: Path, *command: str) -> str:
    (tmp_path / "sitecustomize.py").write_text(_SHOW_POOL)
    args = ["--demo", "--dry-run", "--start-date", "2024-12-01", "--end-date", "2024-12-02"]
    done = subprocess.run(
        [sys.executable, *command, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    return done.stderr.rsplit("POOL ", 1)[-1].strip()


def test_the_command_line_hands_arrow_memory_back_but_a_host_keeps_its_pool(
    tmp_path: Path,
) -> None:
    # `python -m` rewrites sys.argv[0] before main() runs: the decision is taken at import.
    assert _pool_of(tmp_path, "-m", "prismatic_usage") == "jemalloc"
    host = "import sys, prismatic_usage.cli as c; sys.exit(c.main(sys.argv[1:]))"
    default = subprocess.run(
        [sys.executable, "-c", "import pyarrow; print(pyarrow.default_memory_pool().backend_name)"],
        capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"},
    ).stdout.strip()  # fmt: skip
    assert _pool_of(tmp_path, "-c", host) == default  # mimalloc from pyarrow 13 on Linux
