"""Ctrl-C and SIGTERM while the command line is still starting up: one line, no traceback.

``python -m prismatic_usage`` and the ``prismatic-usage`` script import this
package (pandas, pyarrow, gql: a second or more) before
:func:`prismatic_usage.cli.main` can install its handlers. The package imports
this module first; when, and only when, the process was launched as the command
line, it installs a handler for SIGINT and SIGTERM that writes the command
line's usual one line (``prismatic-usage: interrupted; no report written``, or
``terminated``) and ends the process at once with 130 or 143: nothing has been
written yet, so there is nothing to clean up. ``main()`` replaces the handler as
its first step (:func:`hand_over`). Importing the package as a library changes
no handler. A signal ignored by the parent (a background job's SIGINT) stays
ignored.

This is the one place outside :mod:`prismatic_usage.cli` that looks at argv or
ends the process, because it must act before ``cli`` can even be imported.
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

__all__ = ["LAUNCHED_AS_CLI", "hand_over", "launched_as_cli"]

_MODULE, _SCRIPT = "prismatic_usage", "prismatic-usage"
_NO_VALUE_FLAGS = "bBdEiIOPqsSuv"
_ENDINGS: dict[int, tuple[bytes, int]] = {
    signal.SIGINT: (b"prismatic-usage: interrupted; no report written\n", 130),
    signal.SIGTERM: (b"prismatic-usage: terminated; no report written\n", 143),
}


def launched_as_cli() -> bool:
    """Whether this process is ``python -m prismatic_usage`` or the ``prismatic-usage`` script.

    While ``python -m`` imports the package, ``sys.argv[0]`` is ``"-m"`` and
    ``sys.orig_argv`` names the module; the script has its own name in argv[0].
    """
    if sys.argv[:1] == ["-m"]:
        return _module_run(sys.orig_argv) == _MODULE
    return bool(sys.argv) and os.path.basename(sys.argv[0]) == _SCRIPT


def _module_run(argv: list[str]) -> str | None:
    """The module of ``python [options] -m MODULE`` (also ``-mMODULE``, ``-Im MODULE``)."""
    for i, word in enumerate(argv[1:], start=1):
        if word.startswith("--") or not word.startswith("-"):
            continue
        at = word.find("m", 1)
        if at > 0 and all(flag in _NO_VALUE_FLAGS for flag in word[1:at]):
            rest = word[at + 1 :]
            return rest or (argv[i + 1] if i + 1 < len(argv) else None)
    return None


def _end(signum: int, _frame: FrameType | None) -> None:
    """Say the one line and end the process (nothing is written yet, nothing to undo)."""
    line, code = _ENDINGS[signum]
    os.write(2, line)
    os._exit(code)


def hand_over() -> None:
    """Replace the start-up handler (if installed) by Python's usual SIGINT/SIGTERM handling."""
    if signal.getsignal(signal.SIGINT) is _end:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if signal.getsignal(signal.SIGTERM) is _end:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


#: Whether this process was launched as the command line, decided when the package is
#: first imported (under ``python -m``, runpy later sets ``sys.argv[0]`` to the path
#: of ``__main__.py``, so :func:`launched_as_cli` cannot tell any more by then).
LAUNCHED_AS_CLI = launched_as_cli()


def _guard() -> None:
    if not LAUNCHED_AS_CLI:
        return
    for signum in _ENDINGS:
        if signal.getsignal(signum) != signal.SIG_IGN:
            signal.signal(signum, _end)


_guard()
