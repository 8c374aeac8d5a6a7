#!/usr/bin/env python
"""Train a recommender: ``python train.py --config configs/... [--set key=value ...]``.

Thin wrapper over :mod:`graphrec.cli.train` (installed as ``graphrec-train``; the same
command is ``graphrec train``).
"""

import sys

from graphrec.cli.train import main

if __name__ == "__main__":
    sys.exit(main())
