"""The CI entry point and the GitHub workflow stay valid and call the README's commands."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_workflow_is_valid_yaml_with_steps():
    wf = yaml.safe_load((ROOT / ".github/workflows/pipeline.yml").read_text())
    # YAML reads the bare key `on` as True.
    assert set(wf.get("on", wf.get(True))) == {"push", "pull_request"}
    (job,) = wf["jobs"].values()
    steps = job["steps"]
    assert all("uses" in s or "run" in s for s in steps)
    runs = "\n".join(s.get("run", "") for s in steps)
    assert "make lint test" in runs
    assert "dvc metrics diff" in runs


def test_ci_script_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci/run").read_text()
    assert "make test" in readme and "make test" in ci
    assert "make pipeline" in readme
