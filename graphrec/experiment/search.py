"""Hyper-parameter search: grid, random and Bayesian (Optuna TPE), resumable, with pruning.

A search file (``configs/search/*.yaml``; keys documented on :class:`SearchConfig`)::

    name: lightgcn-amazon
    base: ../rlmrec-amazon-book/lightgcn.yaml   # the run config every trial starts from
    method: tpe                                   # tpe | random | grid
    n_trials: 30
    metric: recall@20                             # validation metric (selection never sees test)
    pruner: {kind: median, startup_trials: 5, warmup_epochs: 9}
    enqueue:                                      # evaluated first, e.g. the paper's settings
      - {train.learning_rate: 1.0e-3, train.l2_weight: 1.0e-7}
    space:
      train.learning_rate: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
      model.num_layers: {type: int, low: 1, high: 4}

How it works and why:

* **Selection on validation only**: a trial's value is the best validation
  ``metric`` over its epochs (the trainer's early stopping selects the epoch on
  validation too).  Test metrics are computed by the trainer but never read by the
  search; only the chosen config's test numbers are copied into ``best.json``.
* **Every trial trains with the same seed** (``train.seed`` of the base config),
  so differences come from the hyper-parameters, not from initialisation luck.
* **Pruning**: each validation check is reported to Optuna's pruner (median by
  default); a trial worse than the median of earlier trials at the same epoch is
  stopped (state ``PRUNED``).
* **On disk and resumable**: the study lives in ``<out_dir>/<name>/study.journal``
  (Optuna's append-only journal storage).  A trial's run directory is named after
  a hash of its parameters, so a trial interrupted by Ctrl-C or ``kill -9`` is
  queued again on the next call with the same parameters and its training resumes
  from the last epoch checkpoint.  ``n_trials`` counts finished trials (complete,
  pruned or failed with an error) over all calls.
* **Output**: ``best.yaml`` (a complete run config: ``python train.py --config
  best.yaml``), ``best.json`` (value, parameters, trial, run directory), and
  ``trials.json`` (every trial), all rewritten atomically after each trial;
  ``search.jsonl`` logs every event.

Optuna is imported only here (``pip install optuna``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from graphrec.config import RunConfig, dump_config
from graphrec.config_schema import doc, from_dict, parse_override, to_dict
from graphrec.data.dataset import InteractionData
from graphrec.data.loader import load_data
from graphrec.errors import ConfigError, GraphrecError, TrainingError
from graphrec.evaluation import markdown_table
from graphrec.experiment.config import (
    config_differences,
    dataclass_reference,
    flatten,
    merge_tree,
    read_yaml_mapping,
)
from graphrec.experiment.logs import EventLog, progress_bar, tensorboard_callback
from graphrec.experiment.runs import run_or_load
from graphrec.experiment.space import ParamSpec, grid_size, grid_values, parse_space, suggest
from graphrec.io import atomic_write_json, atomic_write_text, read_jsonl
from graphrec.optional import require

__all__ = [
    "PrunerConfig",
    "SearchConfig",
    "SearchResult",
    "load_search_config",
    "run_search",
    "load_search",
]

log = logging.getLogger(__name__)


@dataclass
class PrunerConfig:
    """Early stopping of unpromising trials (Optuna pruners)."""

    kind: Literal["median", "percentile", "hyperband", "none"] = doc(
        "`median` (stop a trial below the median of earlier trials at the same epoch), "
        "`percentile`, `hyperband`, or `none`.",
        "median",
    )
    startup_trials: int = doc(
        "Trials that are never pruned (the pruner needs references first).", 5
    )
    warmup_epochs: int = doc("Epochs before a trial can be pruned (noisy early checks).", 0)
    percentile: float = doc("Percentile for `kind: percentile` (25 = keep the top 75%).", 25.0)


@dataclass
class SearchConfig:
    """A hyper-parameter search over run-config keys."""

    name: str | None = doc(
        "Search name; the study and trials go to `<out_dir>/<name>`. null = the YAML file's stem.",
        None,
    )
    out_dir: str = doc("Parent directory of search directories.", "runs/search")
    description: str = doc("Free text shown in the report.", "")
    base: str | list[str] | None = doc(
        "Run-config YAML file(s) every trial starts from (relative to the search file).", None
    )
    set: list[str] = doc(
        "Overrides `section.key=value` applied to the base config.", default_factory=list
    )
    method: Literal["tpe", "random", "grid"] = doc(
        "Sampler: `tpe` (Bayesian, Optuna's TPE), `random`, or `grid` (every combination).", "tpe"
    )
    n_trials: int | None = doc(
        "Total finished trials over all calls; null = the whole grid (grid) / until the timeout.",
        20,
    )
    timeout_s: float | None = doc(
        "Stop starting new trials after this many seconds of this call; null = no limit.", None
    )
    seed: int = doc(
        "Seed of the sampler (trials always train with the base config's `train.seed`).", 0
    )
    startup_trials: int = doc(
        "TPE: random trials before the model of good and bad regions is used.", 10
    )
    metric: str | None = doc(
        "Validation metric to optimise; null = the base config's `train.select_metric`. Also set "
        "as the trials' `train.select_metric`.",
        None,
    )
    direction: Literal["maximize", "minimize"] = doc(
        "Optimisation direction of `metric`.", "maximize"
    )
    pruner: PrunerConfig = doc("Pruning of bad trials.", default_factory=PrunerConfig)
    enqueue: list[Any] = doc(
        "Parameter sets `{key: value}` tried first (e.g. the paper's settings); only when the study is new.",
        default_factory=list,
    )
    keep_checkpoints: bool = doc(
        "Keep every finished trial's checkpoints (false: delete them, keep metrics and per-user results).",
        False,
    )
    tensorboard: bool = doc(
        "Log each trial's epochs to TensorBoard (`<search>/tensorboard/`), when installed.", False
    )
    space: Any = doc(
        "Mapping run-config key -> parameter (see `ParamSpec`): `{type: float, low: 1e-4, high: "
        "1e-2, log: true}`, `{type: int, ...}`, or a list of choices.",
        None,
    )

    source: Path | None = field(
        default=None, init=False, repr=False, metadata={"doc": "(internal) the YAML file read"}
    )

    def validate(self, prefix: str) -> None:
        if self.n_trials is not None and self.n_trials < 1:
            raise ConfigError(f"n_trials: must be >= 1 or null, got {self.n_trials}")
        for i, entry in enumerate(self.enqueue):
            if not isinstance(entry, dict):
                raise ConfigError(f"enqueue[{i}]: expected a mapping key -> value, got {entry!r}")

    @property
    def search_name(self) -> str:
        if self.name:
            return self.name
        if self.source is not None:
            return self.source.stem
        raise ConfigError("name: a search built in Python needs a name")

    @property
    def directory(self) -> Path:
        return Path(self.out_dir) / self.search_name

    @property
    def params(self) -> dict[str, ParamSpec]:
        return parse_space(self.space)


@dataclass
class SearchResult:
    """Outcome of a search so far (everything also on disk)."""

    directory: Path
    metric: str
    direction: str
    best_value: float | None
    best_params: dict[str, Any]
    best_trial: int | None
    best_run_dir: str | None
    best_config_path: Path | None
    trials: list[dict]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for t in self.trials:
            out[t["state"]] = out.get(t["state"], 0) + 1
        return out

    def table(self, top: int = 10) -> str:
        """Markdown table of the best ``top`` finished trials (complete first, by value)."""
        keys = sorted({k for t in self.trials for k in t["params"]})
        done = [
            t
            for t in self.trials
            if t["state"] in ("COMPLETE", "PRUNED") and t["value"] is not None
        ]
        sign = -1 if self.direction == "maximize" else 1
        done.sort(key=lambda t: (t["state"] != "COMPLETE", sign * t["value"]))
        header = ["trial", "state", f"valid {self.metric}", "epochs", *keys]
        body = [
            [
                str(t["number"]),
                t["state"].lower(),
                f"{t['value']:.4f}",
                str(t.get("epochs_run") or "-"),
                *(_fmt_param(t["params"].get(k)) for k in keys),
            ]
            for t in done[:top]
        ]
        return "\n".join(markdown_table(header, body, right_from=2))


def _fmt_param(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return "-" if value is None else str(value)


# --------------------------------------------------------------------------- config
def load_search_config(path: str | Path, overrides: Sequence[str] = ()) -> SearchConfig:
    """Load a search YAML file; ``overrides`` (``key=value``) change search keys, e.g. ``n_trials=5``."""
    path = Path(path)
    tree = read_yaml_mapping(path)
    for text in overrides:
        keys, value = parse_override(text)
        node = tree
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
    try:
        config = from_dict(SearchConfig, tree)
        _ = config.params  # validate the space, naming the file
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from err
    config.source = path
    return config


def base_tree(config: SearchConfig, run_overrides: Sequence[str] = ()) -> dict:
    """The run-config tree every trial starts from (base files, then ``set``, then ``run_overrides``)."""
    files = (
        []
        if config.base is None
        else ([config.base] if isinstance(config.base, str) else list(config.base))
    )
    tree: dict = {}
    for name in files:
        path = Path(name)
        if not path.is_absolute() and config.source is not None:
            path = config.source.parent / path
        if not path.is_file():
            raise ConfigError(
                f"{config.source or 'search'}: base: config file {name!r} not found (looked at {path})"
            )
        merge_tree(tree, read_yaml_mapping(path))
    for text in [*config.set, *run_overrides]:
        keys, value = parse_override(text)
        _set(tree, keys, value)
    return tree


def _set(tree: dict, keys: Sequence[str], value: Any) -> None:
    node = tree
    for key in keys[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ConfigError(f"cannot set '{'.'.join(keys)}': '{key}' is not a section")
    node[keys[-1]] = value


def trial_name(params: dict[str, Any]) -> str:
    """Run directory name of a parameter set: the same parameters always map to the same run."""
    text = json.dumps({k: params[k] for k in sorted(params)}, sort_keys=True, default=str)
    return "trial-" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:10]


def trial_config(tree: dict, params: dict[str, Any], directory: Path, metric: str) -> RunConfig:
    """The run config of one trial: the base tree with ``params`` set (keys are run-config keys)."""
    tree = json.loads(json.dumps(tree))  # deep copy of plain YAML data
    for key, value in params.items():
        _set(tree, key.split("."), value)
    _set(tree, ["train", "select_metric"], metric)
    tree["out_dir"] = str(directory / "trials")
    tree["name"] = trial_name(params)
    try:
        return from_dict(RunConfig, tree)
    except ConfigError as err:
        raise ConfigError(f"search space: {err}") from err


# --------------------------------------------------------------------------- optuna plumbing
def _optuna():
    require("optuna", "hyper-parameter search")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def _storage(directory: Path):
    _optuna()
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    directory.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(directory / "study.journal")))


def _sampler(config: SearchConfig, offset: int):
    optuna = _optuna()
    # Re-seeding with the same seed after a resume would replay the first random
    # suggestions (duplicate trials): offset the seed by the trials already run.
    seed = config.seed + offset
    if config.method == "grid":
        space = {k: grid_values(s, k) for k, s in config.params.items()}
        return optuna.samplers.GridSampler(space, seed=seed)
    if config.method == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=config.startup_trials)


def _pruner(config: PrunerConfig):
    optuna = _optuna()
    if config.kind == "none":
        return optuna.pruners.NopPruner()
    if config.kind == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=config.startup_trials, n_warmup_steps=config.warmup_epochs
        )
    if config.kind == "percentile":
        return optuna.pruners.PercentilePruner(
            config.percentile,
            n_startup_trials=config.startup_trials,
            n_warmup_steps=config.warmup_epochs,
        )
    return optuna.pruners.HyperbandPruner(min_resource=max(1, config.warmup_epochs))


class _Lock:
    """One process per study: a lock file holding the owner's pid (stale locks are taken over)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> _Lock:
        if self.path.exists():
            try:
                pid = int(self.path.read_text().strip() or 0)
            except ValueError:
                pid = 0
            if pid and pid != os.getpid() and _alive(pid):
                raise GraphrecError(
                    f"{self.path}: another search (pid {pid}) is running on this study"
                )
        atomic_write_text(self.path, str(os.getpid()))
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _trial_rows(study) -> list[dict]:
    rows = []
    for t in study.get_trials(deepcopy=False):
        value = t.value
        if value is None and t.intermediate_values:
            value = t.intermediate_values[max(t.intermediate_values)]
        rows.append(
            {
                "number": t.number,
                "state": t.state.name,
                "value": value,
                "params": dict(t.params),
                "epochs_run": t.user_attrs.get("epochs_run")
                or (max(t.intermediate_values) if t.intermediate_values else None),
                "best_epoch": t.user_attrs.get("best_epoch"),
                "train_seconds": t.user_attrs.get("train_seconds"),
                "run_dir": t.user_attrs.get("run_dir"),
                "error": t.user_attrs.get("error"),
                "intermediate": {str(k): v for k, v in sorted(t.intermediate_values.items())},
                "start": t.datetime_start.isoformat() if t.datetime_start else None,
                "end": t.datetime_complete.isoformat() if t.datetime_complete else None,
            }
        )
    return rows


