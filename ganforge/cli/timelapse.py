"""`ganforge timelapse`: a run's saved sample grids as an animated GIF, each frame showing its step."""

from __future__ import annotations

from pathlib import Path

import click

from ganforge.cli.common import run_argument
from ganforge.errors import GanforgeError


@click.command("timelapse")
@run_argument
@click.option("--out", type=click.Path(path_type=Path), required=True, help="The GIF to write, e.g. growth.gif.")
@click.option("--frame-ms", type=click.IntRange(20, 10_000), default=200, show_default=True,
              help="Milliseconds per frame.")
@click.option("--max-frames", type=click.IntRange(2, 1000), default=100, show_default=True,
              help="Show at most this many grids, evenly spread over the run (first and last kept).")
def command(run, out, frame_ms, max_frames):
    """Animate how a run's fixed-noise samples grew. Example: ganforge timelapse runs/digits --out growth.gif"""
    from ganforge.timelapse import timelapse

    if out.suffix.lower() != ".gif":
        raise GanforgeError(f"--out {out}: a timelapse is a .gif file")
    if not Path(run).is_dir():
        raise GanforgeError(f"{run} is not a directory; give a run directory made by 'ganforge train'")
    shown = timelapse(run, out, frame_ms, max_frames)
    click.echo(f"wrote {out} ({shown} grids)")
