"""The build: items -> prompts -> (cache | backend) -> parse -> validate -> journal -> graph.

Items are processed in groups of the backend's batch size.  Each finished item is
journaled at once (see :mod:`kg.llm.journal`), so a killed build resumes where it
stopped; responses that parsed are cached (see :mod:`kg.llm.cache`), so a resumed or
repeated build does not pay twice.  When the backend stays unreachable the build
stops cleanly with :class:`~kg.errors.BackendUnavailable` after journaling
everything finished.  An error that would answer every call the same way (a backend
error with ``stops_build``, e.g. HTTP 401) also stops the build, after journaling its
group as failed.  A reply that cannot be parsed is never cached and never raises:
:func:`kg.parse.parse_output` rejects it with a reason, counted as
``output_<reason>``, so a rerun cannot replay a crash.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from kg.brands import CatalogueLexicon, load_catalogue_lexicon
from kg.data import Item
from kg.errors import BackendError, BackendUnavailable, ConfigError
from kg.known import KnownEntities, load_known_entities
from kg.lexicon import Lexicon, load_lexicon
from kg.llm.backends.base import Completion, LLMBackend, Message
from kg.llm.cache import ResponseCache, cache_key
from kg.llm.journal import Journal
from kg.parse import Candidate, ParseResult, parse_output
from kg.prompt import (
    PROMPT_VERSION,
    extraction_messages,
    gleaning_messages,
    knowledge_messages,
    knowledge_relations,
)
from kg.schema import Schema
from kg.text import EvidenceIndex, chunk_text, normalize_name
from kg.typed import TypedValidator
from kg.validate import SOURCE_KNOWLEDGE, SOURCE_TEXT, ValidationConfig, validate

log = logging.getLogger(__name__)

MODES = ("text", "knowledge")
#: version of the typed value checks (kg/typed.py) a journal was validated with
TYPED_VERSION = "1"


@dataclass
class ExtractConfig:
    """How facts are extracted.

    Attributes:
        mode: ``text`` (facts stated in the catalogue text, evidence-checked) or
            ``knowledge`` (facts the model recalls from title and year; provenance
            ``source = llm_knowledge``; never evidence-checked, kept apart).
        max_new_tokens: generation limit per call.
        chunk_chars: texts longer than this are split into chunks (one call each).
        chunk_overlap: characters shared by consecutive chunks.
        gleaning: ask once more for missed facts (worth it with strong models only).
        relations: ask only for these relations (default: all of the schema's item
            relations).  A small model does better with the few that text states.
        json_mode: ask the backend for JSON output (server JSON mode / ``{`` prefill).
        lexicon: optional keyword lexicon file (``kg lexicon``): a deterministic,
            text-grounded candidate step learned from *other* items' curated keywords
            (cross-fitted, see :mod:`kg.lexicon`).  Its triples are validated like the
            model's and recorded apart (journal field ``lexicon``).  Text mode only.
        lexicon_max: most lexicon candidates kept per item (highest keyphraseness first).
        lexicon_closed: the lexicon's phrases are the closed vocabulary of its relation's
            target type: the model's (and the catalogue step's) values outside it are
            rejected as ``ill_typed`` (products' categories from the shop's own category
            tree, issue 19).  Needs ``typed``.
        typed: per-type value checks (:mod:`kg.typed`): time periods, proper names,
            brands and categories; rejections counted as ``ill_typed``.
        catalogue: optional learned catalogue lexicon file (``kg catalogue-lexicon``,
            :mod:`kg.brands`): brand spans and a category vocabulary learned from the
            catalogue's own titles and text (cross-fitted, no labels).  Brand and category
            values are checked against it and its values are proposed as candidates
            (journal field ``catalogue``).  Text mode only.
        known: optional known-entities file (:mod:`kg.known`): directors and cast credited
            on *other* items, recognised where the text names them, before the model's
            open relations (journal field ``known``; a known name is not also kept under
            another relation).  Text mode only.
        validation: schema and evidence checks.
    """

    mode: str = "text"
    max_new_tokens: int = 160
    chunk_chars: int = 2000
    chunk_overlap: int = 200
    gleaning: bool = False
    relations: tuple[str, ...] = ()
    json_mode: bool = True
    lexicon: str = ""
    lexicon_max: int = 8
    lexicon_closed: bool = False
    typed: bool = True
    catalogue: str = ""
    known: str = ""
    validation: ValidationConfig = field(default_factory=ValidationConfig)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {MODES}, not {self.mode!r}")
        if self.chunk_chars < 200:
            raise ConfigError("chunk_chars must be >= 200")
        if self.max_new_tokens < 8:
            raise ConfigError("max_new_tokens must be >= 8")
        if self.lexicon_closed and not (self.lexicon and self.typed):
            raise ConfigError(
                "lexicon_closed (--lexicon-closed) needs a lexicon (--lexicon) and the typed "
                "checks (not --no-typed)"
            )


@dataclass
class Prices:
    """Optional prices (any currency) per 1,000 tokens, for the cost line of run stats."""

    prompt_per_1k: float = 0.0
    completion_per_1k: float = 0.0

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (
            prompt_tokens / 1000 * self.prompt_per_1k
            + completion_tokens / 1000 * self.completion_per_1k
        )


@dataclass
class RunStats:
    """Counters of one build invocation (a resumed build starts new counters)."""

    run_id: str = ""
    items_total: int = 0
    items_already_done: int = 0
    items_done: int = 0
    items_skipped_empty: int = 0
    items_failed: int = 0
    first_error: str | None = None
    calls: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    outputs_unparsed: int = 0
    outputs_repaired: int = 0
    candidates: int = 0
    candidates_supported: int = 0
    kept: int = 0
    rejections: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    items_per_s: float = 0.0
    stopped: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _parse(text: str) -> ParseResult:
    """:func:`parse_output`, which never raises; should it ever, the reply counts as unparsed."""
    try:
        return parse_output(text)
    except Exception as exc:  # noqa: BLE001 - one reply must not wedge the build (nor a rerun)
        log.error(
            "parser error on a reply (%s: %s); counted as unparsed",
            type(exc).__name__,
            str(exc)[:200],
        )
        return ParseResult(error="parser_error")


def _stops_build(error: object) -> bool:
    """Errors that every further call would get too (bad credentials, a refused redirect)."""
    return isinstance(error, BackendUnavailable) or bool(getattr(error, "stops_build", False))


def journal_name(mode: str) -> str:
    return f"journal.{mode}.jsonl"


def build_fingerprint(schema: Schema, backend: LLMBackend, cfg: ExtractConfig) -> dict[str, Any]:
    """What must not change between a build and its resumption."""
    return {
        "schema": f"{schema.name}@{schema.version}:{schema.fingerprint()}",
        "prompt_version": PROMPT_VERSION,
        "backend": backend.identity(),
        "mode": cfg.mode,
        "gleaning": cfg.gleaning,
        "chunk_chars": cfg.chunk_chars,
        "max_new_tokens": cfg.max_new_tokens,
        "relations": list(cfg.relations),
        **({"lexicon": _lexicon_id(cfg)} if cfg.lexicon and cfg.mode == "text" else {}),
        **_typed_id(cfg),
    }


def _typed_id(cfg: ExtractConfig) -> dict[str, str]:
    """Fingerprint part of issue 19's typed validation (absent when off: old journals resume)."""
    out = {"typed": TYPED_VERSION} if cfg.typed else {}
    if cfg.catalogue and cfg.mode == "text":
        out["catalogue"] = load_catalogue_lexicon(cfg.catalogue).fingerprint()
    if cfg.known and cfg.mode == "text":
        out["known"] = load_known_entities(cfg.known).fingerprint()
    return out