def _finished_count(study) -> int:
    optuna = _optuna()
    states = optuna.trial.TrialState
    return sum(
        1
        for t in study.get_trials(deepcopy=False)
        if t.state in (states.COMPLETE, states.PRUNED)
        or (t.state == states.FAIL and t.user_attrs.get("error"))
    )


def _requeue_interrupted(study, events: EventLog) -> int:
    """Mark trials left RUNNING by a killed process as failed and queue their parameters again."""
    optuna = _optuna()
    states = optuna.trial.TrialState
    trials = study.get_trials(deepcopy=False)
    for t in trials:
        if t.state == states.RUNNING:  # the lock guarantees no live process owns it
            study.tell(t.number, state=states.FAIL, skip_if_finished=True)
            events.write("trial_interrupted", number=t.number, params=dict(t.params))
    trials = study.get_trials(deepcopy=False)
    queued = 0
    for t in trials:
        if t.state != states.FAIL or t.user_attrs.get("error") or not t.params:
            continue
        later = [u for u in trials if u.number > t.number and u.params == t.params]
        waiting = [
            u
            for u in trials
            if u.state == states.WAITING and all(u.params.get(k) == v for k, v in t.params.items())
        ]
        if not later and not waiting:
            study.enqueue_trial(dict(t.params), user_attrs={"requeued_from": t.number})
            trials = study.get_trials(deepcopy=False)
            queued += 1
            events.write("trial_requeued", number=t.number, params=dict(t.params))
    return queued


