"""The README keeps its promises: the two commands, every preset and setting, its picture."""

import re
from pathlib import Path

from gan2d.core.config import field_names
from gan2d.presets import PRESETS

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_the_two_setup_commands_are_there():
    assert "pip install -e . && panel serve app" in README
    assert 'pip install -e ".[test]" && python -m pytest' in README


def test_every_setting_and_preset_is_documented():
    for name in field_names():
        assert f"`{name}`" in README, name
    for name in PRESETS:
        assert f"`{name}`" in README, name


def test_the_preset_table_matches_the_presets():
    """A preset retuned in code is retuned in the README's table too."""
    for preset in PRESETS.values():
        row = (
            f"| `{preset.name}` | {preset.steps} | {preset.speed} | {preset.summary} | "
            f"{preset.watch} |"
        )
        assert row in README, f"README preset table is stale for {preset.name}: {row}"


def test_every_picture_it_shows_exists():
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README)
    assert pictures
    for picture in pictures:
        assert (ROOT / picture).is_file(), picture


def test_no_placeholder_is_left():
    assert not re.search(r"\b[A-Z]+_(TABLE|SECTION)\b", README)


def test_every_file_it_cites_is_in_the_repository():
    """Regression: the README cited a design document that users do not have."""
    cited = set(re.findall(r"[\w./-]+\.(?:py|md|png|toml)\b", README))
    missing = [
        path
        for path in sorted(cited)
        if not (ROOT / path).exists() and not any(ROOT.glob(f"**/{path}"))
    ]
    assert missing == []
