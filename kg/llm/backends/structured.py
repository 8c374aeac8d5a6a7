"""The one constrained-decoding path of the local backends: the JSON skeleton is ours,
the model fills the value lists.

The reply ``{"k1": [...], "k2": [...]}`` is produced key by key: we feed the key (forced
tokens), the model writes the list body under a constraint, we stop the list (closed,
looping, too long: :func:`list_over`), keep its values, *retract* what the model wrote
and feed our canonical rendering instead (:func:`render_list`), then the next key.

Constraints per list (:class:`ListConstraint`; greedy: the best-ranked token that keeps
the list valid):

* **extractive** (text mode): every value is a word-aligned span of the item's text;
* **choice** (closed vocabularies such as genres): every value is one of the allowed
  spellings (in text mode only spellings that occur in the text, so a list whose
  vocabulary is absent from the text costs no generation at all);
* none (knowledge mode, open types): free strings.

Two drivers apply these rules.  :class:`StructuredDecoder` advances all rows of a batch
together through :class:`~kg.llm.backends.fastllama.LlamaRunner` (one forward per step
whatever mix of forced and generated tokens the rows need, on top of the shared prompt
prefix computed once per run), and computes logits only for the tokens a constrained row
may use (the tokens of its text, of its choices and JSON punctuation: a fifth of a decode
step is the output projection over 49k tokens otherwise).  Models that runner does not
reproduce go through transformers' ``generate()`` one list at a time, steered by
:class:`SpanProcessor` and stopped by :class:`ListStop` (the measured baseline of
``benchmarks/kg_throughput.py``); :class:`JsonStop` ends free JSON generation.
:mod:`kg.llm.backends.hf` only drives the model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from kg.llm.backends.base import Completion
from kg.llm.backends.fastllama import LlamaRunner, Prefix, RowCache
from kg.llm.jsonscan import close_point, list_values

if TYPE_CHECKING:
    import torch


class Tokenizer(Protocol):
    """What decoding uses of a transformers tokenizer."""

    eos_token_id: int | None

    def __call__(self, text: str, add_special_tokens: bool = ...) -> Mapping[str, list[int]]: ...

    def __len__(self) -> int: ...

    def decode(self, ids: Sequence[int] | torch.Tensor, skip_special_tokens: bool = ...) -> str: ...

    def get_vocab(self) -> dict[str, int]: ...

    def convert_tokens_to_ids(self, token: str) -> int: ...


class TokenPieces:
    """Memoised text of single tokens (decoding one token is a tokenizer call)."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tok = tokenizer
        self._pieces: dict[int, str] = {}

    def __call__(self, token: int) -> str:
        piece = self._pieces.get(token)
        if piece is None:
            piece = self._pieces[token] = self.tok.decode([token])
        return piece


_STOPWORDS = frozenset(
    "a an the of and or in on at to for by with from as is are was were be his her their its this that who"
    " he she they it him them".split()
)
_QUOTED_RE = re.compile(r'"([^"\\]{1,80})"')
_WORD_RE = re.compile(r"\w+(?:['’]\w+)*|[^\w\s]")


def has_content(value: str) -> bool:
    """At least one word that is not a stopword ("The", "of the" are no entities)."""
    return any(w.casefold() not in _STOPWORDS for w in re.findall(r"\w{2,}", value))


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


def unfinished_value(text: str) -> str:
    """The value being written at the end of a list body (after an odd number of quotes), else ``""``."""
    return text.rsplit('"', 1)[-1] if text.count('"') % 2 == 1 else ""


def list_over(text: str, max_values: int, stuck: bool = False) -> bool:
    """Whether a list body being written is over: it closed, holds more than ``max_values``
    values, a value ran past 80 characters, the model loops, or (``stuck``) no token fits."""
    values, closed = list_values(text, max_values + 1)
    return (
        stuck
        or closed
        or len(values) > max_values
        or len(unfinished_value(text)) > 80
        or degenerate(text)
    )


def render_list(values: Sequence[str]) -> str:
    """Our canonical rendering of a list body's values (fed back instead of the model's)."""
    return ", ".join(json.dumps(v, ensure_ascii=False) for v in values)


def render_reply(keys: Sequence[str], answer: Mapping[str, Sequence[str]]) -> str:
    """The reply ``{"k1": [...], ...}`` in ``keys`` order (a key without values gets ``[]``)."""
    return (
        "{"
        + ", ".join(
            f"{json.dumps(k)}: {json.dumps(list(answer.get(k, [])), ensure_ascii=False)}"
            for k in keys
        )
        + "}"
    )


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