def _snapshot(config: SearchConfig, tree: dict, metric: str) -> dict:
    """What a resumed study must share with the call that created it."""
    base = flatten(to_dict(from_dict(RunConfig, json.loads(json.dumps(tree)))))
    return {
        "method": config.method,
        "metric": metric,
        "direction": config.direction,
        "space": {k: to_dict(v) for k, v in config.params.items()},
        "base": {
            k: v
            for k, v in base.items()
            if k
            not in (
                "name",
                "out_dir",
                "train.progress",
                "train.num_threads",
                "train.resume",
                "train.device",
                "eval.batch_size",
            )
        },
    }


# --------------------------------------------------------------------------- search
def run_search(
    config: SearchConfig | str | Path,
    run_overrides: Sequence[str] = (),
    n_trials: int | None = None,
    timeout_s: float | None = None,
    data: InteractionData | None = None,
    quiet: bool = False,
) -> SearchResult:
    """Run (or resume) a search until ``n_trials`` trials have finished in total.

    Args:
        config: a :class:`SearchConfig` or the path of a search YAML file.
        run_overrides: ``section.key=value`` applied to every trial's run config
            (e.g. ``train.num_threads=1``); keys that change results are part of the
            study's identity and must stay the same across resumed calls.
        n_trials, timeout_s: override the config's values for this call.
        data: the loaded split (default: loaded from the base config).
        quiet: no progress bars.
    """
    optuna = _optuna()
    if not isinstance(config, SearchConfig):
        config = load_search_config(config)
    timeout = timeout_s if timeout_s is not None else config.timeout_s
    n_total = _trial_budget(config, n_trials, timeout)
    tree = base_tree(config, run_overrides)
    directory = config.directory
    probe, metric = _checked_probe(config, tree)
    directory.mkdir(parents=True, exist_ok=True)
    _record_study(config, tree, metric)
    events = EventLog(directory / "search.jsonl")
    with _Lock(directory / "search.lock"):
        study = _open_study(optuna, config)
        requeued = _requeue_interrupted(study, events)
        done = _finished_count(study)
        remaining = None if n_total is None else max(0, n_total - done)
        events.write(
            "search_started",
            name=config.search_name,
            method=config.method,
            metric=metric,
            finished=done,
            remaining=remaining,
            requeued=requeued,
        )
        objective: _Objective | None = None
        if remaining != 0:
            if data is None:
                data = load_data(probe.data)
            objective = _Objective(config, tree, directory, metric, data, events, quiet)
        bar = progress_bar(
            n_total or 0, f"search {config.search_name}", quiet=quiet, initial=done, unit="trial"
        )

        def after_trial(study, frozen) -> None:
            _write_outputs(config, study, tree, directory, metric)
            bar.update(1)
            try:
                bar.set_postfix_str(f"best {study.best_value:.4f}")
            except ValueError:
                pass

        try:
            if objective is not None:
                study.optimize(
                    objective,
                    n_trials=remaining,
                    timeout=timeout,
                    catch=(TrainingError,),
                    callbacks=[after_trial],
                )
        finally:
            bar.close()
            result = _write_outputs(config, study, tree, directory, metric)
            events.write(
                "search_finished",
                best_value=result.best_value,
                best_trial=result.best_trial,
                counts=result.counts(),
            )
    return result


