"""`ganforge report`: a run's loss and metric curves and a per-class sheet in one PNG."""

from __future__ import annotations

from pathlib import Path

import click

from ganforge.cli.common import checkpoint_option, images_only, run_argument

REPORT_COLUMNS = 10


@click.command("report")
@run_argument
@click.option("--out", type=click.Path(path_type=Path), help="PNG to write [default: RUN/report.png].")
@checkpoint_option
def command(run, out, checkpoint):
    """Draw a run's loss and metric curves and a per-class sample sheet into one PNG.
    Example: ganforge report runs/digits"""
    from ganforge.generator import load
    from ganforge.metrics.reference import MNIST_TEST
    from ganforge.outputs import grid
    from ganforge.plots import REAL_DIGITS, report_figure, save_png
    from ganforge.rundir import RunDir

    run_dir = RunDir(run)
    gan = load(run, checkpoint)
    images_only(gan, "report")
    sheet = grid(gan.class_sheet(REPORT_COLUMNS, seed=0), REPORT_COLUMNS)
    # Real digits' scores are a floor only for what was measured against the MNIST test digits.
    floor = REAL_DIGITS if gan.config.eval_reference in (None, MNIST_TEST) else None
    out = out or run_dir.report
    save_png(report_figure(run_dir.read_metrics(), sheet, floor, f"{Path(run).resolve().name} · step {gan.step}"), out)
    click.echo(f"wrote {out}")
