from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bench import Registry, get_plugin_manager

FIXTURE_PLUGINS = str(Path(__file__).parent / "fixtures" / "harness_plugins.py")


@pytest.fixture
def registry() -> Registry:
    """Only the misbehaving test plugins: harness tests do not depend on built-ins."""
    return Registry(get_plugin_manager([FIXTURE_PLUGINS], builtins=False))


@pytest.fixture
def write_suite(tmp_path: Path):
    def write(text: str, name: str = "suite.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).replace("FIXTURE_PLUGINS", FIXTURE_PLUGINS))
        return path

    return write