def _trial_budget(config: SearchConfig, n_trials: int | None, timeout: float | None) -> int | None:
    """Trials to finish in total (a grid has at most its size); random and TPE need a bound."""
    n_total = n_trials if n_trials is not None else config.n_trials
    if config.method == "grid":
        size = grid_size(config.params)
        n_total = size if n_total is None else min(n_total, size)
    elif n_total is None and timeout is None:
        raise ConfigError("n_trials: give n_trials or timeout_s for random and TPE search")
    return n_total


def _checked_probe(config: SearchConfig, tree: dict) -> tuple[RunConfig, str]:
    """The base trial's run config and the selection metric, once the metric, every space key
    and every enqueued trial are known to fit the run config (before the first trial)."""
    space = config.params
    directory = config.directory
    probe = trial_config(tree, {}, directory, config.metric or "recall@20")
    metric = config.metric or probe.train.select_metric
    name, _, k = metric.partition("@")
    if name not in probe.eval.metrics or not k.isdigit() or int(k) not in probe.eval.ks:
        raise ConfigError(
            f"metric: {metric!r} is not computed by the base config (eval.metrics x eval.ks)"
        )
    for key in space:  # fail before the first trial on a key that is not a run-config key
        trial_config(tree, {key: _example_value(space[key], key)}, directory, metric)
    for i, entry in enumerate(config.enqueue):
        unknown = [k for k in entry if k not in space]
        if unknown:
            raise ConfigError(
                f"enqueue[{i}]: {', '.join(unknown)} not in the search space ({', '.join(space)})"
            )
    return probe, metric


