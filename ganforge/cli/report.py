"""`ganforge report`: a run's loss and metric curves and a per-class sheet in one PNG."""

from __future__ import annotations

from pathlib import Path

import click

from ganforge.cli.common import checkpoint_option, images_only, run_argument


@click.command("report")
@run_argument
@click.option("--out", type=click.Path(path_type=Path), help="PNG to write [default: RUN/report.png].")
@checkpoint_option
def command(run, out, checkpoint):
    """Draw a run's loss and metric curves and a per-class sample sheet into one PNG.
    Example: ganforge report runs/digits"""
    from ganforge.files import atomic_write
    from ganforge.generator import load
    from ganforge.outputs import png_bytes
    from ganforge.plots import report
    from ganforge.rundir import RunDir

    run_dir = RunDir(run)
    gan = load(run, checkpoint)
    images_only(gan, "report")
    out = out or run_dir.report
    atomic_write(out, png_bytes(report(gan, run_dir.read_metrics())))
    click.echo(f"wrote {out}")
