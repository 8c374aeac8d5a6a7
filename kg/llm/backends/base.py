"""The backend interface: chat messages in, text out, with token counts."""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kg.errors import BackendError

Message = dict[str, str]


@dataclass
class Completion:
    """One model reply.

    Attributes:
        text: the generated text (empty when the model returned nothing).
        prompt_tokens: tokens in the prompt as counted by the backend.
        completion_tokens: generated tokens.
        finish_reason: ``"stop"``, ``"length"`` or what the server said.
    """

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None


class LLMBackend(abc.ABC):
    """A chat model.  Subclasses implement :meth:`complete`; batching is optional.

    Attributes:
        name: backend kind (``openai``, ``transformers``, ``embedded``).
        model: model identifier (name on the server, or the model file).
        max_batch: how many conversations :meth:`complete_batch` handles at once
            efficiently (the pipeline groups items by it).
    """

    name: str = "base"
    model: str = ""
    max_batch: int = 1

    @abc.abstractmethod
    def complete(
        self,
        messages: list[Message],
        *,
        max_tokens: int,
        json_mode: bool = True,
        keys: Sequence[str] | None = None,
        spans_from: str | None = None,
        choices: Mapping[str, Sequence[str]] | None = None,
    ) -> Completion:
        """Generate one reply; raise :class:`~kg.errors.BackendError` on failure.

        ``keys``: when given, the reply should be a JSON object with these keys, each a
        list of strings.  Backends that can enforce the shape do (transformers:
        skeleton-guided decoding); others treat it as a hint.  ``spans_from``: the
        source text when values should be verbatim spans of it (extractive decoding,
        enforced by the transformers backend; a hint elsewhere).  ``choices``: per key,
        the only values allowed (closed vocabularies such as genres; enforced by the
        transformers backend, sent as a JSON-schema ``enum`` by the openai backend).
        """

    def complete_batch(
        self,
        batch: list[list[Message]],
        *,
        max_tokens: int,
        json_mode: bool = True,
        keys: Sequence[str] | None = None,
        spans_from: Sequence[str | None] | None = None,
        choices: Mapping[str, Sequence[str]] | None = None,
    ) -> list[Completion | BackendError]:
        """Generate replies for several conversations.

        A failure of one conversation comes back in its slot as an exception object so
        finished ones are kept; :class:`~kg.errors.BackendUnavailable` is returned the
        same way and the caller stops after saving the rest.
        """
        results: list[Completion | BackendError] = []
        sources = list(spans_from) if spans_from is not None else [None] * len(batch)
        for messages, source in zip(batch, sources):
            try:
                results.append(
                    self.complete(
                        messages,
                        max_tokens=max_tokens,
                        json_mode=json_mode,
                        keys=keys,
                        spans_from=source,
                        choices=choices,
                    )
                )
            except BackendError as exc:
                results.append(exc)
        return results

    def identity(self) -> dict[str, Any]:
        """Everything that determines the output besides the messages (cache key part)."""
        return {"backend": self.name, "model": self.model}

    def close(self) -> None:  # noqa: B027 - a no-op default, not abstract  # pragma: no cover
        """Release resources (threads, sessions, models)."""
