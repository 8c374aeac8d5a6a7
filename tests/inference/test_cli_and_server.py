"""``python -m graphrec recommend`` (export: resumable, atomic) and ``serve`` against a real HTTP server."""

import csv
import importlib.util
import json
import socket
import subprocess
import sys
import time

import pytest
from inference_helpers import train_tiny

from graphrec.__main__ import main
from graphrec.inference import export, load_recommender


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_data):
    return train_tiny(tmp_path_factory.mktemp("runs"), "ease", tiny_data)


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_export_all_users_csv_and_jsonl(run, tiny_data, tmp_path, capsys):
    assert (
        main(
            [
                "recommend",
                str(run),
                "--users",
                "all",
                "--k",
                "5",
                "--out",
                str(tmp_path / "top.csv"),
                "-q",
            ]
        )
        == 0
    )
    figures = json.loads(capsys.readouterr().out)
    rows = read_csv(tmp_path / "top.csv")
    assert figures["users"] == tiny_data.n_users and len(rows) == 5 * tiny_data.n_users
    rec = load_recommender(run)
    first = [r["item"] for r in rows if r["user"] == "u0"]
    assert first == rec.recommend(["u0"], k=5)[0].items
    assert (
        main(
            [
                "recommend",
                str(run),
                "--users",
                "all",
                "--k",
                "3",
                "--explain",
                "--out",
                str(tmp_path / "top.jsonl"),
                "-q",
            ]
        )
        == 0
    )
    lines = [json.loads(line) for line in (tmp_path / "top.jsonl").read_text().splitlines()]
    assert len(lines) == tiny_data.n_users and lines[0]["explanations"][0]["method"] == "exact"
    assert not list(tmp_path.glob("*.partial")) and not list(tmp_path.glob("*.progress.json"))


