"""The `ganforge` command: one thin module per subcommand. Each parses and validates its flags,
then calls one library function. A GanforgeError becomes one line on stderr and exit status 2,
never a traceback. Command modules import torch only inside the command, so `--help` is quick."""

from __future__ import annotations

import logging
import os

import click

from ganforge import __version__
from ganforge.cli import evaluate, export, generate, interpolate, report, serve, timelapse, train
from ganforge.cli.common import Group


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="ganforge")
def cli() -> None:
    """ganforge: train GANs on handwritten digits or your own images, watch them learn,
    generate any class."""
    logging.basicConfig(format="warning: %(message)s", level=logging.WARNING)


for module in (train, generate, evaluate, report, timelapse, serve, export, interpolate):
    cli.add_command(module.command)


def main() -> None:
    entry = cli
    if "TORCHELASTIC_ERROR_FILE" in os.environ:  # under torchrun: its summary shows a failed rank's error
        from torch.distributed.elastic.multiprocessing.errors import record
        entry = record(cli)
    entry(prog_name="ganforge")