def _lexicon_id(cfg: ExtractConfig) -> str:
    closed = ":closed" if cfg.lexicon_closed else ""
    return f"{load_lexicon(cfg.lexicon).fingerprint()}:{cfg.lexicon_max}{closed}"


@dataclass
class _Call:
    item: Item
    messages: list[Message]
    key: str
    source: str | None = None  # text the values must come from (extractive decoding)


class Extractor:
    """Runs the extraction of items against one backend with cache and journal."""

    def __init__(
        self,
        schema: Schema,
        backend: LLMBackend,
        cfg: ExtractConfig,
        cache: ResponseCache | None,
        journal: Journal,
        prices: Prices | None = None,
        run_id: str | None = None,
    ) -> None:
        self.schema = schema
        self.backend = backend
        self.cfg = cfg
        self.cache = cache
        self.journal = journal
        self.prices = prices or Prices()
        self.stats = RunStats(run_id=run_id or new_run_id())
        self._fp = schema.fingerprint()
        self._rejections: Counter = Counter()
        if cfg.mode == "knowledge":
            self._keys = knowledge_relations(schema)
            self._allowed: set[str] | None = set(self._keys)
        else:
            self._keys = list(cfg.relations) if cfg.relations else schema.item_relations()
            self._allowed = set(self._keys) if cfg.relations else None
            if self._allowed is None and schema.default_off:
                # asked for (the prompt and its cached replies stay the same), not kept
                self._allowed = set(self._keys) - set(schema.default_off)
        unknown = [r for r in self._keys if r not in schema.relations]
        if unknown:
            raise ConfigError(f"relations not in schema {schema.name}: {', '.join(unknown)}")
        self._choices = closed_choices(schema, self._keys, cfg.mode)
        if cfg.mode == "text":
            # closed vocabularies first: a choice list costs a few tokens, and asked last
            # it found the reply's token budget spent on open lists (genre was never filled)
            self._keys = [k for k in self._keys if k in self._choices] + [
                k for k in self._keys if k not in self._choices
            ]
        self._lexicon = None
        if cfg.lexicon and cfg.mode == "text":
            self._lexicon = load_lexicon(cfg.lexicon)
            if self._lexicon.relation not in schema.relations:
                raise ConfigError(
                    f"lexicon relation {self._lexicon.relation!r} is not in schema {schema.name}"
                )
        self._catalogue: CatalogueLexicon | None = None
        if cfg.catalogue and cfg.mode == "text":
            self._catalogue = load_catalogue_lexicon(cfg.catalogue)
        self._typed = (
            TypedValidator(schema.name_types, self._catalogue, closed=self._closed_vocabularies())
            if cfg.typed
            else None
        )
        self._known: KnownEntities | None = None
        if cfg.known and cfg.mode == "text":
            self._known = load_known_entities(cfg.known)

    def _closed_vocabularies(self) -> dict[str, Lexicon]:
        """``lexicon_closed``: the lexicon as the closed vocabulary of its relation's types."""
        if self._lexicon is None or not self.cfg.lexicon_closed:
            return {}
        rel = self._lexicon.relation
        types = {t for _, r, t in self.schema.patterns if r == rel}
        return {t: self._lexicon for t in sorted(types)}

    # -- prompts ---------------------------------------------------------------------
    def _messages(self, item: Item) -> list[tuple[list[Message], str | None]]:
        if self.cfg.mode == "knowledge":
            return [(knowledge_messages(self.schema, item.title, item.year), None)]
        chunks = chunk_text(item.text, self.cfg.chunk_chars, self.cfg.chunk_overlap)
        # values come from the catalogue text proper, not the title line (self-loops)
        sources = [item.evidence] if len(chunks) == 1 else chunks
        return [
            (extraction_messages(self.schema, c, self._keys), src)
            for c, src in zip(chunks, sources)
        ]

    def _key(self, messages: list[Message]) -> str:
        return cache_key(self.backend.identity(), PROMPT_VERSION, self._fp, messages)

    # -- calls -----------------------------------------------------------------------
    def _run_calls(self, calls: list[_Call]) -> list[Completion | BackendError]:
        """Answer calls from the cache where possible, the backend otherwise."""
        results: list[Completion | BackendError | None] = [None] * len(calls)
        misses: list[int] = []
        for i, call in enumerate(calls):
            cached = self.cache.get(call.key) if self.cache is not None else None
            if cached is not None:
                results[i] = cached
                self.stats.cache_hits += 1
            else:
                misses.append(i)
        step = max(1, self.backend.max_batch)
        for start in range(0, len(misses), step):
            group = misses[start : start + step]
            answers = self.backend.complete_batch(
                [calls[i].messages for i in group],
                max_tokens=self.cfg.max_new_tokens,
                json_mode=self.cfg.json_mode,
                keys=self._keys,
                spans_from=[calls[i].source for i in group],
                choices=self._choices,
            )
            for i, answer in zip(group, answers):
                results[i] = answer
                if isinstance(answer, Completion):
                    self.stats.calls += 1
                    self.stats.prompt_tokens += answer.prompt_tokens
                    self.stats.completion_tokens += answer.completion_tokens
                    # cache only output that parsed: a junk reply must be retried, not replayed
                    if self.cache is not None and _parse(answer.text).ok:
                        self.cache.put(calls[i].key, answer, self.backend.model)
            if any(_stops_build(a) for a in answers):
                break  # the server is down or refuses us: do not hammer it with the rest of the group
        # calls not made are not journaled: the resumed build makes them
        return [
            r if r is not None else BackendUnavailable("not attempted: backend unavailable")
            for r in results
        ]

    # -- items -----------------------------------------------------------------------
    def process(self, items: list[Item], progress: Any = None) -> None:
        """Extract every unfinished item of ``items``.

        Raises BackendUnavailable (or a backend error with ``stops_build``) after journaling.
        """
        todo: list[Item] = []
        for item in items:
            if self.journal.is_finished(item.item_id):
                self.stats.items_already_done += 1
                continue
            if self.cfg.mode == "text" and not item.text:
                self.journal.record(
                    item.item_id, "skipped", reason="empty_text", run_id=self.stats.run_id
                )
                self.stats.items_skipped_empty += 1
                continue
            if self.cfg.mode == "knowledge" and not item.title:
                self.journal.record(
                    item.item_id, "skipped", reason="empty_title", run_id=self.stats.run_id
                )
                self.stats.items_skipped_empty += 1
                continue
            todo.append(item)
        self.stats.items_total = len(items)
        if progress is not None:
            progress.reset(total=len(todo))
        start = time.perf_counter()
        group = max(1, self.backend.max_batch)
        try:
            for g in range(0, len(todo), group):
                stop = self._process_group(todo[g : g + group], progress)
                if stop is not None:
                    self.stats.stopped = str(stop)
                    raise stop
        finally:
            self.stats.seconds = time.perf_counter() - start
            done = self.stats.items_done + self.stats.items_failed
            self.stats.items_per_s = done / self.stats.seconds if self.stats.seconds > 0 else 0.0
            self.stats.rejections = dict(sorted(self._rejections.items()))
            self.stats.cost = self.prices.cost(
                self.stats.prompt_tokens, self.stats.completion_tokens
            )

    def _process_group(self, items: list[Item], progress: Any) -> BackendError | None:
        calls: list[_Call] = []
        per_item: dict[str, list[int]] = {}
        for item in items:
            for messages, source in self._messages(item):
                per_item.setdefault(item.item_id, []).append(len(calls))
                calls.append(_Call(item, messages, self._key(messages), source))
        answers = self._run_calls(calls)
        glean_answers: dict[int, Completion | BackendError] = {}
        if self.cfg.gleaning:
            second = [
                (i, _Call(c.item, gleaning_messages(c.messages, answer.text), ""))
                for i, (c, answer) in enumerate(zip(calls, answers))
                if isinstance(answer, Completion) and _parse(answer.text).ok
            ]
            for _, call in second:
                call.key = self._key(call.messages)
            for (i, _), answer in zip(second, self._run_calls([c for _, c in second])):
                glean_answers[i] = answer
        unavailable: BackendUnavailable | None = None
        fatal: BackendError | None = None
        for item in items:
            idx = per_item[item.item_id]
            errors = [a for a in (answers[i] for i in idx) if isinstance(a, BackendError)]
            errors += [
                g for g in (glean_answers.get(i) for i in idx) if isinstance(g, BackendError)
            ]
            fatal = fatal or next(
                (e for e in errors if _stops_build(e) and not isinstance(e, BackendUnavailable)),
                None,
            )
            down = [e for e in errors if isinstance(e, BackendUnavailable)]
            if down:
                unavailable = unavailable or down[0]
                continue  # not journaled: the resumed build does this item
            if errors:
                self.journal.record(
                    item.item_id, "failed", error=str(errors[0])[:300], run_id=self.stats.run_id
                )
                self.stats.items_failed += 1
                if self.stats.first_error is None:
                    self.stats.first_error = str(errors[0])[:300]
                if progress is not None:
                    progress.update(1)
                continue
            outputs = [answers[i] for i in idx] + [
                glean_answers[i] for i in idx if i in glean_answers
            ]
            self._finish_item(item, outputs)  # type: ignore[arg-type]
            if progress is not None:
                progress.update(1)
                progress.set_postfix(kept=self.stats.kept, refresh=False)
        return fatal or unavailable  # a refusal explains more than the calls it left undone

    def _finish_item(self, item: Item, outputs: list[Completion]) -> None:
        knowledge = self.cfg.mode == "knowledge"
        vcfg = ValidationConfig(
            **{
                **asdict(self.cfg.validation),
                "require_evidence": not knowledge and self.cfg.validation.require_evidence,
            }
        )
        evidence = EvidenceIndex(item.evidence)
        seen: set[tuple[str, str]] = set()
        kept_all = []
        rejections: Counter = Counter()
        unparsed = repaired = n_cand = n_supported = 0
        known_kept = self._known_step(item, vcfg, seen, rejections)
        kept_all.extend(known_kept)
        # a credited person (or their surname alone) is not also a character or a place
        known_names = {normalize_name(t.tail) for t in known_kept}
        known_names |= {n.split()[-1] for n in known_names if len(n.split()) > 1}
        for completion in outputs:
            parsed = _parse(completion.text)
            if not parsed.ok:
                unparsed += 1
                rejections[f"output_{parsed.error}"] += 1
                continue
            repaired += int(parsed.repaired)
            n_cand += len(parsed.candidates)
            n_supported += sum(1 for c in parsed.candidates if evidence.supports(str(c.tail)))
            cands = parsed.candidates
            if known_names:
                cands = [c for c in cands if normalize_name(str(c.tail)) not in known_names]
                rejections["known_entity"] += len(parsed.candidates) - len(cands)
            kept, rej = validate(
                cands,
                self.schema,
                item.item_id,
                item.evidence,
                item.title,
                allowed_relations=self._allowed,
                config=vcfg,
                source=SOURCE_KNOWLEDGE if knowledge else SOURCE_TEXT,
                seen=seen,
                typed=self._typed,
            )
            kept_all.extend(kept)
            rejections.update(rej)
        lexicon_kept = self._lexicon_step(item, vcfg, seen, rejections)
        kept_all.extend(lexicon_kept)
        catalogue_kept = self._catalogue_step(item, vcfg, seen, rejections)
        kept_all.extend(catalogue_kept)
        self.stats.outputs_unparsed += unparsed
        self.stats.outputs_repaired += repaired
        self.stats.candidates += n_cand
        self.stats.candidates_supported += n_supported
        self.stats.kept += len(kept_all)
        self._rejections.update(rejections)
        self.stats.items_done += 1
        self.journal.record(
            item.item_id,
            "done",
            triples=[t.to_json() for t in kept_all],
            title=item.title,
            year=item.year,
            source=SOURCE_KNOWLEDGE if knowledge else SOURCE_TEXT,
            calls=len(outputs),
            unparsed=unparsed,
            candidates=n_cand,
            candidates_supported=n_supported,
            rejections=dict(rejections),
            **self._step_records(lexicon_kept, catalogue_kept, known_kept),
            run_id=self.stats.run_id,
            time=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )

    def _step_records(self, lexicon: list, catalogue: list, known: list) -> dict[str, list]:
        """The journal fields of the deterministic steps that ran (absent when off)."""
        steps = (
            ("lexicon", self._lexicon, lexicon),
            ("catalogue", self._catalogue, catalogue),
            ("known", self._known, known),
        )
        return {name: [t.to_json() for t in kept] for name, on, kept in steps if on is not None}

    def _deterministic(
        self,
        item: Item,
        cands: list[Candidate],
        vcfg: ValidationConfig,
        seen: set[tuple[str, str]],
        rejections: Counter,
        step: str,
    ) -> list:
        """Validate a deterministic step's candidates like the model's (grounded in the text);
        its rejections are counted under ``<step>_<reason>`` (duplicates of kept values are not
        rejections: the value was kept once already)."""
        kept, rej = validate(
            cands,
            self.schema,
            item.item_id,
            item.evidence,
            item.title,
            allowed_relations=None,
            config=vcfg,
            source=SOURCE_TEXT,
            seen=seen,
            typed=self._typed,
        )
        rejections.update({f"{step}_{k}": v for k, v in rej.items() if k != "duplicate"})
        return kept

    def _lexicon_step(
        self, item: Item, vcfg: ValidationConfig, seen: set[tuple[str, str]], rejections: Counter
    ) -> list:
        """The keyword lexicon's deterministic candidates, after the model's so its triples keep
        their attribution."""
        if self._lexicon is None:
            return []
        found = self._lexicon.candidates(item.item_id, item.evidence)[: self.cfg.lexicon_max]
        cands = [Candidate(self._lexicon.relation, surface) for surface, _ in found]
        return self._deterministic(item, cands, vcfg, seen, rejections, "lexicon")

    def _known_step(
        self, item: Item, vcfg: ValidationConfig, seen: set[tuple[str, str]], rejections: Counter
    ) -> list:
        """Issue 19: credited names the text holds, before the model's open relations."""
        if self._known is None:
            return []
        found = self._known.candidates(item.item_id, item.evidence)
        # a default build leaves out the schema's default_off relations; --relations names them
        off = set() if self.cfg.relations else set(self.schema.default_off)
        cands = [
            Candidate(rel, name)
            for rel, name in found
            if rel in self.schema.relations and rel not in off
        ]
        return self._deterministic(item, cands, vcfg, seen, rejections, "known")

    def _catalogue_step(
        self, item: Item, vcfg: ValidationConfig, seen: set[tuple[str, str]], rejections: Counter
    ) -> list:
        """Issue 19: the catalogue lexicon's brand span and category phrase of the item, after
        the model's values (a value the model gave is kept once, attributed to the model)."""
        if self._catalogue is None:
            return []
        cands: list[Candidate] = []
        if "brand" in self._keys:
            brand = self._catalogue.brand_span(item.item_id, item.title)
            cands += [Candidate("brand", brand)] if brand else []
        if "category" in self._keys:
            found = self._catalogue.category_phrases(item.item_id, item.title)
            cands += [Candidate("category", c) for c in found]
        return self._deterministic(item, cands, vcfg, seen, rejections, "catalogue")


