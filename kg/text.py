"""Text normalisation, evidence matching and chunking.

The same functions decide (a) whether an extracted tail is supported by the source
text (validation) and (b) whether a gold fact is text-supported (evaluation), so the
hallucination filter and the recall ceiling use one definition.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_PUNCT_RE = re.compile(r"[^\w\s]", re.UNICODE)
_WS_RE = re.compile(r"\s+")
_STOP = frozenset(
    "a an the of and or in on at to for by with from as is are was were be his her their its this that"
    " who whom into about after before".split()
)


def normalize_name(name: str) -> str:
    """Entity-name key: NFKC, casefold, punctuation to spaces, collapsed whitespace."""
    text = unicodedata.normalize("NFKC", str(name)).casefold()
    text = text.replace("'s ", " ").replace("’s ", " ")
    text = _PUNCT_RE.sub(" ", text).replace("_", " ")
    return _WS_RE.sub(" ", text).strip()


def fold_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _stem(token: str) -> str:
    # light, deterministic plural/possessive folding: "toys"->"toy", "heroes"->"hero", "cities"->"city"
    if len(token) > 4 and token.endswith("ies"):
        return token[:-3] + "y"
    if len(token) > 4 and token.endswith(("ches", "shes", "sses", "xes", "oes")):
        return token[:-2]
    if len(token) > 3 and token.endswith("s") and not token.endswith(("ss", "us", "is")):
        return token[:-1]
    return token


@lru_cache(maxsize=65536)
def match_tokens(text: str) -> tuple[str, ...]:
    """Tokens used for evidence matching: normalised, accent-folded, lightly stemmed."""
    return tuple(_stem(t) for t in fold_accents(normalize_name(text)).split())


def match_key(value: str) -> str:
    """Key for comparing a value with a gold value (same normalisation as evidence)."""
    return " ".join(match_tokens(value))


def _contains_seq(hay: tuple[str, ...], needle: tuple[str, ...]) -> bool:
    n = len(needle)
    if n == 0 or n > len(hay):
        return False
    first = needle[0]
    for i, tok in enumerate(hay[: len(hay) - n + 1]):
        if tok == first and hay[i : i + n] == needle:
            return True
    return False


def _close(a: str, b: str) -> bool:
    # tolerate one typo in longer tokens ("Lightyaer" vs "Lightyear")
    if a == b:
        return True
    if min(len(a), len(b)) < 5 or abs(len(a) - len(b)) > 1:
        return False
    from difflib import SequenceMatcher

    return SequenceMatcher(None, a, b).ratio() >= 0.85


class EvidenceIndex:
    """Answers "is this value supported by the text?" for one source text.

    Supported when the value's token sequence occurs in the text (after
    normalisation and plural folding), or, for multi-word values, when every content
    token occurs in the text within a short window (allowing one typo per long
    token).  ``"novel by Ann Porter"`` is supported by "Based on the novel by Ann
    Porter"; ``"Buzz Lightyear"`` by "Buzz ... Lightyear"; "Paris" is not supported
    by a text that never mentions it.
    """

    def __init__(self, text: str, window: int = 8) -> None:
        self.tokens = match_tokens(text or "")
        self.vocab = set(self.tokens)
        self.window = window

    def supports(self, value: str) -> bool:
        needle = match_tokens(value)
        content = [t for t in needle if t not in _STOP]
        if not content:  # "the", "of a": no entity, no evidence
            return False
        if _contains_seq(self.tokens, needle):
            return True
        positions: list[list[int]] = []
        for tok in content:
            if tok in self.vocab:
                hits = [i for i, t in enumerate(self.tokens) if t == tok]
            else:
                hits = [i for i, t in enumerate(self.tokens) if _close(t, tok)]
            if not hits:
                return False
            positions.append(hits)
        if len(content) == 1:
            return True
        # all content tokens within a window of the first one's occurrence
        span = self.window + len(content)
        for start in positions[0]:
            if all(any(abs(p - start) <= span for p in hits) for hits in positions[1:]):
                return True
        return False


def supported(value: str, text: str) -> bool:
    """One-off form of :meth:`EvidenceIndex.supports`."""
    return EvidenceIndex(text).supports(value)


def clean_text(text: object) -> str:
    """Make catalogue text safe to put in a prompt: str, NFC, no control chars, collapsed spaces."""
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    s = unicodedata.normalize("NFC", str(text))
    s = "".join(ch if (ch.isprintable() or ch in "\n\t") else " " for ch in s)
    return _WS_RE.sub(" ", s).strip()


def chunk_text(text: str, max_chars: int, overlap: int = 200) -> list[str]:
    """Split ``text`` into chunks of at most ``max_chars``, at sentence ends where possible.

    Short texts (the common case) come back as one chunk.  Consecutive chunks share
    up to ``overlap`` characters so a fact on a boundary is seen whole once.
    """
    if max_chars <= 0:
        raise ValueError("max_chars must be positive")
    if len(text) <= max_chars:
        return [text]
    overlap = min(overlap, max_chars // 4)
    chunks: list[str] = []
    start = 0
    while start < len(text):
        end = min(len(text), start + max_chars)
        if end < len(text):
            window = text[start:end]
            cut = max(window.rfind(". "), window.rfind("! "), window.rfind("? "))
            if cut > max_chars // 2:
                end = start + cut + 1
            else:
                space = window.rfind(" ")
                if space > max_chars // 2:
                    end = start + space
        chunks.append(text[start:end].strip())
        if end >= len(text):
            break
        start = max(end - overlap, start + 1)
    return [c for c in chunks if c]
