"""``python -m kg``: see :mod:`kg.cli`."""

import sys

from .cli import main

sys.exit(main())
