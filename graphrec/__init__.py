"""graphrec: graph-centric, LLM-augmented recommendation toolkit."""

__version__ = "0.1.0"