class SpanProcessor:
    """``generate()`` logits processor: the best of the top ``top_k`` tokens that keeps the
    list body valid under ``rules`` (all other logits masked); when none does, the list is
    ``stuck`` (read by :class:`ListStop`) and ``]`` is forced."""

    def __init__(
        self,
        tokenizer: Tokenizer,
        start: int,
        rules: ListConstraint,
        pieces: TokenPieces,
        top_k: int = 512,
    ) -> None:
        self.tok = tokenizer
        self.start = start  # where the list body starts in the generated ids
        self.rules = rules
        self.pieces = pieces
        self.top_k = top_k
        self.close_id = (
            tokenizer.convert_tokens_to_ids("]") if "]" in tokenizer.get_vocab() else None
        )
        self.stuck = False

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        import torch

        text = self.tok.decode(input_ids[0, self.start :], skip_special_tokens=True)
        chosen = None
        for token in torch.topk(scores[0], self.top_k).indices.tolist():
            if self.rules.valid(text + self.pieces(token)):
                chosen = token
                break
        if chosen is None:
            self.stuck = True
            chosen = self.close_id if self.close_id is not None else int(scores[0].argmax())
        masked = torch.full_like(scores, float("-inf"))
        masked[0, chosen] = 0.0
        return masked


class ListStop:
    """``generate()`` stopping criterion of one list body: :func:`list_over`."""

    def __init__(
        self,
        tokenizer: Tokenizer,
        start: int,
        max_values: int,
        constraint: SpanProcessor | None = None,
    ) -> None:
        self.tok = tokenizer
        self.start = start
        self.max_values = max_values
        self.constraint = constraint

    def __call__(
        self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any
    ) -> torch.Tensor:
        import torch

        text = self.tok.decode(input_ids[0, self.start :], skip_special_tokens=True)
        stuck = self.constraint is not None and self.constraint.stuck
        done = list_over(text, self.max_values, stuck)
        return torch.tensor([done], dtype=torch.bool, device=input_ids.device)


class JsonStop:
    """``generate()`` stopping criterion of free JSON replies: a row is done once its JSON
    object closes, it loops, or it writes prose instead (no point generating more)."""

    def __init__(self, tokenizer: Tokenizer, prompt_len: int, stop_on_repetition: bool) -> None:
        self.tok = tokenizer
        self.prompt_len = prompt_len
        self.stop_on_repetition = stop_on_repetition

    def __call__(
        self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any
    ) -> torch.Tensor:
        import torch

        done = []
        for row in input_ids[:, self.prompt_len :]:
            text = self.tok.decode(row, skip_special_tokens=True)
            stripped = text.lstrip()
            finished = bool(stripped) and (
                close_point(text) is not None
                or (self.stop_on_repetition and degenerate(text))
                or (len(stripped) > 40 and "{" not in stripped and "[" not in stripped)
            )
            done.append(finished)
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


def keep_generated(text: str, max_values: int, source: str | None, used: set[str]) -> list[str]:
    """The values of a list body ``generate()`` wrote, as the reply keeps them.

    Matching is case-insensitive (the model's casing drifts: "toyS"), so values take the
    source text's own casing.  A small model repeats earlier values under every later
    key: a value already given is dropped (and ``used`` grows by the kept ones).
    """
    values, _ = list_values(text, max_values)
    if source:
        values = [source_casing(v, source) for v in values]
    values = [v for v in values if v.casefold() not in used]
    used.update(v.casefold() for v in values)
    return values


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


class _Batch:
    """The conversations of one :meth:`StructuredDecoder.decode` call: which decode in which
    slot, which wait (popped from the end: input order), which are finished."""

    def __init__(
        self,
        conversations: Sequence[tuple[list[int], list[int]]],
        keys: list[str],
        max_tokens: int,
        sources: Sequence[str | None],
        choices: Mapping[str, Sequence[str]],
        n_rows: int,
    ) -> None:
        self.conversations = conversations
        self.keys = keys
        self.max_tokens = max_tokens
        self.sources = sources
        self.choices = choices
        self.waiting = list(range(len(conversations)))[::-1]
        self.finished: dict[int, _Row] = {}
        self.slots: list[_Row | None] = [None] * n_rows


def _next_feed(slots: Sequence[_Row | None]) -> list[list[int]]:
    """The tokens each slot is fed this step: its generated token, else its forced text."""
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
    return feed


