"""Packaging: the license in SPDX form with its file, one version, and a CI recipe that installs this costlens."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import costlens

ROOT = Path(__file__).resolve().parents[1]


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_license_is_an_spdx_expression_with_its_file() -> None:
    project = _project()["project"]
    assert project["license"] == "MIT"  # not the table form setuptools will refuse from 2027-02-18
    assert project["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text().startswith("MIT License\n")
    # with an SPDX expression, license classifiers are an error for setuptools
    assert not any(c.startswith("License ::") for c in project["classifiers"])


def test_no_placeholder_is_left_for_the_repositorys_address() -> None:
    for name in ("pyproject.toml", "README.md", ".github/workflows/costlens.yml"):
        assert "OWNER" not in (ROOT / name).read_text(), name


def test_the_version_is_written_once() -> None:
    data = _project()
    assert "version" not in data["project"] and data["project"]["dynamic"] == ["version"]
    assert data["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "costlens.__version__"}


def test_built_metadata(tmp_path: Path) -> None:
    """setuptools turns pyproject.toml into the metadata pip sees (built from a copy: no files left behind)."""
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "costlens", tmp_path / "costlens", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "meta").mkdir()
    code = "from setuptools import build_meta; print(build_meta.prepare_metadata_for_build_wheel('meta'))"
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    metadata = (tmp_path / "meta" / done.stdout.strip().splitlines()[-1] / "METADATA").read_text()
    assert "License-Expression: MIT\n" in metadata and "License-File: LICENSE\n" in metadata
    assert f"Version: {costlens.__version__}\n" in metadata
    assert "Requires-Dist: tqdm" in metadata  # the progress bars' library


def test_the_ci_recipe_installs_this_costlens_from_its_repository() -> None:
    workflow = (ROOT / ".github" / "workflows" / "costlens.yml").read_text()
    readme = (ROOT / "README.md").read_text()
    commands = [line for line in workflow.splitlines() if not line.lstrip().startswith("#")]
    commands += [line for block in re.findall(r"```\w*\n(.*?)```", readme, re.S) for line in block.splitlines()]
    # "costlens" on the package index is an unrelated project that also installs a costlens command
    from_the_index = re.compile(r"pip install\s+(?:-\S+\s+)*['\"]?costlens"  # options, then the bare name
                                r"(?:\[[^\]]*\])?(?:[=<>~!]=?[\w.*]+)?(?!\s*@)['\"]?(?:\s|$)")  # extras, version, no @ URL
    assert not [line for line in commands if from_the_index.search(line)]
    assert any(re.search(r"pip install \.(\s|$)", line) for line in commands)  # from a clone of the repository
    assert 'pip install "$COSTLENS_SOURCE"' in workflow and "git+https://" in workflow
    assert "import costlens.zoo" in workflow  # fails the job when another costlens was installed
    import yaml

    job = yaml.safe_load(workflow)["jobs"]["budgets"]["steps"]
    assert any("costlens check" in step.get("run", "") for step in job)
    assert "git+https://" in readme
