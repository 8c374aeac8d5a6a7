"""LLM plumbing shared by all three packages: the one place to look for "LLM".

* :mod:`kg.llm.backends`: one interface (messages in, text out, token counts) over an
  OpenAI-compatible endpoint, a local transformers model and the embedded SmolLM2 model,
  with constrained (structured) decoding for the local ones;
* :mod:`kg.llm.cache`: the SQLite cache of raw replies, keyed by backend, prompt and messages;
* :mod:`kg.llm.journal`: the append-only per-item journal that makes LLM jobs resumable;
* :mod:`kg.llm.safejson`: bounded JSON decoding of untrusted replies.

``kg`` (knowledge-graph extraction), ``graphrec.augmentation`` (LLM edge augmentation) and
``alignment`` (LLM user profiles) all call LLMs through this package.
"""

from __future__ import annotations

from kg.llm.backends import (
    Completion,
    LLMBackend,
    Message,
    OpenAIConfig,
    TransformersConfig,
    make_backend,
)
from kg.llm.cache import ResponseCache

__all__ = [
    "Completion",
    "LLMBackend",
    "Message",
    "OpenAIConfig",
    "ResponseCache",
    "TransformersConfig",
    "make_backend",
]
