"""What the command modules share: the error line, and the option for run checkpoints."""

from __future__ import annotations

import errno
from pathlib import Path

import click

from ganforge.errors import GanforgeError
from ganforge.files import WRITE_HINTS


class Failure(click.ClickException):
    exit_code = 2

    def show(self, file=None) -> None:
        click.echo(f"error: {self.message}", err=True)


class Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except GanforgeError as e:
            raise Failure(str(e)) from None
        except click.UsageError as e:  # a flag out of its range, a missing argument: one line too
            raise Failure(e.format_message()) from None
        except OSError as e:  # a path the checks let through but the system refuses
            raise Failure(os_error_line(e)) from None


def os_error_line(e: OSError) -> str:
    """One line for a failed file operation: what the system said, where, and what to do (a
    refused read or listing: its permissions; a failed write: files.write_hint's advice)."""
    where = f": {e.filename}" if e.filename else ""
    refused = e.errno in (errno.EACCES, errno.EPERM)
    remedy = "check its permissions" if refused else WRITE_HINTS.get(e.errno, "check the path")
    return f"{e.strerror or e}{where}; {remedy}"


run_argument = click.argument("run", type=click.Path(path_type=Path))
checkpoint_option = click.option("--checkpoint", type=click.Choice(["last", "best"]), default="last",
                                 show_default=True, help="Which checkpoint of the run.")


def positive(name: str, value: int, limit: int | None = None) -> int:
    if value <= 0 or (limit is not None and value > limit):
        bound = f" up to {limit:,}" if limit is not None else ""
        raise GanforgeError(f"--{name} must be a positive integer{bound} (got {value})")
    return value


def images_only(gan, command: str) -> None:
    """Refuse a model of 2-D points in a command that makes pictures from images."""
    if gan.model.points:
        raise GanforgeError(f"{gan.path} is a model of 2-D points, and '{command}' works on image "
                            "models; use 'ganforge generate RUN --out points.png|.npz|.csv' and "
                            "'ganforge evaluate RUN'")