def closed_choices(schema: Schema, relations: list[str], mode: str) -> dict[str, list[str]]:
    """Allowed values of relations whose target type is a closed vocabulary.

    Text mode: every accepted spelling longer than 2 characters (the value must also be
    in the text, so "war" or "musical" count; ISO codes such as "it" are too ambiguous).
    Knowledge mode: the canonical names.
    """
    out: dict[str, list[str]] = {}
    for rel in relations:
        types = schema.target_types(rel)
        if not types or not all(schema.is_closed(t) for t in types):
            continue
        values: list[str] = []
        for t in types:
            for canonical in schema.vocabularies[t]:
                spellings = (
                    schema.vocabulary_spellings(t, canonical) if mode == "text" else [canonical]
                )
                values.extend(v for v in spellings if len(v) > 2 and v not in values)
        out[rel] = values
    return out


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


def extract_items(
    items: Iterable[Item],
    schema: Schema,
    backend: LLMBackend,
    out: str | Path,
    cfg: ExtractConfig | None = None,
    cache: ResponseCache | None = None,
    prices: Prices | None = None,
    quiet: bool = False,
) -> RunStats:
    """Extract facts for ``items`` into the journal in ``out``; resumable.

    Returns the counters of this invocation.  Raises
    :class:`~kg.errors.BackendUnavailable` (after journaling finished items) when the
    backend stays unreachable, a backend error with ``stops_build`` (e.g.
    ``AuthenticationError``) when every call would be refused, and
    :class:`~kg.errors.JournalError` when ``out`` holds a build with other settings.
    The exception carries this invocation's counters as ``kg_stats``.
    """
    cfg = cfg or ExtractConfig()
    out = Path(out)
    items = list(items)
    journal = Journal(out / journal_name(cfg.mode), build_fingerprint(schema, backend, cfg))
    extractor = Extractor(schema, backend, cfg, cache, journal, prices)
    from tqdm.auto import tqdm  # type: ignore[import-untyped]

    bar = tqdm(
        total=len(items), unit="item", desc=f"kg {cfg.mode}", disable=quiet, dynamic_ncols=True
    )
    try:
        extractor.process(items, bar)
    except (BackendError, KeyboardInterrupt) as exc:
        exc.kg_stats = extractor.stats  # type: ignore[union-attr]
        raise
    finally:
        bar.close()
        journal.close()
    return extractor.stats
