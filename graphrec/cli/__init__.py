"""Command-line entry points (``graphrec-train``, ``graphrec-evaluate``)."""
