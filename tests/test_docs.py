"""The README and docs/ link only to files and sections that exist (GitHub's anchors)."""

import re
from pathlib import Path

import pytest

from tests.helpers import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped but hyphens, spaces to
    hyphens."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)
    return {anchor(line.lstrip("#")) for line in text.splitlines() if re.match(r"#{1,6} ", line)}


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
def test_every_relative_link_reaches_its_file_and_section(page):
    broken = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, section = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(target)
        elif section and file.suffix == ".md" and section not in anchors(file):
            broken.append(target)
    assert not broken, broken


@pytest.mark.parametrize(
    ("heading", "expected"),
    [
        (
            "Speed near the CPU's limit: float32 settings, int8, the floor",
            "speed-near-the-cpus-limit-float32-settings-int8-the-floor",
        ),
        ("Hugging Face's clients", "hugging-faces-clients"),
        ("10. Architecture: x86_64 or arm64", "10-architecture-x86_64-or-arm64"),
        ("Lint and the import contracts", "lint-and-the-import-contracts"),
    ],
)
def test_anchors_are_github_s(heading, expected):
    assert anchor(heading) == expected