class StructuredDecoder:
    """Fills JSON value lists for a batch of conversations (see module doc).

    ``tokenizer``: the model's tokenizer; ``runner``: a :class:`LlamaRunner`.
    """

    def __init__(
        self, tokenizer: Tokenizer, runner: LlamaRunner, max_values: int = 5, top_k: int = 64
    ) -> None:
        self.tok = tokenizer
        self.runner = runner
        self.max_values = max_values
        self.top_k = top_k
        self.piece = TokenPieces(tokenizer)
        self._prefixes: dict[tuple[int, ...], Prefix] = {}
        self._structural: list[int] | None = None
        self._word_ids: dict[str, list[int]] = {}
        self._boundaries: dict[tuple[str, ...], set[str]] = {}
        self._cache: RowCache | None = None

    # -- token helpers ---------------------------------------------------------------

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

    def prefix(self, ids: list[int]) -> Prefix:
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
        values, _ = list_values(row.seg_text, row.max_values)
        if row.source:
            values = [source_casing(v, row.source) for v in values]
        seen: set[str] = set()
        unique = []  # casing variants of one value: the first kept
        for v in values:
            if v.casefold() not in seen:
                seen.add(v.casefold())
                unique.append(v)
        values = unique
        # a small model repeats earlier values under every later key: drop them (and the
        # context shows our canonical list, so the repetition does not reinforce itself)
        if row.constraint is not None and row.constraint.choices is None:
            values = [v for v in values if v.casefold() not in row.used]
            row.used.update(v.casefold() for v in values)
        row.answer[key] = values
        row.next_token = None
        assert self._cache is not None  # set by decode() before any row starts
        self.runner.retract(self._cache, row.slot, row.seg_fed)
        # our canonical list, encoded together with the next key so that the tokens
        # merge as in the example turn (' ["', '"],', ' "')
        self._start_key(row, " [" + render_list(values) + "]")

    def _segment_over(self, row: _Row) -> bool:
        return list_over(row.seg_text, row.max_values) or row.seg_fed + 1 >= row.seg_budget

    def _vocabulary(
        self,
        sources: Sequence[str | None],
        keys: Sequence[str],
        choices: Mapping[str, Sequence[str]],
    ) -> torch.Tensor | None:
        """The token ids all rows may write, or ``None`` when a free (unconstrained) row
        needs logits over the whole vocabulary."""
        import torch

        if any(src is None and any(k not in choices for k in keys) for src in sources):
            return None
        texts = [src for src in sources if src] + [c for vals in choices.values() for c in vals]
        return torch.tensor(sorted(self.vocabulary_for(texts)), dtype=torch.long)

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
        n_rows = max(1, min(rows, len(conversations)))
        longest = max(len(rest) for _, rest in conversations)
        self._cache = self.runner.new_rows(
            n_rows, longest + 16 * len(keys) + 8 * self.max_values, len(prefix_ids)
        )
        # constrained rows need logits for their tokens only; a free row needs them all
        vocab = self._vocabulary(sources, keys, choices)
        vocab_list = vocab.tolist() if vocab is not None else None
        batch = _Batch(conversations, list(keys), max_tokens, sources, choices, n_rows)
        for slot in range(n_rows):
            self._admit(batch, slot)
        with torch.inference_mode():
            while any(r is not None for r in batch.slots):
                feed = _next_feed(batch.slots)
                if not any(feed):
                    break  # cannot happen by construction; never spin
                logits = self.runner.forward(self._cache, feed, prefix, vocab=vocab)
                assert logits is not None  # some row was fed
                for b, r in enumerate(batch.slots):
                    if r is None or not feed[b]:
                        continue
                    self._choose(r, logits[b], vocab_list)
                    if r.done:
                        batch.finished[r.conv] = r
                        self._admit(batch, b)
        return [
            Completion(
                text=render_reply(keys, r.answer),
                prompt_tokens=r.prompt_tokens,
                completion_tokens=r.generated,
                finish_reason="stop",
            )
            for r in (batch.finished[i] for i in range(len(conversations)))
        ]

    def _admit(self, batch: _Batch, slot: int) -> None:
        """Give ``slot`` the next waiting conversation that needs the model (or free it)."""
        while batch.waiting:
            conv = batch.waiting.pop()
            pre, rest = batch.conversations[conv]
            row = _Row(
                list(batch.keys),
                batch.sources[conv],
                batch.choices,
                self.max_values,
                batch.max_tokens,
                len(pre) + len(rest),
            )
            row.conv, row.slot = conv, slot
            row.forced = list(rest)
            self._start_key(row)
            if row.done:  # nothing to ask (every key impossible): answered without the model
                batch.finished[conv] = row
                continue
            assert self._cache is not None  # set by decode()
            self.runner.reset_row(self._cache, slot)
            batch.slots[slot] = row
            return
        batch.slots[slot] = None

    def _choose(self, row: _Row, logits: torch.Tensor, vocab: list[int] | None) -> None:
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
        if self._segment_over(row):
            # the chosen token ends the list: it need not be fed (our rendering replaces it)
            self._finish_key(row)