def test_an_interrupted_export_resumes_to_the_same_file(run, tmp_path, monkeypatch, capsys):
    args = [
        "recommend",
        str(run),
        "--users",
        "all",
        "--k",
        "4",
        "--memory-mb",
        "0.0005",
        "-q",
    ]  # 3 users a block
    assert main(args + ["--out", str(tmp_path / "whole.csv")]) == 0
    real = export.iter_blocks

    def crashing(*a, **k):
        for n, block in enumerate(real(*a, **k)):
            if n == 2:
                raise KeyboardInterrupt
            yield block

    monkeypatch.setattr(export, "iter_blocks", crashing)
    out = tmp_path / "resumed.csv"
    assert main(args + ["--out", str(out)]) == 130
    assert not out.exists() and (tmp_path / "resumed.csv.partial").exists()
    assert json.loads((tmp_path / "resumed.csv.progress.json").read_text())["users_done"] == 6
    monkeypatch.setattr(export, "iter_blocks", real)
    capsys.readouterr()
    assert main(args + ["--out", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["resumed_at"] == 6
    assert out.read_bytes() == (tmp_path / "whole.csv").read_bytes()


def test_user_file_errors_name_the_line(run, tmp_path, capsys):
    users = tmp_path / "users.txt"
    users.write_text("user_id\nu1\n\nghost\n")
    assert (
        main(["recommend", str(run), "--users", str(users), "--out", str(tmp_path / "t.csv")]) == 2
    )
    assert f"{users}:4: field 'user': unknown user id 'ghost'" in capsys.readouterr().err
    assert (
        main(
            [
                "recommend",
                str(run),
                "--users",
                str(users),
                "--unknown",
                "popularity",
                "--k",
                "2",
                "--out",
                str(tmp_path / "t.csv"),
                "-q",
            ]
        )
        == 0
    )
    assert {r["user"] for r in read_csv(tmp_path / "t.csv")} == {"u1", "ghost"}
    assert main(["recommend", str(run), "--users", "all", "--out", str(tmp_path / "t.txt")]) == 2
    assert "unknown format" in capsys.readouterr().err
    assert (
        main(["recommend", str(tmp_path), "--users", "all", "--out", str(tmp_path / "t.csv")]) == 2
    )
    assert "not a run directory" in capsys.readouterr().err


@pytest.mark.skipif(importlib.util.find_spec("pyarrow") is not None, reason="pyarrow installed")
def test_parquet_without_pyarrow_is_a_clear_error(run, tmp_path, capsys):
    assert (
        main(["recommend", str(run), "--users", "all", "--out", str(tmp_path / "t.parquet")]) == 2
    )
    assert "'pyarrow'" in capsys.readouterr().err and not (tmp_path / "t.parquet").exists()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(run):
    pytest.importorskip("uvicorn")
    pytest.importorskip("fastapi")
    from graphrec.inference.server import running_server

    with running_server(load_recommender(run), max_k=50) as url:
        yield url


def test_server_endpoints(server, run):
    httpx = pytest.importorskip("httpx")
    rec = load_recommender(run)
    with httpx.Client(base_url=server) as client:
        health = client.get("/health").json()
        assert health["status"] == "ok" and health["model"] == "ease" and health["users"] == 30
        got = client.post("/recommend", json={"user": "u2", "k": 4}).json()
        assert got["items"] == rec.recommend(["u2"], k=4)[0].items
        new = client.post("/recommend/new-user", json={"items": ["i1", "i2"], "k": 3}).json()
        assert new["items"] == rec.recommend_for_items(["i1", "i2"], k=3).items
        similar = client.post("/similar-items", json={"item": "i1", "k": 3}).json()
        assert similar["items"] == rec.similar_items("i1", k=3).items
        explained = client.post("/explain", json={"user": "u2", "k": 2}).json()["explanations"]
        assert [e["item"] for e in explained] == got["items"][:2] and explained[0]["because"]
        assert (
            client.post("/explain", json={"items": ["i1"], "targets": ["i3"]}).json()[
                "explanations"
            ][0]["item"]
            == "i3"
        )
        assert (
            client.get("/docs").status_code == 200
            and "/recommend/new-user" in client.get("/openapi.json").json()["paths"]
        )


@pytest.mark.parametrize(
    "path, body, status, message",
    [
        ("/recommend", {"user": "ghost"}, 404, "unknown user id(s) 'ghost'"),
        ("/recommend", {"user": "u1", "k": 0}, 422, "greater than or equal to 1"),
        ("/recommend", {"user": "u1", "k": 51}, 422, "k: at most 50"),
        ("/recommend", {"k": 3}, 422, "Field required"),
        ("/recommend", {"user": "u1", "candidates": ["nope"]}, 404, "unknown item id(s) 'nope'"),
        (
            "/recommend",
            {"user": "u1", "new_items": {"new": "a film"}},
            422,
            "model 'ease' cannot score unseen items",
        ),
        ("/recommend/new-user", {"items": ["i1", "nope"]}, 404, "unknown item id(s) 'nope'"),
        ("/recommend/new-user", {"items": "i1"}, 422, "valid list"),
        ("/similar-items", {"item": "nope"}, 404, "unknown item id(s) 'nope'"),
        ("/explain", {"k": 2}, 422, "exactly one of `user`"),
        ("/explain", {"user": "u1", "targets": ["nope"]}, 404, "unknown item id(s) 'nope'"),
    ],
)
def test_server_rejects_bad_requests_with_4xx(server, path, body, status, message):
    httpx = pytest.importorskip("httpx")
    response = httpx.post(server + path, json=body)
    assert response.status_code == status
    assert message in json.dumps(response.json()["detail"])


def test_server_rejects_bad_json_and_oversized_bodies(server):
    httpx = pytest.importorskip("httpx")
    assert (
        httpx.post(
            server + "/recommend", content=b"{no", headers={"content-type": "application/json"}
        ).status_code
        == 422
    )
    big = httpx.post(server + "/recommend/new-user", json={"items": ["i1"] * 300_000})
    assert big.status_code == 413 and "over" in big.json()["detail"]


def test_serve_command_line_starts_a_server(run):
    pytest.importorskip("uvicorn")
    httpx = pytest.importorskip("httpx")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "graphrec", "serve", str(run), "--port", str(port), "-q"]
    )
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/health").json()["status"] == "ok"
                break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail("server did not start")
    finally:
        process.terminate()
        process.wait(10)


def test_dispatcher_forwards_and_rejects_unknown_commands(capsys):
    assert main(["nope"]) == 2 and "unknown command 'nope'" in capsys.readouterr().err
    assert main([]) == 2
    for command in ("train", "evaluate", "recommend", "serve", "compare"):
        with pytest.raises(SystemExit) as done:
            main([command, "--help"])
        assert done.value.code == 0
    assert "graphrec-train" in capsys.readouterr().out