def _record_study(config: SearchConfig, tree: dict, metric: str) -> None:
    """Write ``search.json``; a study created by another search under this name is refused."""
    directory = config.directory
    snapshot = _snapshot(config, tree, metric)
    snap_path = directory / "search.json"
    if snap_path.exists():
        saved = json.loads(snap_path.read_text(encoding="utf-8"))
        diff = config_differences(saved.get("study", {}), snapshot, ignore=frozenset())
        if diff:
            raise ConfigError(
                f"{directory}: the search changed since its study was created ({', '.join(diff)}); "
                "use a new search name (or delete the directory) to start over"
            )
    atomic_write_json(
        snap_path,
        {
            "study": snapshot,
            "name": config.search_name,
            "description": config.description,
            "source": None if config.source is None else str(config.source),
        },
    )


def _open_study(optuna: Any, config: SearchConfig) -> Any:
    """Load or create the Optuna study (a new one gets the enqueued trials first)."""
    storage = _storage(config.directory)
    existing = (
        optuna.load_study(study_name=config.search_name, storage=storage)
        if config.search_name in optuna.study.get_all_study_names(storage)
        else None
    )
    offset = 0 if existing is None else len(existing.get_trials(deepcopy=False))
    study = optuna.create_study(
        study_name=config.search_name,
        storage=storage,
        load_if_exists=True,
        direction=config.direction,
        sampler=_sampler(config, offset),
        pruner=_pruner(config.pruner),
    )
    if existing is None:
        for entry in config.enqueue:
            study.enqueue_trial(dict(entry), user_attrs={"enqueued": True})
    return study


