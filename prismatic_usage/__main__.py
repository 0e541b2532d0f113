"""``python -m prismatic_usage``: see :mod:`prismatic_usage.cli`.

Python imports the package (pandas, pyarrow...) before it runs this file, so
Ctrl-C and SIGTERM during start-up are handled by :mod:`prismatic_usage._startup`,
which the package imports first.
"""

import sys

from .cli import main

sys.exit(main())
