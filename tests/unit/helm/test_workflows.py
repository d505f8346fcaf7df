"""The GitHub workflows pin every action to a full commit SHA with the release tag as a comment."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from helm_chart import REPO

WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
PINNED = re.compile(r"^\s*(?:-\s*)?uses:\s*[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+(\.\d+)*\s*$")


def test_there_are_workflows_for_checks_images_and_e2e() -> None:
    assert {p.name for p in WORKFLOWS} == {"ci.yml", "images.yml", "e2e.yml"}


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_actions_are_pinned_to_commit_shas(workflow: Path) -> None:
    lines = [line for line in workflow.read_text().splitlines() if re.search(r"\buses:", line)]

    assert lines
    for line in lines:
        assert PINNED.match(line), f"not pinned to a SHA with a version comment: {line.strip()}"


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflows_have_least_privilege_and_time_limits(workflow: Path) -> None:
    parsed = yaml.safe_load(workflow.read_text())

    assert parsed["permissions"] == {"contents": "read"}
    for name, job in parsed["jobs"].items():
        assert job["timeout-minutes"] <= 90, name
