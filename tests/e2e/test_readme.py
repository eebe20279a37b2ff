"""The README's and the docs' promises that drift silently if nobody checks them."""

from __future__ import annotations

import re
from pathlib import Path

from api.settings import Settings

ROOT = Path(__file__).parents[2]
README = (ROOT / "README.md").read_text()
OPERATING = (ROOT / "docs" / "operating.md").read_text()
PAGES = [ROOT / "README.md", ROOT / "bench" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# A relative link and its optional #anchor: [text](target#anchor)
LINK = re.compile(r"\]\((?!https?://|mailto:)([^)#\s]*)(?:#([^)\s]+))?\)")
# A repository path named in backticks: `dialer/policy.py`, `tests/data/sip/`
REPO_PATH = re.compile(
    r"`((?:api|dialer|recording|transcribe|qa_scoring|tests|bench|docs)/[\w./*-]*)"
)


def test_every_setting_is_in_the_operating_docs_table() -> None:
    for name in Settings.model_fields:
        assert f"| `DIALGUARD_{name.upper()}` |" in OPERATING, name


def test_the_two_commands_are_make_run_and_make_test() -> None:
    assert "make run" in README and "make test" in README
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci


def test_the_readme_is_a_front_door() -> None:
    assert len(README.splitlines()) <= 200


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens."""
    prose = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.MULTILINE | re.DOTALL)
    headings = re.findall(r"^#+ (.+)$", prose, flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_every_link_between_the_pages_lands() -> None:
    broken = []
    for page in PAGES:
        for target, anchor in LINK.findall(page.read_text()):
            dest = (page.parent / target).resolve() if target else page
            if not dest.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
                broken.append(f"{page.relative_to(ROOT)}: {target}#{anchor}")
    assert not broken


def test_every_file_the_pages_name_exists() -> None:
    """Modules move; the pages that say where things are must move with them."""
    missing = []
    for page in PAGES:
        for named in REPO_PATH.findall(page.read_text()):
            if not list(ROOT.glob(named.rstrip("/."))):
                missing.append(f"{page.relative_to(ROOT)}: {named}")
    assert not missing
