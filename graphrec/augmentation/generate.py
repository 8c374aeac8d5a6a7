"""Generate LLM-augmented BPR triplets (LLMRec-style), resumable and cached.

For a seeded sample of users, the candidates are a trained base model's top-k items
the user has not interacted with in training (shown in a seeded random order, so the
model's position bias does not simply copy the base model's ranking); the prompt shows
the user's training history and the candidates as item text, and the LLM names one
candidate the user would like and one they would not.  Each answer is parsed leniently
and validated strictly (:mod:`graphrec.augmentation.parse`); a valid one becomes a
triplet (user, liked, disliked) with its provenance.

Crash safety: every user's outcome is journaled (``kg.llm.journal``, fsynced) the moment it
is known and every raw reply is stored in ``kg``'s SQLite response cache, so a killed run
resumed with the same settings loses nothing and calls the LLM for no user twice; a new
run over the same cache (e.g. into another output) makes no LLM call at all.  The final
edge file (:mod:`graphrec.augmentation.edges`) is written atomically at the end.

Replies are cached before they are parsed, so parsing must not be able to fail: the
parser is bounded and never raises (:func:`~graphrec.augmentation.parse.parse_choice`),
and should it ever, the reply is journaled as a rejection (``no_answer``) rather than
crashing this run and, through the cache, every rerun.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from graphrec.augmentation.edges import write_edges
from graphrec.augmentation.parse import REASONS, Choice, Rejection, parse_choice
from graphrec.augmentation.prompt import PROMPT_VERSION, build_messages, item_text
from graphrec.config import load_config
from graphrec.data.dataset import InteractionData, data_fingerprint
from graphrec.errors import ConfigError
from graphrec.training.checkpoint import load_checkpoint
from kg.errors import BackendError, BackendUnavailable
from kg.llm.backends.base import Completion, LLMBackend
from kg.llm.cache import ResponseCache, cache_key
from kg.llm.journal import Journal
from kg.lock import folder_lock

log = logging.getLogger(__name__)

#: cache-key namespace of augmentation calls (kg's cache keys take a "schema" fingerprint)
CACHE_NAMESPACE = "graphrec-augmentation"
Scorer = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class GenerationSettings:
    """What determines the prompts (all part of the journal fingerprint and the file header).

    Attributes:
        users: number of users sampled (without replacement, seeded); 0 = every user.  The
            sample of ``n`` users is the first ``n`` of one seeded permutation, so a larger
            ``users`` extends a finished run (its journal and cache are reused).
        candidates: top-k unseen items of the base model shown as candidates.
        history: training items shown per user (a seeded random sample of them).
        description_chars: overview characters per item (0 = title, year and genres only).
        seed: seed of the user sample, the history sample and the candidate order.
        shuffle_candidates: show the candidates in a seeded random order instead of the
            base model's ranking (small models answer by position).
        max_tokens: generation budget per reply.
    """

    users: int = 200
    candidates: int = 10
    history: int = 8
    description_chars: int = 60
    seed: int = 2024
    shuffle_candidates: bool = True
    max_tokens: int = 32

    def __post_init__(self) -> None:
        if self.users < 0 or self.candidates < 2 or self.history < 1 or self.max_tokens < 4:
            raise ConfigError(
                "augmentation: users >= 0, candidates >= 2, history >= 1 and max_tokens >= 4 are required"
            )


@dataclass
class GenerationReport:
    """Counts of one generation run (also stored in the edge file's header)."""

    users: int = 0
    edges: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    failed: int = 0
    llm_calls: int = 0
    cache_hits: int = 0
    resumed_users: int = 0
    seconds: float = 0.0

    @property
    def acceptance(self) -> float:
        return self.edges / self.users if self.users else 0.0


def sample_users(n_users: int, count: int, seed: int) -> np.ndarray:
    """``count`` distinct internal user ids (all when ``count`` is 0 or too large), seeded."""
    order = np.random.default_rng(seed).permutation(n_users)
    return order if count <= 0 or count >= n_users else order[:count]


@torch.no_grad()
def top_unseen(
    scorer: Scorer, train, users: np.ndarray, k: int, batch_size: int = 1024
) -> np.ndarray:
    """``[len(users), k]`` best-scored items per user excluding their training items."""
    rows = []
    for start in range(0, len(users), batch_size):
        batch = torch.as_tensor(users[start : start + batch_size], dtype=torch.long)
        scores = scorer(batch).float().cpu().clone()
        sub = train[batch.numpy()].tocoo()
        scores[
            torch.as_tensor(sub.row, dtype=torch.long), torch.as_tensor(sub.col, dtype=torch.long)
        ] = -torch.inf
        rows.append(torch.topk(scores, k, dim=1).indices.numpy())
    return np.concatenate(rows) if rows else np.zeros((0, k), dtype=np.int64)


def _user_prompt(
    data: InteractionData, user: int, candidates: np.ndarray, settings: GenerationSettings
):
    rng = np.random.default_rng([settings.seed, int(user)])
    train_items = data.train[int(user)].indices
    history = rng.choice(train_items, size=min(settings.history, len(train_items)), replace=False)
    shown = rng.permutation(candidates) if settings.shuffle_candidates else np.asarray(candidates)
    info = data.item_info
    messages = build_messages(
        [item_text(info, int(i), settings.description_chars) for i in history],
        [item_text(info, int(i), settings.description_chars) for i in shown],
    )
    titles = [_title(info, int(i)) for i in shown]
    return messages, shown, titles


def _title(info, item: int) -> str:
    if info is None or item not in info.index or "title" not in info.columns:
        return f"item {item}"
    return str(info.loc[item, "title"])


def generate_augmentation(
    data: InteractionData,
    scorer: Scorer,
    backend: LLMBackend,
    out: str | Path,
    settings: GenerationSettings | None = None,
    work_dir: str | Path | None = None,
    cache: ResponseCache | str | Path | None = None,
    base_run: dict[str, Any] | None = None,
    progress: bool = True,
    command: str = "",
) -> GenerationReport:
    """Ask ``backend`` for a liked/disliked candidate per sampled user and write the edge file ``out``.

    Args:
        data: the split the base model was trained on (its ``train`` matrix and ``item_info``).
        scorer: ``users [B] -> scores [B, n_items]`` of the base model (``model.scorer()``).
        backend: any ``kg`` backend (embedded, transformers, openai-compatible, or a fake).
        out: the edge file to write (JSONL, see :mod:`graphrec.augmentation.edges`).
        settings: sampling and prompt settings.
        work_dir: where the journal (and by default the response cache) live; default
            ``<out>.work/``.  Resuming needs the same folder and settings.
        cache: a :class:`kg.llm.cache.ResponseCache` or its path; default ``<work_dir>/cache.sqlite``.
        base_run: provenance of the base model (path, model name, seed, checkpoint digest).
        progress: show a tqdm bar.
        command: the command line, recorded in the header.

    Raises:
        kg.errors.BackendUnavailable: the backend went away; everything answered so far is
            journaled and cached, so running again continues where it stopped.
    """
    out = Path(out)
    work = Path(work_dir) if work_dir is not None else out.with_name(out.name + ".work")
    # one writer per work folder: two runs would ask every user twice and journal them twice
    with folder_lock(work, "augmentation work folder"):
        return _generate_locked(
            data, scorer, backend, out, settings, work, cache, base_run, progress, command
        )


def _generate_locked(
    data: InteractionData,
    scorer: Scorer,
    backend: LLMBackend,
    out: Path,
    settings: GenerationSettings | None,
    work: Path,
    cache: ResponseCache | str | Path | None,
    base_run: dict[str, Any] | None,
    progress: bool,
    command: str,
) -> GenerationReport:
    """:func:`generate_augmentation` once ``work``'s lock is held."""
    settings = settings or GenerationSettings()
    own_cache = not isinstance(cache, ResponseCache)
    response_cache = (
        cache if isinstance(cache, ResponseCache) else ResponseCache(cache or work / "cache.sqlite")
    )
    identity = backend.identity()
    fingerprint = _journal_fingerprint(data, identity, base_run, settings)
    journal = Journal(work / "journal.jsonl", fingerprint)
    run = _Generation(data, backend, settings, identity, journal, response_cache)
    start = time.perf_counter()
    try:
        users = sample_users(data.n_users, settings.users, settings.seed)
        candidates = top_unseen(scorer, data.train, users, settings.candidates)
        run.report.users = len(users)
        run.report.resumed_users = sum(journal.is_finished(data.user_ids[u]) for u in users)
        todo = [
            (int(u), c)
            for u, c in zip(users, candidates)
            if not journal.is_finished(data.user_ids[u])
        ]
        run.ask_all(todo, progress)
        report = run.report
        edges, rejected = _collect(journal, data, users, identity)
        report.edges = len(edges)
        report.rejected = rejected
        report.failed = sum(
            journal.records.get(str(data.user_ids[u]), {}).get("status") == "failed" for u in users
        )
        report.seconds = time.perf_counter() - start
        header = _header(data, fingerprint, identity, base_run, settings, report, command)
        write_edges(out, header, edges)
        log.info(
            "%d users -> %d augmented triplets (%s rejected: %s; %d failed); %d LLM calls, %d cache hits",
            report.users,
            report.edges,
            sum(rejected.values()),
            rejected,
            report.failed,
            report.llm_calls,
            report.cache_hits,
        )
        return report
    finally:
        journal.close()
        if own_cache:
            response_cache.close()


def _journal_fingerprint(
    data: InteractionData,
    identity: dict[str, Any],
    base_run: dict[str, Any] | None,
    settings: GenerationSettings,
) -> dict[str, Any]:
    """What a journal's answers depend on: resuming under another fingerprint starts afresh."""
    return {
        "prompt_version": PROMPT_VERSION,
        "backend": identity,
        "data_fingerprint": data_fingerprint(data),
        "base_run": (base_run or {}).get("weights_sha256", (base_run or {}).get("path")),
        # the sample size is left out: samples are prefixes of one seeded permutation, so a run
        # can be extended (or cut short and finalised) with another --users over the same journal
        "settings": {k: v for k, v in asdict(settings).items() if k != "users"},
    }


def _header(
    data: InteractionData,
    fingerprint: dict[str, Any],
    identity: dict[str, Any],
    base_run: dict[str, Any] | None,
    settings: GenerationSettings,
    report: GenerationReport,
    command: str,
) -> dict[str, Any]:
    """The edge file's header: provenance of every triplet and the run's counts."""
    return {
        "dataset": data.name,
        "data_fingerprint": fingerprint["data_fingerprint"],
        "prompt_version": PROMPT_VERSION,
        "backend": identity,
        "base_run": base_run or {},
        "settings": asdict(settings),
        "counts": {
            "users": report.users,
            "edges": report.edges,
            "rejected": report.rejected,
            "failed": report.failed,
            "acceptance": round(report.acceptance, 4),
        },
        "created": _now(),
        "command": command,
    }


Prompt = tuple[list[dict[str, str]], np.ndarray, list[str]]


@dataclass
class _Generation:
    """The asking part of one generation run: prompts in batches, replies cached and journaled."""

    data: InteractionData
    backend: LLMBackend
    settings: GenerationSettings
    identity: dict[str, Any]
    journal: Journal
    cache: ResponseCache
    report: GenerationReport = field(default_factory=GenerationReport)

    def ask_all(self, todo: list[tuple[int, np.ndarray]], progress: bool) -> None:
        """Ask about every ``(user, candidates)`` of ``todo`` in the backend's batch size."""
        bar = tqdm(
            total=self.report.users,
            initial=self.report.resumed_users,
            desc="augmentation",
            unit="user",
            disable=None if progress else True,
        )
        batch_size = max(1, int(getattr(self.backend, "max_batch", 1)))
        for offset in range(0, len(todo), batch_size):
            group = todo[offset : offset + batch_size]
            prompts = [_user_prompt(self.data, u, c, self.settings) for u, c in group]
            keys = [
                cache_key(self.identity, PROMPT_VERSION, CACHE_NAMESPACE, p[0]) for p in prompts
            ]
            replies = self._replies(prompts, keys)
            unavailable = self._record(group, prompts, keys, replies, bar)
            done = [r for r in self.journal.finished()]
            bar.set_postfix(
                edges=sum(r["status"] == "done" for r in done), calls=self.report.llm_calls
            )
            if unavailable is not None:
                bar.close()
                raise unavailable
        bar.close()

    def _replies(
        self, prompts: list[Prompt], keys: list[str]
    ) -> list[Completion | BackendError | None]:
        """The cached reply of each prompt, the backend's for those not cached (new answers are cached)."""
        replies: list[Completion | BackendError | None] = [self.cache.get(k) for k in keys]
        self.report.cache_hits += sum(r is not None for r in replies)
        missing = [i for i, r in enumerate(replies) if r is None]
        if missing:
            answers = self.backend.complete_batch(
                [prompts[i][0] for i in missing],
                max_tokens=self.settings.max_tokens,
                json_mode=True,
            )
            self.report.llm_calls += len(missing)
            for i, answer in zip(missing, answers):
                replies[i] = answer
                if isinstance(answer, Completion):
                    self.cache.put(keys[i], answer, model=str(self.identity.get("model", "")))
        return replies

    def _record(
        self,
        group: list[tuple[int, np.ndarray]],
        prompts: list[Prompt],
        keys: list[str],
        replies: list[Completion | BackendError | None],
        bar: tqdm,
    ) -> BackendError | None:
        """Journal each user's outcome; returns the error that stops the run, if one came back."""
        data, journal = self.data, self.journal
        unavailable: BackendError | None = None
        for (user, _), (_messages, shown, titles), key, reply in zip(group, prompts, keys, replies):
            raw_user = str(data.user_ids[user])
            # unreachable, or a failure every call would share (e.g. HTTP 401): stop, journal nothing,
            # so the next run asks again instead of recording every user as failed
            if isinstance(reply, BackendUnavailable) or (
                isinstance(reply, BackendError) and getattr(reply, "stops_build", False)
            ):
                unavailable = reply
                continue
            if isinstance(reply, BackendError) or reply is None:
                self.report.failed += 1
                journal.record(raw_user, "failed", error=str(reply)[:300])
                continue
            outcome = _parse(reply.text, titles)
            common = {
                "candidates": [str(data.item_ids[i]) for i in shown],
                "cache_key": key,
                "response": reply.text[:500],
                "time": _now(),
            }
            if isinstance(outcome, Choice):
                journal.record(
                    raw_user,
                    "done",
                    pos=str(data.item_ids[shown[outcome.like]]),
                    neg=str(data.item_ids[shown[outcome.dislike]]),
                    **common,
                )
            else:
                journal.record(
                    raw_user, "skipped", reason=outcome.reason, detail=outcome.detail, **common
                )
            bar.update(1)
        return unavailable


def _parse(text: str, titles: Sequence[str]) -> Choice | Rejection:
    """:func:`parse_choice`, which never raises; should it ever, the reply is a rejection, not a crash."""
    try:
        return parse_choice(text, titles)
    except Exception as exc:  # noqa: BLE001 - a cached reply would replay the crash on every rerun
        log.error("parser error on a reply (%s: %s); rejected", type(exc).__name__, str(exc)[:200])
        return Rejection("no_answer", f"parser error: {type(exc).__name__}")


def _collect(
    journal: Journal, data: InteractionData, users: Sequence[int] | np.ndarray, identity: dict
) -> tuple[list[dict], dict]:
    edges: list[dict] = []
    rejected: Counter = Counter({reason: 0 for reason in REASONS})
    for user in users:
        record = journal.records.get(str(data.user_ids[user]))
        if record is None:
            continue
        if record["status"] == "done":
            edges.append(
                {
                    "user": record["item_id"],
                    "pos": record["pos"],
                    "neg": record["neg"],
                    "candidates": record["candidates"],
                    "backend": identity,
                    "prompt_version": PROMPT_VERSION,
                    "time": record["time"],
                    "cache_key": record["cache_key"],
                    "response": record["response"],
                }
            )
        elif record["status"] == "skipped":
            rejected[record["reason"]] += 1
    return edges, dict(rejected)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def base_run_provenance(run_dir: str | Path) -> dict[str, Any]:
    """Path, model, seed, best epoch and checkpoint digest of a finished run (for provenance)."""
    run_dir = Path(run_dir)
    results_path = run_dir / "results.json"
    results = json.loads(results_path.read_text(encoding="utf-8")) if results_path.exists() else {}
    best = run_dir / "checkpoints" / "best.pt"
    digest = weights = None
    if best.exists():
        digest = hashlib.sha256(best.read_bytes()).hexdigest()
        # the file's bytes differ between two trainings with identical weights: hash the values
        state = load_checkpoint(best)["model_state"]
        hasher = hashlib.sha256()
        for key in sorted(state):
            hasher.update(key.encode("utf-8"))
            hasher.update(state[key].detach().cpu().contiguous().numpy().tobytes())
        weights = hasher.hexdigest()
    config = load_config(run_dir / "config.yaml")
    return {
        "path": str(run_dir),
        "model": config.model.name,
        "seed": config.train.seed,
        "best_epoch": results.get("best_epoch"),
        "test": {
            k: v for k, v in (results.get("test") or {}).items() if k in ("recall@20", "ndcg@20")
        },
        "checkpoint_sha256": digest,
        "weights_sha256": weights,
    }
