"""Shared test helpers at the top of ``tests/`` (``crash_helpers``) are importable from every test folder."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
