"""``python -m prismatic_usage``: see :mod:`prismatic_usage.cli`."""

import sys

from .cli import main

sys.exit(main())
