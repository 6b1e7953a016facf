"""The README's command reference matches the commands: every flag of every command is documented,
and every flag the README names exists."""

from __future__ import annotations

import re
from pathlib import Path

import click

from ganforge.cli import cli

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
# Flags of other programs the README shows (torchrun, pip).
FOREIGN = {"--nproc_per_node", "--nnodes", "--node_rank", "--master_addr", "--master_port", "--index-url",
           "--rdzv_backend", "--rdzv_endpoint", "--standalone"}


def flags() -> dict[str, set[str]]:
    """Each command's flags, both spellings of boolean pairs."""
    out = {}
    for name, command in cli.commands.items():
        out[name] = {f for p in command.params if isinstance(p, click.Option)
                     for f in p.opts + p.secondary_opts if f.startswith("--") and f != "--help"}
    return out


def test_every_flag_is_documented():
    missing = sorted(f"{cmd} {f}" for cmd, fs in flags().items() for f in fs if f not in README)
    assert not missing, f"flags missing from README.md: {missing}"


def test_every_documented_flag_exists():
    known = set().union(*flags().values()) | FOREIGN | {"--help", "--version"}
    named = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9_-]*", README))
    assert not named - known, f"README.md names flags no command has: {sorted(named - known)}"


def test_every_command_has_a_section():
    for name in cli.commands:
        assert f"ganforge {name}" in README, name
