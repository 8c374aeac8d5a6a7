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
    assert main_job.startswith("pip install torch==2.13.0 && ") and "python evaluate.py pipeline" in main_job
    assert tests.startswith("pip install torch==2.13.0 && ") and "pytest" in tests


def test_ci_runs_the_readme_test_command_verbatim():
    _, tests = readme_commands()
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert tests in ci


def test_main_job_config_exists_and_ships_its_llm_outputs():
    from graphrec.pipeline import load_pipeline_config

    main_job, _ = readme_commands()
    path = REPO / re.search(r"python evaluate.py pipeline (\S+)", main_job).group(1)
    config = load_pipeline_config(path)
    # the main job must run offline in minutes: every LLM stage replays a committed file
    assert config.resolve(config.kg.cache).is_file()
    assert config.resolve(config.augmentation.edges).is_file()
