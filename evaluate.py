#!/usr/bin/env python
"""Evaluate and compare: ``python evaluate.py RUN``, ``compare RUN_A RUN_B``, ``experiment``,
``search``, ``report``, ``pipeline``.

Thin wrapper over :mod:`graphrec.cli.evaluate` (installed as ``graphrec-evaluate``; the same
commands are ``graphrec evaluate|compare|experiment|search|report|pipeline``).
"""

import sys

from graphrec.cli.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
