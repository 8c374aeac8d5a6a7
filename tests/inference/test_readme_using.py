"""The README's "Using a trained model" script runs as written (paths and port moved to a temporary place)."""

import os
import re
import socket
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def using_script() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Using a trained model") :]
    return re.search(r"```bash\n(.*?)```", section, re.S).group(1)


def test_readme_script_trains_loads_recommends_exports_and_serves(tmp_path):
    pytest.importorskip("uvicorn")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = using_script()
    for step in (
        "python train.py",
        "load_recommender",
        "recommend_for_items",
        "explain(",
        "python -m graphrec recommend",
        "python -m graphrec serve",
    ):
        assert step in script
    runs = str(tmp_path / "runs")
    script = (
        script.replace("--out-dir runs", f"--out-dir {runs}")
        .replace('"runs/', f'"{runs}/')
        .replace(" runs/", f" {runs}/")
    )
    # never wait forever for a server that did not start
    script = script.replace(
        "until curl",
        "for _ in $(seq 240); do curl -sf http://127.0.0.1:8000/health >/dev/null && break; "
        "sleep 0.5; done\nuntil curl",
    )
    script = script.replace("8000", str(port))
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        ["bash", "-e", "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "because you liked" in done.stdout and "Recommendation(user='1'" in done.stdout
    assert (
        '"status":"ok"' in done.stdout
        and '"user":"1","items":[' in done.stdout
        and '"user":null,"items":[' in done.stdout
    )
    lines = (tmp_path / "runs" / "ease-demo" / "top20.csv").read_text().splitlines()
    assert lines[0] == "user,rank,item,score" and len(lines) == 1 + 20 * 601