def _example_value(spec: ParamSpec, key: str) -> Any:
    if spec.type == "categorical":
        return spec.choices[0]
    if spec.values:
        return int(spec.values[0]) if spec.type == "int" else float(spec.values[0])
    low, _ = spec.bounds(key)
    return int(low) if spec.type == "int" else float(low)


class _Objective:
    """Train one trial's config; report validation checks for pruning; return the best validation value."""

    def __init__(
        self,
        config: SearchConfig,
        tree: dict,
        directory: Path,
        metric: str,
        data: InteractionData,
        events: EventLog,
        quiet: bool,
    ) -> None:
        self.config, self.tree, self.directory, self.metric = config, tree, directory, metric
        self.data, self.events, self.quiet = data, events, quiet
        self.grid = config.method == "grid"

    def __call__(self, trial) -> float:
        optuna = _optuna()
        params = {
            key: suggest(trial, key, spec, self.grid) for key, spec in self.config.params.items()
        }
        run_config = trial_config(self.tree, params, self.directory, self.metric)
        if self.quiet:
            run_config.train.progress = False
        trial.set_user_attr("run_dir", str(run_config.run_dir))
        self.events.write(
            "trial_started", number=trial.number, params=params, run_dir=str(run_config.run_dir)
        )
        started = time.perf_counter()
        metric = self.metric

        callbacks = self._callbacks(trial, run_config, optuna)
        try:
            record, reused = run_or_load(
                run_config,
                self.data,
                callbacks,
                hint="the search's base config changed: start a new search",
            )
        except optuna.TrialPruned as pruned:
            self.events.write(
                "trial_pruned",
                number=trial.number,
                params=params,
                reason=str(pruned),
                seconds=round(time.perf_counter() - started, 3),
            )
            self._cleanup(run_config)
            raise
        except TrainingError as err:
            trial.set_user_attr("error", str(err))
            self.events.write("trial_failed", number=trial.number, params=params, error=str(err))
            self._cleanup(run_config)
            raise
        except KeyboardInterrupt:
            self.events.write("trial_interrupted", number=trial.number, params=params)
            raise
        value = float(record.metrics("valid")[metric])
        trial.set_user_attr("best_epoch", record.best_epoch)
        trial.set_user_attr("epochs_run", record.epochs_run)
        trial.set_user_attr("train_seconds", round(record.train_seconds, 3))
        trial.set_user_attr("reused", reused)
        self.events.write(
            "trial_finished",
            number=trial.number,
            params=params,
            value=value,
            best_epoch=record.best_epoch,
            epochs_run=record.epochs_run,
            reused=reused,
            seconds=round(time.perf_counter() - started, 3),
        )
        self._cleanup(run_config)
        return value

    def _callbacks(
        self, trial: Any, run_config: RunConfig, optuna: Any
    ) -> list[Callable[[dict], None]]:
        """Epoch callbacks of a trial's training: validation checks go to the pruner (a run
        interrupted earlier, same parameters = same directory, first replays its history so the
        pruner sees every check), and to TensorBoard when the search asks for it."""
        metric = self.metric
        resumable = (run_config.run_dir / "checkpoints" / "last.pt").exists() or (
            run_config.run_dir / "results.json"
        ).exists()
        if resumable and (run_config.run_dir / "metrics.jsonl").exists():
            for record in read_jsonl(run_config.run_dir / "metrics.jsonl"):
                if "valid" in record and metric in record["valid"]:
                    trial.report(float(record["valid"][metric]), int(record["epoch"]))

        def prune(record: dict) -> None:
            if "valid" not in record:
                return
            trial.report(float(record["valid"][metric]), int(record["epoch"]))
            if trial.should_prune():
                raise optuna.TrialPruned(
                    f"pruned at epoch {record['epoch']}: "
                    f"valid {metric}={record['valid'][metric]:.4f}"
                )

        callbacks: list[Callable[[dict], None]] = [prune]
        if self.config.tensorboard:
            cb = tensorboard_callback(self.directory / "tensorboard" / run_config.run_name)
            if cb is not None:
                callbacks.append(cb)
        return callbacks

    def _cleanup(self, run_config: RunConfig) -> None:
        if not self.config.keep_checkpoints:
            shutil.rmtree(run_config.run_dir / "checkpoints", ignore_errors=True)


