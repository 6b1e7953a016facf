"""`ganforge interpolate`: an animated GIF walking from one seed (and class) to another."""

from __future__ import annotations

from pathlib import Path

import click

from ganforge.cli.common import checkpoint_option, images_only, run_argument
from ganforge.errors import GanforgeError

MAX_FRAMES = 1000


@click.command("interpolate")
@run_argument
@click.option("--from-seed", type=int, default=0, show_default=True)
@click.option("--to-seed", type=int, default=1, show_default=True)
@click.option("--class-from", type=int, help="Class at the start (conditional models) [default: 0].")
@click.option("--class-to", type=int, help="Class at the end [default: --class-from].")
@click.option("--classes", help="Both ends at once, like 3,8 (instead of --class-from/--class-to).")
@click.option("--steps", type=int, default=24, show_default=True, help="Frames from one end to the other.")
@click.option("--linear", is_flag=True, help="Move the noise along a line instead of the arc (slerp).")
@click.option("--frame-ms", type=click.IntRange(20, 10_000), default=80, show_default=True)
@click.option("--scale", type=click.IntRange(1, 16), default=4, show_default=True, help="Pixel size.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="FILE.gif to write.")
@checkpoint_option
def command(run, from_seed, to_seed, class_from, class_to, classes, steps, linear, frame_ms, scale,
            out, checkpoint):
    """Write an animated GIF that walks from one seed (and class) to another.
    Example: ganforge interpolate RUN --from-seed 0 --to-seed 5 --classes 3,8 --out walk.gif"""
    from ganforge.generator import class_ends, interpolation, load
    from ganforge.outputs import write_gif

    if out.suffix.lower() != ".gif":
        raise GanforgeError(f"--out {out}: give a .gif file")
    if not 2 <= steps <= MAX_FRAMES:
        raise GanforgeError(f"--steps must be in 2..{MAX_FRAMES} (got {steps})")
    if classes is not None:
        if class_from is not None or class_to is not None:
            raise GanforgeError("give either --classes A,B or --class-from/--class-to, not both")
        try:
            class_from, class_to = (int(c) for c in classes.split(","))
        except ValueError:
            raise GanforgeError(f"--classes must be two classes like 3,8 (got {classes!r})") from None
    gan = load(run, checkpoint)
    images_only(gan, "interpolate")
    z, labels = interpolation(gan, steps, (from_seed, to_seed), class_ends(class_from, class_to),
                              spherical=not linear)
    write_gif(out, gan.images(z, labels), frame_ms, scale)
    click.echo(f"wrote {steps} frames to {out}")
