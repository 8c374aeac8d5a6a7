"""Helpers of the augmentation tests (imported at module top; conftest is never imported)."""

from __future__ import annotations

import re

GENRES = ("Comedy", "Horror", "Drama")
_CANDIDATE_RE = re.compile(r"^(\d+)\. (.*)$", re.MULTILINE)


def candidate_lines(messages) -> list[tuple[int, str]]:
    """(number, text) of the candidates in the last user message."""
    block = messages[-1]["content"].split("<candidates>")[1].split("</candidates>")[0]
    return [(int(n), text) for n, text in _CANDIDATE_RE.findall(block)]


def comedy_fan(messages) -> str:
    """A deterministic 'LLM': likes the first comedy candidate, dislikes the first horror one."""
    lines = candidate_lines(messages)
    like = next((n for n, t in lines if "Comedy" in t), lines[0][0])
    dislike = next((n for n, t in lines if "Horror" in t and n != like), None)
    if dislike is None:
        dislike = next(n for n, _ in lines if n != like)
    return f'Sure! {{"like": {like}, "dislike": {dislike}}}'
