"""Hyper-parameter search: grid/random/TPE, validation-only selection, pruning, best config, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

pytest.importorskip("optuna")

from conftest import REPO  # noqa: E402

from graphrec.cli import evaluate as evaluate_cli  # noqa: E402
from graphrec.config import load_config  # noqa: E402
from graphrec.errors import ConfigError  # noqa: E402
from graphrec.experiment import search as search_mod  # noqa: E402
from graphrec.experiment.search import load_search_config, run_search, trial_name  # noqa: E402
from graphrec.io import read_jsonl  # noqa: E402

FAST = [
    "model.embedding_dim=16",
    "train.epochs=4",
    "train.eval_every=2",
    "train.patience=0",
    "train.batch_size=2048",
    "eval.batch_size=1024",
    "train.num_threads=1",
    "train.progress=false",
]


def write_search(path, out_dir, **tree):
    base = {
        "name": "s",
        "out_dir": str(out_dir),
        "base": str(REPO / "configs" / "ml-latest-small-tmdb" / "lightgcn.yaml"),
        "set": FAST,
        "pruner": {"kind": "none"},
    }
    base.update(tree)
    path.write_text(yaml.safe_dump(base, sort_keys=False), encoding="utf-8")
    return path


def states(result):
    return [t["state"] for t in sorted(result.trials, key=lambda t: t["number"])]


def test_grid_search_covers_the_grid_and_selects_on_validation(tmp_path, ml_data):
    path = write_search(
        tmp_path / "grid.yaml",
        tmp_path,
        method="grid",
        n_trials=None,
        space={
            "model.num_layers": [1, 2],
            "train.learning_rate": {"type": "float", "values": [0.002, 0.01]},
        },
    )
    result = run_search(path, data=ml_data, quiet=True)
    assert states(result) == ["COMPLETE"] * 4
    assert sorted(
        (t["params"]["model.num_layers"], t["params"]["train.learning_rate"]) for t in result.trials
    ) == [(1, 0.002), (1, 0.01), (2, 0.002), (2, 0.01)]
    # each trial's value is its run's best *validation* recall@20; the best trial is the argmax
    for t in result.trials:
        saved = json.loads(
            (tmp_path / "s" / "trials" / trial_name(t["params"]) / "results.json").read_text()
        )
        assert t["value"] == pytest.approx(saved["valid"]["recall@20"])
    best = max(result.trials, key=lambda t: t["value"])
    assert result.best_trial == best["number"] and result.best_params == best["params"]
    # best.yaml is a complete run config with the best parameters
    config = load_config(tmp_path / "s" / "best.yaml")
    assert config.model.num_layers == best["params"]["model.num_layers"]
    assert config.train.learning_rate == best["params"]["train.learning_rate"]
    assert config.model.embedding_dim == 16
    info = json.loads((tmp_path / "s" / "best.json").read_text())
    assert info["metric"] == "valid recall@20" and "recall@20" in info["test_of_selected_config"]
    # finished trials keep metrics and per-user results but not their checkpoints
    run = tmp_path / "s" / "trials" / trial_name(best["params"])
    assert (run / "per_user" / "test.npz").exists() and not (run / "checkpoints").exists()
    # a second call has nothing left to do
    again = run_search(path, data=ml_data, quiet=True)
    assert len(again.trials) == 4


def test_bad_trials_are_pruned(tmp_path, ml_data):
    good = {"train.learning_rate": 0.01}
    path = write_search(
        tmp_path / "p.yaml",
        tmp_path,
        method="random",
        n_trials=3,
        set=[*FAST, "train.epochs=6"],
        enqueue=[good, {"train.learning_rate": 0.009}, {"train.learning_rate": 1.0e-6}],
        pruner={"kind": "median", "startup_trials": 2, "warmup_epochs": 0},
        space={"train.learning_rate": {"type": "float", "low": 1.0e-6, "high": 0.02, "log": True}},
    )
    result = run_search(path, data=ml_data, quiet=True)
    assert states(result) == ["COMPLETE", "COMPLETE", "PRUNED"]
    pruned = sorted(result.trials, key=lambda t: t["number"])[2]
    assert (
        pruned["epochs_run"] == 2
    )  # stopped at its first validation check instead of running 6 epochs
    events = [e["event"] for e in read_jsonl(tmp_path / "s" / "search.jsonl")]
    assert "trial_pruned" in events


def test_interrupted_search_resumes_the_same_trial(tmp_path, ml_data, monkeypatch):
    path = write_search(
        tmp_path / "r.yaml",
        tmp_path,
        method="tpe",
        n_trials=3,
        startup_trials=2,
        seed=3,
        space={
            "train.learning_rate": {"type": "float", "low": 0.001, "high": 0.02, "log": True},
            "model.num_layers": {"type": "int", "low": 1, "high": 2},
        },
    )
    real = search_mod.run_or_load
    calls = []

    def interrupting(config, data, callbacks=(), **kw):
        calls.append(config.run_dir)
        if (
            len(calls) == 2
        ):  # Ctrl-C in the middle of the second trial, after its epoch-2 checkpoint

            def stop(record):
                if record["epoch"] == 2:
                    raise KeyboardInterrupt

            callbacks = [*callbacks, stop]
        return real(config, data, callbacks, **kw)

    monkeypatch.setattr(search_mod, "run_or_load", interrupting)
    with pytest.raises(KeyboardInterrupt):
        run_search(path, data=ml_data, quiet=True)
    interrupted_dir = calls[1]
    assert (interrupted_dir / "checkpoints" / "last.pt").exists()
    assert not (tmp_path / "s" / "search.lock").exists()
    monkeypatch.setattr(search_mod, "run_or_load", real)

    result = run_search(path, data=ml_data, quiet=True)
    by_number = sorted(result.trials, key=lambda t: t["number"])
    assert [t["state"] for t in by_number].count(
        "COMPLETE"
    ) == 3  # n_trials counts finished trials over both calls
    assert by_number[1]["state"] == "FAIL"
    requeued = [t for t in by_number[2:] if t["params"] == by_number[1]["params"]]
    assert len(requeued) == 1 and requeued[0]["state"] == "COMPLETE"
    # the requeued trial resumed the same run directory: its log has every epoch exactly once
    history = read_jsonl(interrupted_dir / "metrics.jsonl")
    assert [r["epoch"] for r in history] == [1, 2, 3, 4]
    events = [e["event"] for e in read_jsonl(tmp_path / "s" / "search.jsonl")]
    assert "trial_interrupted" in events and "trial_requeued" in events


def test_trial_left_running_by_a_killed_process_is_requeued(tmp_path, ml_data):
    """What ``kill -9`` leaves behind: a RUNNING trial in the study and a lock file of a dead process."""
    import optuna

    from graphrec.experiment.search import _storage

    path = write_search(
        tmp_path / "k.yaml",
        tmp_path,
        method="random",
        n_trials=2,
        seed=1,
        space={"train.learning_rate": {"type": "float", "low": 0.001, "high": 0.02, "log": True}},
    )
    run_search(path, data=ml_data, quiet=True, n_trials=1)
    study = optuna.load_study(study_name="s", storage=_storage(tmp_path / "s"))
    orphan = study.ask()
    lr = orphan.suggest_float("train.learning_rate", 0.001, 0.02, log=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "s" / "search.lock").write_text(str(dead.pid))
    result = run_search(path, data=ml_data, quiet=True)
    by_number = sorted(result.trials, key=lambda t: t["number"])
    assert [t["state"] for t in by_number] == ["COMPLETE", "FAIL", "COMPLETE"]
    assert by_number[2]["params"] == {
        "train.learning_rate": lr
    }  # the orphan's parameters, run again
    events = [e["event"] for e in read_jsonl(tmp_path / "s" / "search.jsonl")]
    assert "trial_interrupted" in events and "trial_requeued" in events


def test_a_live_lock_refuses_a_second_search(tmp_path, ml_data):
    from graphrec.errors import GraphrecError

    path = write_search(
        tmp_path / "lock.yaml", tmp_path, method="grid", space={"model.num_layers": [1]}
    )
    (tmp_path / "s").mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (tmp_path / "s" / "search.lock").write_text(str(sleeper.pid))
        with pytest.raises(
            GraphrecError, match=f"another search \\(pid {sleeper.pid}\\) is running"
        ):
            run_search(path, data=ml_data, quiet=True)
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.mark.slow
def test_search_killed_with_sigkill_resumes(tmp_path):
    """A real `evaluate.py search` process killed mid-trial, then run again to completion (~1 min: `pytest -m slow`)."""
    path = write_search(
        tmp_path / "k.yaml",
        tmp_path,
        method="random",
        n_trials=3,
        seed=5,
        set=[*FAST, "train.epochs=6"],
        space={"train.learning_rate": {"type": "float", "low": 0.001, "high": 0.02, "log": True}},
    )
    cmd = [sys.executable, str(REPO / "evaluate.py"), "search", str(path), "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    log = tmp_path / "s" / "search.jsonl"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            events = read_jsonl(log) if log.exists() else []
            started = [e for e in events if e["event"] == "trial_started"]
            if (
                len(started) >= 2
                and (
                    tmp_path / "s" / "trials" / trial_name(started[1]["params"]) / "metrics.jsonl"
                ).exists()
            ):
                break
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.1)
        else:
            pytest.fail("the search never reached its second trial")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert (
        tmp_path / "s" / "search.lock"
    ).exists()  # left behind by the killed process: taken over below
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "best valid recall@20" in done.stdout
    trials = json.loads((tmp_path / "s" / "trials.json").read_text())["trials"]
    assert [t["state"] for t in trials].count("COMPLETE") == 3
    killed = [t for t in trials if t["state"] == "FAIL"]
    assert len(killed) == 1
    assert any(t["state"] == "COMPLETE" and t["params"] == killed[0]["params"] for t in trials)
    events = [e["event"] for e in read_jsonl(log)]
    assert "trial_interrupted" in events and "trial_requeued" in events


def test_search_config_errors(tmp_path, ml_data):
    path = write_search(
        tmp_path / "g.yaml",
        tmp_path,
        method="grid",
        space={"train.learning_rate": {"type": "float", "low": 0.001, "high": 0.01}},
    )
    with pytest.raises(ConfigError, match="grid search needs a finite set of values"):
        run_search(path, data=ml_data, quiet=True)
    path = write_search(tmp_path / "u.yaml", tmp_path, space={"model.layers": [1, 2]})
    with pytest.raises(ConfigError, match=r"unknown config key 'model.layers'.*num_layers"):
        run_search(path, data=ml_data, quiet=True)
    path = write_search(
        tmp_path / "l.yaml",
        tmp_path,
        space={"train.l2_weight": {"type": "float", "low": 0, "high": 1, "log": True}},
    )
    with pytest.raises(ConfigError, match=r"l.yaml.*log scale needs low > 0"):
        load_search_config(path)
    path = write_search(
        tmp_path / "m.yaml", tmp_path, metric="recall@50", space={"model.num_layers": [1]}
    )
    with pytest.raises(ConfigError, match="recall@50"):
        run_search(path, data=ml_data, quiet=True)


def test_changing_the_search_under_a_study_is_refused(tmp_path, ml_data):
    path = write_search(
        tmp_path / "c.yaml", tmp_path, method="grid", space={"model.num_layers": [1]}
    )
    run_search(path, data=ml_data, quiet=True)
    write_search(path, tmp_path, method="grid", space={"model.num_layers": [1, 2]})
    with pytest.raises(ConfigError, match=r"search changed since its study was created \(space"):
        run_search(path, data=ml_data, quiet=True)


def test_cli_search(tmp_path, capsys):
    path = write_search(
        tmp_path / "cli.yaml", tmp_path, method="grid", space={"model.num_layers": [1, 2]}
    )
    assert evaluate_cli.main(["search", str(path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "2 complete" in out and "best valid recall@20" in out and "best.yaml" in out
