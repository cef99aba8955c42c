"""The discovery tests share the CLI tests' fixtures (in-process CLI, isolated environment)."""

from __future__ import annotations

from tests.cli.conftest import cli, isolated_env

__all__ = ["cli", "isolated_env"]
