"""Every config field at its boundaries: a clean ConfigError (exit 2 with ``error: ...``) or acceptance, and an
accepted value then trains or fails with a graphrec error, never a traceback.  Plus the other load-time checks:
the file named in errors, non-UTF-8 configs and edge files, out_dir that is a file, dataset names, capped quotes."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import numpy as np
import pytest

from graphrec.cli import train as train_cli
from graphrec.config import EVAL_METRICS, RunConfig, load_config
from graphrec.errors import ConfigError, GraphrecError
from graphrec.evaluation.metrics import ACCURACY_METRICS
from graphrec.models import available_models, model_config_class
from kg.errors import KGError

#: the boundaries every field is tried at, as a --set value (YAML) and how to describe them
BOUNDARIES = {
    "zero": "0",
    "negative": "-1",
    "nan": ".nan",
    "inf": ".inf",
    "huge": "1000000000000",
    "wrong type": "'abc'",
    "list": "[1]",
    "mapping": "{a: 1}",
    "empty": "''",
    "long": "x" * 100_000,
}
#: models trained in the second half (the others need text encoders or a KG; their loading is still checked)
TRAINED = ("mf", "lightgcn", "popularity", "ease", "itemknn", "sgl", "simgcl", "xsimgcl")
SECTIONS = {"": RunConfig}


def _fields(cls: type, prefix: str) -> list[str]:
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if cls is RunConfig and f.name == "model":
            continue
        if dataclasses.is_dataclass(hints[f.name]):
            out += _fields(hints[f.name], f"{prefix}{f.name}.")
        else:
            out.append(f"{prefix}{f.name}")
    return out


def all_cases() -> list[tuple[str, str, str]]:
    """(model name, dotted key, boundary) for every field of the run config and of every model."""
    cases = [("mf", key, b) for key in _fields(RunConfig, "") for b in BOUNDARIES]
    for name in available_models():
        cases += [
            (name, f"model.{key}", b)
            for key in _fields(model_config_class(name), "")
            if key != "name"
            for b in BOUNDARIES
        ]
    return cases


def _load(model: str, key: str, boundary: str):
    return load_config(None, [f"model.name={model}", f"{key}={BOUNDARIES[boundary]}"])


def test_every_field_at_every_boundary_is_an_error_or_accepted():
    accepted, undeclared = [], []
    for model, key, boundary in all_cases():
        try:
            _load(model, key, boundary)
            accepted.append((model, key, boundary))
        except ConfigError as err:
            assert len(str(err)) <= 1000, (
                f"{key}={boundary}: the error quotes too much ({len(str(err))} chars)"
            )
        except Exception as err:  # noqa: BLE001 - the point of the test
            undeclared.append(f"{model} {key}={boundary}: {type(err).__name__}: {str(err)[:300]}")
    assert undeclared == []
    # the values of the bug report are all refused
    for key, value in [
        ("train.eval_every", "0"),
        ("train.batch_size", "0"),
        ("train.batch_size", "-5"),
        ("eval.ks", "[0]"),
        ("eval.batch_size", "0"),
        ("eval.metrics", "[bogus]"),
        ("train.learning_rate", ".nan"),
        ("train.learning_rate", "-0.001"),
        ("train.seed", "-1"),
        ("train.device", "bogus"),
        ("train.num_threads", "-2"),
        ("model", "5"),
        ("name", "../x"),
    ]:
        with pytest.raises(ConfigError):
            load_config(None, [f"{key}={value}"])
    assert ("mf", "train.epochs", "zero") not in accepted and (
        "mf",
        "train.patience",
        "zero",
    ) in accepted


def _tiny_dataset(folder: Path) -> Path:
    rng = np.random.default_rng(0)
    folder.mkdir()
    rows = [
        f"u{u}\ti{i}\t{4 + (u + i) % 2}\t{1000 + 10 * u + k}\n"
        for u in range(40)
        for k, i in enumerate(rng.choice(50, 8, replace=False))
    ]
    (folder / "tiny.inter").write_text(
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n" + "".join(rows)
    )
    return folder


def test_accepted_boundaries_train_or_fail_cleanly(tmp_path, monkeypatch, capsys):
    dataset = _tiny_dataset(tmp_path / "tiny")
    monkeypatch.chdir(tmp_path)  # relative paths a field names (split_dir ...) land here
    tried, crashes = 0, []
    for model, key, boundary in all_cases():
        if (
            model not in TRAINED
            or boundary in ("huge", "inf")
            or key in ("data.dataset", "out_dir")
        ):
            continue  # huge values are only checked at load: an accepted huge epoch count would run for hours
        try:
            _load(model, key, boundary)
        except ConfigError:
            continue
        sets = [
            f"data.dataset={dataset}",
            f"model.name={model}",
            "train.epochs=1",
            "train.num_threads=1",
            "train.progress=false",
            "eval.batch_size=16",
            "model.embedding_dim=8"
            if model not in ("popularity", "ease", "itemknn")
            else "train.patience=1",
            f"{key}={BOUNDARIES[boundary]}",
        ]
        args = ["--out-dir", str(tmp_path / "runs"), "--name", f"r{tried}", "--quiet"]
        for item in sets:
            args += ["--set", item]
        tried += 1
        try:
            code = train_cli.main(args)
        except (GraphrecError, KGError):
            code = 2
        except Exception as err:  # noqa: BLE001 - the point of the test
            crashes.append(f"{model} {key}={boundary}: {type(err).__name__}: {str(err)[:300]}")
            continue
        err = capsys.readouterr().err
        assert code in (0, 2) and "Traceback" not in err, f"{model} {key}={boundary}: {err[-500:]}"
    assert crashes == [], "\n".join(crashes)
    assert tried > 30


def test_eval_metric_choices_match_the_evaluator():
    assert EVAL_METRICS == ACCURACY_METRICS


def test_errors_name_the_config_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  eval_every: 0\n")
    with pytest.raises(ConfigError, match=rf"^{path}: train.eval_every: 0 is out of range"):
        load_config(path)
    path.write_bytes("train:\n  epochs: 3  # caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=rf"^{path}: not UTF-8 text"):
        load_config(path)


def test_cli_prints_error_file_field(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  batch_size: -5\n")
    assert train_cli.main(["--config", str(path)]) == 2
    assert capsys.readouterr().err.startswith(
        f"error: {path}: train.batch_size: -5 is out of range"
    )


def test_out_dir_that_is_a_file(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="out_dir: .* exists and is not a directory"):
        load_config(None, [f"out_dir={tmp_path / 'file'}"])


def test_a_huge_value_is_not_echoed_whole():
    with pytest.raises(ConfigError) as info:
        load_config(None, ["train.device=" + "x" * 1_000_000])
    assert len(str(info.value)) < 400


def test_dataset_path_to_a_non_table_file_is_refused_unread(tmp_path, capsys):
    secret = tmp_path / "passwd"
    secret.write_text("root:x:0:0:SECRET-FIRST-LINE\n")
    code = train_cli.main(
        ["--set", f"data.dataset={secret}", "--out-dir", str(tmp_path / "runs"), "--quiet"]
    )
    err = capsys.readouterr().err
    assert code == 2 and "SECRET" not in err and "not an interaction table" in err
    rel = "../" * 12 + "etc/passwd"
    assert (
        train_cli.main(
            ["--set", f"data.dataset={rel}", "--out-dir", str(tmp_path / "runs"), "--quiet"]
        )
        == 2
    )
    assert "root:" not in capsys.readouterr().err


def test_non_utf8_edge_file_is_a_clear_error(tmp_path):
    from graphrec.errors import DataFormatError
    from graphrec.training.edges import read_records

    path = tmp_path / "edges.jsonl"
    path.write_bytes(b'{"user": "caf\xe9"}\n')
    with pytest.raises(DataFormatError, match=rf"^{path}:1: not UTF-8"):
        read_records(path)


def test_unreadable_inter_file_is_a_clear_error(tmp_path, monkeypatch):
    from graphrec import datasets
    from graphrec.errors import DataFormatError

    dataset = _tiny_dataset(tmp_path / "tiny")
    real = Path.read_bytes

    def deny(self):
        if self.suffix == ".inter":
            raise PermissionError(13, "Permission denied")
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", deny)  # the tests run as root, which chmod cannot stop
    with pytest.raises(DataFormatError, match="cannot read: Permission denied"):
        datasets.load(str(dataset))


def test_graphrec_atomic_writes_respect_the_umask(tmp_path):
    import os

    from graphrec.io import atomic_write_json

    old = os.umask(0o002)
    try:
        atomic_write_json(tmp_path / "results.json", {"a": 1})
    finally:
        os.umask(old)
    assert (tmp_path / "results.json").stat().st_mode & 0o777 == 0o664
