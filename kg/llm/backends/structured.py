"""Batched structured decoding: the JSON skeleton is ours, the model fills the value lists.

For every conversation of a batch the reply ``{"k1": [...], "k2": [...]}`` is produced
key by key: we feed the key (forced tokens), the model writes the list body under a
constraint, we stop the list (closed, looping, too long), keep its values, *retract*
what the model wrote and feed our canonical rendering instead, then the next key.  All
rows advance together through :class:`~kg.llm.backends.fastllama.LlamaRunner` (one forward
per step whatever mix of forced and generated tokens the rows need), on top of the
shared prompt prefix computed once per run.

Constraints per list (greedy: the best-ranked token that keeps the list valid):

* **extractive** (text mode): every value is a word-aligned span of the item's text;
* **choice** (closed vocabularies such as genres): every value is one of the allowed
  spellings (in text mode only spellings that occur in the text, so a list whose
  vocabulary is absent from the text costs no generation at all);
* none (knowledge mode, open types): free strings.

Logits are computed only for the tokens a constrained row may use (the tokens of
its text, of its choices and JSON punctuation): a fifth of a decode step is the
output projection over 49k tokens otherwise.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kg.llm.backends.base import Completion

_STOPWORDS = frozenset(
    "a an the of and or in on at to for by with from as is are was were be his her their its this that who"
    " he she they it him them".split()
)
_STRING_RE = re.compile(r'"((?:[^"\\\n]|\\.){1,120})"')
_QUOTED_RE = re.compile(r'"([^"\\]{1,80})"')
_WORD_RE = re.compile(r"\w+(?:['’]\w+)*|[^\w\s]")


def has_content(value: str) -> bool:
    """At least one word that is not a stopword ("The", "of the" are no entities)."""
    return any(w.casefold() not in _STOPWORDS for w in re.findall(r"\w{2,}", value))


def segment_values(text: str, max_values: int) -> tuple[list[str], bool]:
    """Complete quoted values at the start of a generated list body, and whether the list ended."""
    in_str = esc = False
    end = len(text)
    closed = False
    for i, ch in enumerate(text):
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
            elif ch == "\n":
                end = i
                break
        elif ch == '"':
            in_str = True
        elif ch in "]}":
            end, closed = i, True
            break
    values: list[str] = []
    for match in _STRING_RE.finditer(text[:end]):
        try:
            value = json.loads(f'"{match.group(1)}"').strip()
        except json.JSONDecodeError:
            continue
        if value and value not in values:
            values.append(value)
    return values[:max_values], closed


def degenerate(text: str, limit: int = 3) -> bool:
    """True once some quoted value occurs ``limit`` times: the model is looping."""
    counts: dict[str, int] = {}
    for value in _QUOTED_RE.findall(text):
        counts[value] = counts.get(value, 0) + 1
        if counts[value] >= limit:
            return True
    return False


def source_casing(value: str, source: str) -> str:
    """The text's own casing of a value matched case-insensitively (the model's casing drifts)."""
    match = re.search(r"(?<!\w)" + re.escape(value) + r"(?!\w)", source, flags=re.IGNORECASE)
    return match.group(0) if match else value


class ListConstraint:
    """Validity of a partial list body ``"v1", "v2"]`` under the extractive/choice rules.

    ``source``: values must be word-aligned spans of it (case-insensitive).
    ``choices``: values must be one of these strings (case-insensitive).
    ``boundaries``: with ``choices``, the prefixes of the choices at their token
    boundaries (casefolded); an unfinished value must be one of them, so the model
    spells a choice with the choice's own tokens.  Greedy letter-level paths ('"D' ->
    'O' -> 'c' for "Documentary") strand the value in a prefix no token continues.
    ``used``: values given under earlier keys (casefolded), not allowed again.  A closed
    vocabulary ignores it: "comedy" named as a keyword is still the genre Comedy.
    """

    def __init__(
        self,
        source: str | None,
        choices: Sequence[str] | None,
        max_values: int,
        used: set[str],
        boundaries: set[str] | None = None,
    ) -> None:
        self.src = source.casefold() if source is not None else None
        self.spellings = None if choices is None else list(choices)
        self.choices = None if choices is None else {c.casefold() for c in choices}
        self.prefixes = None
        if self.choices is not None:
            self.prefixes = {c[:i] for c in self.choices for i in range(len(c) + 1)}
        self.max_values = max_values
        self.boundaries = boundaries
        self.used = used if choices is None else set()
        self._memo: dict[tuple[str, bool], bool] = {}

    @property
    def constrained(self) -> bool:
        return self.src is not None or self.choices is not None

    def _ok(self, value: str, complete: bool) -> bool:
        key = (value, complete)
        hit = self._memo.get(key)
        if hit is None:
            v = value.casefold()
            hit = True
            if self.choices is not None:
                hit = (v in self.choices) if complete else (v in self.prefixes)  # type: ignore[operator]
            if hit and self.src is not None:
                pattern = r"(?<!\w)" + re.escape(v) + (r"(?!\w)" if complete else "")
                hit = re.search(pattern, self.src) is not None
            self._memo[key] = hit
        return hit

    def valid(self, text: str) -> bool:
        state, buf, count = "start", "", 0
        for ch in text:
            if state in ("start", "comma"):
                if ch.isspace():
                    continue
                if ch == '"':
                    state, buf = "in", ""
                    continue
                return ch == "]" and state == "start"
            if state == "in":
                if ch == '"':
                    value = buf.strip()
                    if (
                        len(value) < 2
                        or not value[-1].isalnum()
                        or value.casefold() in self.used
                        or not has_content(value)
                        or not self._ok(value, True)
                    ):
                        return False
                    state, count = "after", count + 1
                    continue
                if self.choices is None and (
                    # entity names, not clauses: no clause punctuation, at most 4 words
                    ch in "\\\n,;:!?()[]{}"
                    or (not buf and ch.isspace())
                    or len(buf) >= 40
                    or (ch == " " and (buf.count(" ") >= 3 or buf.endswith(".")))
                ):
                    return False
                if ch in '\\\n' or len(buf) >= 60:
                    return False
                buf += ch
                if not self._ok(buf, False):
                    return False
                continue
            if ch.isspace():
                continue
            if ch == ",":
                if count >= self.max_values:
                    return False
                state = "comma"
                continue
            return ch == "]"
        if (
            state == "in"
            and buf
            and self.boundaries is not None
            and buf.casefold() not in self.boundaries
        ):
            return False
        return True

    def writable_choices(self) -> list[str]:
        """The choices (as spelled) this list can hold: in text mode, those its text contains."""
        return [c for c in self.spellings or () if self._ok(c, True)]

    def possible(self) -> bool:
        """False when no value can be written at all (e.g. no choice occurs in the text)."""
        return self.choices is None or bool(self.writable_choices())


@dataclass
class _Row:
    keys: list[str]
    source: str | None
    choices: Mapping[str, Sequence[str]]
    max_values: int
    budget_total: int
    prompt_tokens: int
    forced: list[int] = field(default_factory=list)
    key_index: int = -1
    seg_text: str = ""
    seg_fed: int = 0  # tokens of the current list already fed to the model
    seg_budget: int = 0  # most tokens the current list may take
    opening: bool = False  # the list's "[" is still to be written (by the model)
    next_token: int | None = None
    generated: int = 0
    constraint: ListConstraint | None = None
    answer: dict[str, list[str]] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)
    done: bool = False
    conv: int = -1  # index of the conversation
    slot: int = -1  # cache row it decodes in


class StructuredDecoder:
    """Fills JSON value lists for a batch of conversations (see module doc).

    ``tokenizer``: the model's tokenizer; ``runner``: a :class:`LlamaRunner`.
    """

    def __init__(self, tokenizer: Any, runner: Any, max_values: int = 5, top_k: int = 64) -> None:
        self.tok = tokenizer
        self.runner = runner
        self.max_values = max_values
        self.top_k = top_k
        self._pieces: dict[int, str] = {}
        self._prefixes: dict[tuple[int, ...], Any] = {}
        self._structural: list[int] | None = None
        self._word_ids: dict[str, list[int]] = {}
        self._boundaries: dict[tuple[str, ...], set[str]] = {}

    # -- token helpers ---------------------------------------------------------------
    def piece(self, token: int) -> str:
        p = self._pieces.get(token)
        if p is None:
            p = self._pieces[token] = self.tok.decode([token])
        return p

    def encode(self, text: str) -> list[int]:
        return self.tok(text, add_special_tokens=False)["input_ids"]

    def structural_ids(self) -> list[int]:
        """Tokens made only of JSON list punctuation and spaces (``"``, ``", "``, `` ["`` ...)."""
        if self._structural is None:
            ids = []
            for token in range(len(self.tok)):
                p = self.piece(token)
                if p and set(p) <= set(' ",[]'):
                    ids.append(token)
            self._structural = ids
        return self._structural

    def token_boundaries(self, choices: Sequence[str]) -> set[str]:
        """Casefolded prefixes of ``choices`` that end on one of their token boundaries."""
        key = tuple(choices)
        cached = self._boundaries.get(key)
        if cached is None:
            cached = set()
            for choice in choices:
                text = ""
                for token in self.encode(choice):
                    text += self.piece(token)
                    cached.add(text.casefold())
                cached.add(choice.casefold())
            self._boundaries[key] = cached
        return cached

    def _word_tokens(self, word: str) -> list[int]:
        ids = self._word_ids.get(word)
        if ids is None:
            ids = []
            for form in {word, word.casefold(), word[:1].upper() + word[1:]}:
                for variant in (form, " " + form, '"' + form):
                    ids.extend(self.encode(variant))
            self._word_ids[word] = ids
        return ids

    def vocabulary_for(self, texts: Sequence[str]) -> set[int]:
        """Tokens a constrained row may need: tokenisations of the words of ``texts``."""
        ids: set[int] = set(self.structural_ids())
        for text in texts:
            ids.update(self.encode(text))
            for word in _WORD_RE.findall(text):
                ids.update(self._word_tokens(word))
        return ids

    def prefix(self, ids: list[int]) -> Any:
        key = tuple(ids)
        cached = self._prefixes.get(key)
        if cached is None:
            cached = self.runner.prefix(ids)
            if len(self._prefixes) >= 4:  # a run has one or two prefixes (extraction, gleaning)
                self._prefixes.pop(next(iter(self._prefixes)))
            self._prefixes[key] = cached
        return cached

    # -- decoding --------------------------------------------------------------------
    def _start_key(self, row: _Row, text: str = "") -> None:
        """Queue ``text`` and the forced text up to the next key that can hold values (or the end).

        The forced text stops after ``"key":``; the model writes the list's opening token
        itself.  SmolLM-style BPE merges `` ["`` and `` [],`` into one token each, which is
        how the example turn reads: forcing a lone `` [`` asked for a token sequence the
        model has never seen after a key, and it closed most lists at once.
        """
        while True:
            row.key_index += 1
            if row.key_index >= len(row.keys):
                row.done = True
                return
            key = row.keys[row.key_index]
            text += ("{" if row.key_index == 0 else ", ") + json.dumps(key) + ":"
            constraint = ListConstraint(row.source, row.choices.get(key), row.max_values, row.used)
            if constraint.choices is not None:
                constraint.boundaries = self.token_boundaries(constraint.writable_choices())
            budget = min(8 * row.max_values, row.budget_total - row.generated)
            if budget > 0 and constraint.possible():
                row.constraint, row.seg_text, row.seg_fed, row.seg_budget = (
                    constraint,
                    "",
                    0,
                    budget,
                )
                row.opening = True
                row.forced.extend(self.encode(text))
                return
            row.answer[key] = []
            text += " []"

    def _finish_key(self, row: _Row) -> None:
        key = row.keys[row.key_index]
        values, _ = segment_values(row.seg_text, row.max_values)
        if row.source:
            values = [source_casing(v, row.source) for v in values]
        seen: set[str] = set()
        values = [
            v for v in values if not (v.casefold() in seen or seen.add(v.casefold()))
        ]  # casing variants
        # a small model repeats earlier values under every later key: drop them (and the
        # context shows our canonical list, so the repetition does not reinforce itself)
        if row.constraint is not None and row.constraint.choices is None:
            values = [v for v in values if v.casefold() not in row.used]
            row.used.update(v.casefold() for v in values)
        row.answer[key] = values
        row.next_token = None
        self.runner.retract(self._cache, row.slot, row.seg_fed)
        # our canonical list, encoded together with the next key so that the tokens
        # merge as in the example turn (' ["', '"],', ' "')
        rendering = ", ".join(json.dumps(v, ensure_ascii=False) for v in values)
        self._start_key(row, " [" + rendering + "]")

    def _segment_over(self, row: _Row, stuck: bool) -> bool:
        values, closed = segment_values(row.seg_text, row.max_values + 1)
        text = row.seg_text
        unfinished = text.rsplit('"', 1)[-1] if text.count('"') % 2 == 1 else ""
        return (
            stuck
            or closed
            or len(values) > row.max_values
            or len(unfinished) > 80
            or degenerate(text)
            or row.seg_fed + 1 >= row.seg_budget
        )

    def decode(
        self,
        conversations: Sequence[tuple[list[int], list[int]]],
        keys: Sequence[str],
        max_tokens: int,
        sources: Sequence[str | None],
        choices: Mapping[str, Sequence[str]] | None = None,
        rows: int = 32,
    ) -> list[Completion]:
        """``conversations``: (shared prefix ids, rest of the prompt ids) each; the prefix
        must be the same for all (it is attended to, not copied).  At most ``rows``
        conversations decode at once; a finished row takes the next waiting conversation
        at the next step (continuous batching: no row waits for the batch's slowest)."""
        import torch

        choices = dict(choices or {})
        prefix_ids = conversations[0][0]
        if any(c[0] != prefix_ids for c in conversations):
            raise ValueError("all conversations of a batch must share the prompt prefix")
        prefix = self.prefix(prefix_ids) if prefix_ids else None
        waiting = list(range(len(conversations)))[::-1]  # popped from the end: input order
        finished: dict[int, _Row] = {}
        n_rows = max(1, min(rows, len(conversations)))
        slots: list[_Row | None] = [None] * n_rows
        longest = max(len(rest) for _, rest in conversations)
        self._cache = self.runner.new_rows(
            n_rows, longest + 16 * len(keys) + 8 * self.max_values, len(prefix_ids)
        )
        # constrained rows need logits for their tokens only; a free row needs them all
        free = any(src is None and any(k not in choices for k in keys) for src in sources)
        vocab = None
        if not free:
            texts = [src for src in sources if src] + [c for vals in choices.values() for c in vals]
            vocab = torch.tensor(sorted(self.vocabulary_for(texts)), dtype=torch.long)
        vocab_list = vocab.tolist() if vocab is not None else None

        def admit(slot: int) -> None:
            while waiting:
                conv = waiting.pop()
                pre, rest = conversations[conv]
                row = _Row(
                    list(keys),
                    sources[conv],
                    choices,
                    self.max_values,
                    max_tokens,
                    len(pre) + len(rest),
                )
                row.conv, row.slot = conv, slot
                row.forced = list(rest)
                self._start_key(row)
                if row.done:  # nothing to ask (every key impossible): answered without the model
                    finished[conv] = row
                    continue
                self.runner.reset_row(self._cache, slot)
                slots[slot] = row
                return
            slots[slot] = None

        for slot in range(n_rows):
            admit(slot)
        with torch.inference_mode():
            while any(r is not None for r in slots):
                feed: list[list[int]] = []
                for r in slots:
                    if r is None:
                        feed.append([])
                    elif r.next_token is not None:
                        feed.append([r.next_token])
                        r.seg_fed += 1
                        r.next_token = None
                    else:
                        feed.append(r.forced)
                        r.forced = []
                if not any(feed):
                    break  # cannot happen by construction; never spin
                logits = self.runner.forward(self._cache, feed, prefix, vocab=vocab)
                for b, r in enumerate(slots):
                    if r is None or not feed[b]:
                        continue
                    self._choose(r, logits[b], vocab_list)
                    if r.done:
                        finished[r.conv] = r
                        admit(b)
        return [
            Completion(
                text="{"
                + ", ".join(
                    f"{json.dumps(k)}: {json.dumps(r.answer.get(k, []), ensure_ascii=False)}"
                    for k in keys
                )
                + "}",
                prompt_tokens=r.prompt_tokens,
                completion_tokens=r.generated,
                finish_reason="stop",
            )
            for r in (finished[i] for i in range(len(conversations)))
        ]

    def _choose(self, row: _Row, logits: Any, vocab: list[int] | None) -> None:
        import torch

        constraint = row.constraint
        chosen, body = None, ""
        k = min(self.top_k, logits.shape[0])
        order = torch.topk(logits, k).indices.tolist()
        for attempt in range(2):
            for idx in order:
                token = vocab[idx] if vocab is not None else idx
                piece = self.piece(token)
                if row.opening:  # the list's first token must open it: ' [', ' ["', ' [],' ...
                    piece = piece.lstrip(" ")
                    if not piece.startswith("["):
                        continue
                    piece = piece[1:]
                if constraint is None or not constraint.constrained:
                    if token == self.tok.eos_token_id:
                        continue
                    chosen, body = token, piece
                    break
                if constraint.valid(row.seg_text + piece):
                    chosen, body = token, piece
                    break
            if chosen is not None or attempt == 1:
                break
            k = min(8 * self.top_k, logits.shape[0])  # rare: widen the search once
            order = torch.topk(logits, k).indices.tolist()[self.top_k :]
        if chosen is None:
            self._finish_key(row)
            return
        row.seg_text += body
        row.opening = False
        row.generated += 1
        row.next_token = chosen
        if self._segment_over(row, stuck=False):
            # the chosen token ends the list: it need not be fed (our rendering replaces it)
            self._finish_key(row)
