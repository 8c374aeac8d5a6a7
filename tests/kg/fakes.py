"""Test doubles: a deterministic backend with scripted replies (same interface as the real ones)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from kg.errors import BackendError
from kg.llm.backends.base import Completion, LLMBackend, Message

_TEXT_RE = re.compile(r"<text>\n(.*)\n</text>", re.DOTALL)
_THEMES = (
    "love",
    "war",
    "friendship",
    "revenge",
    "family",
    "toys",
    "prison",
    "heist",
    "game",
    "wedding",
)


def item_text(messages: list[Message]) -> str:
    """The data block of the last user message."""
    match = _TEXT_RE.search(messages[-1]["content"])
    return match.group(1) if match else messages[-1]["content"]


def fake_reply(messages: list[Message]) -> str:
    """A deterministic 'model': themes found in the text, capitalised pairs as characters,
    plus one hallucinated place and one relation outside the schema (to be rejected)."""
    if "additional facts" in messages[-1]["content"]:  # gleaning turn
        return "{}"
    text = item_text(messages)
    lower = text.lower()
    facts: dict[str, list[str]] = {}
    themes = [t for t in _THEMES if t in lower]
    if themes:
        facts["keyword"] = themes
    names = re.findall(r"\b([A-Z][a-z]+ [A-Z][a-z]+)\b", text)
    if names:
        facts["features_character"] = sorted(set(names))[:3]
    if "comedy" in lower:
        facts["genre"] = ["Comedy"]
    facts["set_in"] = ["Atlantis"]  # never in the test texts: must be rejected as unsupported
    facts["favourite_colour"] = ["blue"]  # not a schema relation
    return json.dumps(facts)


class FakeBackend(LLMBackend):
    """Scripted backend: ``script`` maps a call number or a text substring to a reply;
    everything else gets :func:`fake_reply`.  Records every call."""

    name = "fake"

    def __init__(
        self, replies: Callable[[list[Message]], str] = fake_reply, max_batch: int = 2
    ) -> None:
        self.model = "fake-1"
        self.max_batch = max_batch
        self.replies = replies
        self.calls: list[list[Message]] = []
        self.fail_on: set[str] = set()

    def complete(
        self,
        messages: list[Message],
        *,
        max_tokens: int,
        json_mode: bool = True,
        keys=None,
        spans_from=None,
        choices=None,
    ) -> Completion:
        self.calls.append(messages)
        text = item_text(messages)
        for marker in self.fail_on:
            if marker in text:
                raise BackendError(f"scripted failure for {marker!r}")
        reply = self.replies(messages)
        return Completion(
            reply,
            prompt_tokens=len(str(messages).split()),
            completion_tokens=len(reply.split()),
            finish_reason="stop",
        )
