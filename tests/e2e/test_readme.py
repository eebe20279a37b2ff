"""The README's promises that drift silently if nobody checks them."""

from __future__ import annotations

from pathlib import Path

from api.settings import Settings

README = (Path(__file__).parents[2] / "README.md").read_text()


def test_every_setting_is_in_the_readme_table() -> None:
    for name in Settings.model_fields:
        assert f"| `DIALGUARD_{name.upper()}` |" in README, name


def test_the_two_commands_are_make_run_and_make_test() -> None:
    assert "make run" in README and "make test" in README
    ci = (Path(__file__).parents[2] / ".ci" / "run").read_text()
    assert "make test" in ci
