"""``python -m kg``: see :mod:`kg.cli`."""

import sys

from kg.cli import main

sys.exit(main())
