#!/usr/bin/env python
"""Evaluate saved runs: ``python evaluate.py RUN`` or ``python evaluate.py compare RUN_A RUN_B``.

Thin wrapper over :mod:`graphrec.cli.evaluate` (installed as ``graphrec-evaluate``).
"""
import sys

from graphrec.cli.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
