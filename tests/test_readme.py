"""The README's two commands and CI stay in sync."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    first_block = re.search(r"```bash\n(.*?)```", text, re.S).group(1)
    return [line for line in first_block.splitlines() if line and not line.startswith("#")]


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


def test_main_job_installs_everything_it_imports():
    """The plain install (no extras) carries every package the main job needs, the report's included."""
    setup = (REPO / "setup.py").read_text(encoding="utf-8")
    core = re.search(r"install_requires=\[(.*?)\]", setup, re.S).group(1)
    assert re.search(r'"matplotlib>=', core)


def test_a_missing_report_dependency_stops_the_main_job_before_any_work(
    tmp_path, monkeypatch, capsys
):
    from graphrec import optional
    from graphrec.cli.evaluate import main

    real_find_spec = optional.find_spec
    monkeypatch.setattr(
        optional, "find_spec", lambda name: None if name == "matplotlib" else real_find_spec(name)
    )
    main_job, _ = readme_commands()
    config = REPO / re.search(r"python evaluate.py pipeline (\S+)", main_job).group(1)
    assert main(["pipeline", str(config), "--out-dir", str(tmp_path / "out"), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert "'matplotlib'" in error and "pip install" in error
    assert (
        not any((tmp_path / "out").rglob("*.pt"))
        and not (tmp_path / "out" / "ml-latest-small-tmdb" / "kg").exists()
    )


def test_main_job_config_exists_and_ships_its_llm_outputs():
    from graphrec.pipeline import load_pipeline_config

    main_job, _ = readme_commands()
    path = REPO / re.search(r"python evaluate.py pipeline (\S+)", main_job).group(1)
    config = load_pipeline_config(path)
    # the main job must run offline in minutes: every LLM stage replays a committed file
    assert config.resolve(config.kg.cache).is_file()
    assert config.resolve(config.augmentation.edges).is_file()