def _write_outputs(
    config: SearchConfig, study, tree: dict, directory: Path, metric: str
) -> SearchResult:
    """Rewrite ``trials.json``, ``best.json`` and ``best.yaml`` from the study (atomically)."""
    optuna = _optuna()
    rows = _trial_rows(study)
    atomic_write_json(
        directory / "trials.json", {"metric": metric, "direction": config.direction, "trials": rows}
    )
    complete = [
        t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE
    ]
    result = SearchResult(
        directory=directory,
        metric=metric,
        direction=config.direction,
        best_value=None,
        best_params={},
        best_trial=None,
        best_run_dir=None,
        best_config_path=None,
        trials=rows,
    )
    if not complete:
        return result
    best = study.best_trial
    best_config = trial_config(tree, dict(best.params), directory, metric)
    best_config.name = f"{config.search_name}-best"
    best_config.out_dir = "runs"
    run_dir = best.user_attrs.get("run_dir")
    test = None
    results_path = Path(run_dir) / "results.json" if run_dir else None
    if results_path is not None and results_path.exists():
        test = json.loads(results_path.read_text(encoding="utf-8")).get("test")
    atomic_write_json(
        directory / "best.json",
        {
            "trial": best.number,
            "metric": f"valid {metric}",
            "direction": config.direction,
            "value": best.value,
            "params": dict(best.params),
            "run_dir": run_dir,
            "best_epoch": best.user_attrs.get("best_epoch"),
            "test_of_selected_config": test,
            "note": "selected on validation only; the test metrics of the selected trial are reported, never used",
        },
    )
    header = (
        f"# Best config of search '{config.search_name}' (trial {best.number}): valid {metric} = {best.value:.6f}\n"
        f"# parameters: {json.dumps(dict(best.params), sort_keys=True)}\n"
        f"# train it: python train.py --config {directory / 'best.yaml'}\n"
    )
    atomic_write_text(directory / "best.yaml", header + dump_config(best_config))
    result.best_value, result.best_params, result.best_trial = (
        float(best.value),
        dict(best.params),
        best.number,
    )
    result.best_run_dir, result.best_config_path = run_dir, directory / "best.yaml"
    return result


def load_search(directory: str | Path) -> SearchResult:
    """Read a search directory's ``trials.json`` and ``best.json`` (no optuna needed)."""
    directory = Path(directory)
    path = directory / "trials.json"
    if not path.is_file():
        raise ConfigError(f"{directory}: not a search directory (trials.json is missing)")
    info = json.loads(path.read_text(encoding="utf-8"))
    best = (
        json.loads((directory / "best.json").read_text(encoding="utf-8"))
        if (directory / "best.json").exists()
        else {}
    )
    return SearchResult(
        directory=directory,
        metric=info["metric"],
        direction=info["direction"],
        best_value=best.get("value"),
        best_params=best.get("params", {}),
        best_trial=best.get("trial"),
        best_run_dir=best.get("run_dir"),
        best_config_path=directory / "best.yaml" if (directory / "best.yaml").exists() else None,
        trials=info["trials"],
    )


def search_reference() -> str:
    """Markdown reference of the search file's keys."""
    lines: list[str] = []
    for cls, prefix in ((SearchConfig, ""), (PrunerConfig, "pruner."), (ParamSpec, "space.<key>.")):
        lines += [
            "",
            f"### {cls.__name__}",
            "",
            (cls.__doc__ or "").strip(),
            "",
            *dataclass_reference(cls, prefix),
        ]
    return "\n".join(lines).strip() + "\n"
