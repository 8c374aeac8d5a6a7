"""End to end through the command lines, on the MovieLens + TMDB dataset."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from graphrec.cli import evaluate as evaluate_cli
from graphrec.cli import train as train_cli
from graphrec.evaluation import EvaluationResult

REPO = Path(__file__).resolve().parents[1]
FAST = [
    "model.embedding_dim=16",
    "train.batch_size=2048",
    "train.num_threads=1",
    "train.eval_every=1",
    "train.patience=0",
    "train.learning_rate=0.005",
    "eval.batch_size=256",
]


def train_args(out_dir, name, model="lightgcn", epochs=3, extra=()):
    args = [
        "--config",
        str(REPO / "configs" / "ml-latest-small-tmdb" / f"{model}.yaml"),
        "--out-dir",
        str(out_dir),
        "--name",
        name,
        "--quiet",
    ]
    for item in [*FAST, f"train.epochs={epochs}", *extra]:
        args += ["--set", item]
    return args


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    assert train_cli.main(train_args(out, "lgcn")) == 0
    assert train_cli.main(train_args(out, "mf", model="mf")) == 0
    return out


def test_train_prints_a_results_table_and_writes_the_run(two_runs, capsys):
    run = two_runs / "lgcn"
    for name in (
        "config.yaml",
        "metrics.jsonl",
        "results.json",
        "train.log",
        "checkpoints/best.pt",
        "checkpoints/last.pt",
        "per_user/test.npz",
        "per_user/valid.npz",
    ):
        assert (run / name).exists(), name
    results = json.loads((run / "results.json").read_text())
    assert 0 < results["test"]["recall@20"] < 1


def test_evaluate_reproduces_the_saved_test_metrics(two_runs, capsys):
    run = two_runs / "lgcn"
    saved = json.loads((run / "results.json").read_text())["test"]
    out_npz = run / "reeval.npz"
    assert evaluate_cli.main([str(run), "--quiet", "--save", str(out_npz)]) == 0
    printed = capsys.readouterr().out
    assert "recall@20" in printed and f"{saved['recall@20']:.4f}" in printed
    again = EvaluationResult.load(out_npz)
    assert again.metrics["recall@20"] == pytest.approx(saved["recall@20"], abs=1e-12)
    assert again.metrics["ndcg@10"] == pytest.approx(saved["ndcg@10"], abs=1e-12)


def test_evaluate_with_valid_items_masked_changes_nothing_it_should_not(two_runs, capsys):
    assert (
        evaluate_cli.main([str(two_runs / "lgcn"), "--mask-valid", "--ks", "5", "50", "--quiet"])
        == 0
    )
    printed = capsys.readouterr().out
    assert "recall@50" in printed and "recall@5 " in printed.replace("|", " ")


def test_compare_prints_paired_tests(two_runs, capsys):
    assert evaluate_cli.main(["compare", str(two_runs / "mf"), str(two_runs / "lgcn")]) == 0
    table = capsys.readouterr().out
    assert "recall@20" in table and "ndcg@20" in table
    assert "Wilcoxon" in table or "wilcoxon" in table.lower()
    a = EvaluationResult.load(two_runs / "mf" / "per_user" / "test.npz")
    b = EvaluationResult.load(two_runs / "lgcn" / "per_user" / "test.npz")
    np.testing.assert_array_equal(a.users, b.users)


def test_user_errors_exit_2_without_traceback(tmp_path, capsys):
    assert train_cli.main(["--set", "train.epochz=3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown config key 'train.epochz'") and "Traceback" not in err
    assert evaluate_cli.main([str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err
    assert evaluate_cli.main(["compare", str(tmp_path), str(tmp_path)]) == 2
    assert "no per-user results" in capsys.readouterr().err


def test_console_scripts_and_wrappers_agree():
    for script in ("train.py", "evaluate.py"):
        out = subprocess.run(
            [sys.executable, str(REPO / script), "--help"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert "usage:" in out.stdout


def test_every_console_script_of_setup_py_resolves_to_a_working_main(capsys):
    """setup.py's console scripts (`graphrec` included: the `python -m graphrec` dispatcher) point at
    importable functions that answer `--help` (tested without installing: pip would touch the shared env)."""
    import ast
    import importlib

    tree = ast.parse((REPO / "setup.py").read_text(encoding="utf-8"))
    call = next(
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "setup"
    )
    entry_points = ast.literal_eval(next(k.value for k in call.keywords if k.arg == "entry_points"))
    scripts = dict(line.replace(" ", "").split("=", 1) for line in entry_points["console_scripts"])
    assert scripts["graphrec"] == "graphrec.__main__:main"
    for name, target in scripts.items():
        module, _, attribute = target.partition(":")
        main = getattr(importlib.import_module(module), attribute)
        try:
            code = main(["--help"])
        except SystemExit as done:  # argparse's --help exits 0
            code = done.code
        assert code in (0, None), name
    from graphrec.__main__ import main as dispatcher

    assert dispatcher(["recommend", "/nonexistent-run", "--users", "all", "--out", "x.csv"]) == 2
    assert "error:" in capsys.readouterr().err


def test_killed_training_resumes_to_the_uninterrupted_result(tmp_path):
    """SIGKILL a real training process mid-run, rerun the same command, compare with a clean run."""
    epochs = 4
    reference = tmp_path / "reference"
    assert train_cli.main(train_args(tmp_path, "reference", epochs=epochs)) == 0

    command = [
        sys.executable,
        str(REPO / "train.py"),
        *train_args(tmp_path, "killed", epochs=epochs),
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    log = tmp_path / "killed" / "metrics.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if log.exists() and len(log.read_text().splitlines()) >= 1:
            break
        time.sleep(0.05)
    assert proc.poll() is None, (
        "training finished before it could be killed: " + proc.stderr.read().decode()
    )
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before_kill = len(log.read_text().splitlines())
    assert done_before_kill < epochs

    finished = subprocess.run(command, env=env, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr
    assert "resumed from" in (tmp_path / "killed" / "train.log").read_text()
    killed = json.loads((tmp_path / "killed" / "results.json").read_text())
    clean = json.loads((reference / "results.json").read_text())
    assert killed["best_epoch"] == clean["best_epoch"]
    assert killed["test"] == clean["test"]
    assert killed["valid"] == clean["valid"]
    epochs_logged = [json.loads(line)["epoch"] for line in log.read_text().splitlines()]
    assert epochs_logged == list(range(1, epochs + 1))


def test_graphrec_help_lists_every_command_and_each_command_answers_help(capsys):
    """`graphrec --help` names every command of the one command line; `graphrec CMD --help` works."""
    from graphrec.__main__ import COMMANDS, main

    expected = {
        "train", "evaluate", "experiment", "search", "report", "pipeline",
        "recommend", "serve", "datasets", "kg", "augment",
    }  # fmt: skip
    assert expected <= set(COMMANDS)
    assert main(["--help"]) == 0
    listing = capsys.readouterr().out
    for name in COMMANDS:
        assert f"\n    {name} " in listing or f"\n    {name}\n" in listing, name
    for name in COMMANDS:
        try:
            code = main([name, "--help"])
        except SystemExit as done:  # argparse's --help exits 0
            code = done.code
        assert code in (0, None), name
        assert "usage:" in capsys.readouterr().out, name
    assert main(["no-such-command"]) == 2
    assert "unknown command 'no-such-command'" in capsys.readouterr().err


def test_wrappers_and_module_commands_still_answer(tmp_path):
    """`python evaluate.py pipeline --help` and `python -m graphrec augment --help` run as scripts."""
    for command in (
        [sys.executable, str(REPO / "evaluate.py"), "pipeline", "--help"],
        [sys.executable, "-m", "graphrec", "augment", "--help"],
    ):
        out = subprocess.run(command, capture_output=True, text=True, check=True, cwd=REPO)
        assert "usage:" in out.stdout
