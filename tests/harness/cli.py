"""Running `ganforge train --dry-run` in-process, for tests of how flags reach the configuration."""

from __future__ import annotations

import json

from click.testing import CliRunner

from ganforge.cli import cli


def dry_run(*args: str) -> dict:
    """The JSON `--dry-run` prints (run, images, class names, resolved config)."""
    result = CliRunner().invoke(cli, ["train", "--steps", "1", "--dry-run", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def refused(*args: str) -> str:
    """The one `error: ...` line of a refused `--dry-run`."""
    result = CliRunner().invoke(cli, ["train", "--steps", "1", "--dry-run", *args])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]
