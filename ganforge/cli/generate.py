"""`ganforge generate`: images from a trained run, as a grid, arrays or one PNG each."""

from __future__ import annotations

import math
from pathlib import Path

import click

from ganforge.cli.common import checkpoint_option, positive, run_argument
from ganforge.errors import GanforgeError


@click.command("generate")
@run_argument
@click.option("--n", "n", type=int, default=100, show_default=True, help="Number of images.")
@click.option("--classes", help="'all' (default for conditional models), one class, or a list like 0,3,9.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="FILE.png (one grid), FILE.npz (arrays) or a directory (one PNG per image); for a "
              "model of 2-D points FILE.npz (array 'points'), FILE.csv or FILE.png (a scatter plot).")
@checkpoint_option
def command(run, n, classes, seed, out, checkpoint):
    """Generate images from a trained run. Example: ganforge generate RUN --n 100 --out digits.png"""
    from ganforge.generator import MAX_SAMPLES, load, parse_classes, spread
    from ganforge.outputs import check_out, write_image_dir, write_images

    positive("n", n, MAX_SAMPLES)
    gan = load(run, checkpoint)
    if gan.model.points:
        return _points(gan, n, classes, seed, out)
    kind = check_out(out)  # before any images are made
    if classes is not None and not gan.conditional:
        raise GanforgeError("this model is unconditional: it takes no classes; leave out --classes")
    chosen = (parse_classes(classes, gan.num_classes) or list(range(gan.num_classes))) if gan.conditional else None
    labels = spread(n, chosen) if chosen is not None else None
    if kind == "dir":  # written a chunk at a time, so any allowed --n fits in memory
        write_image_dir(out, gan.sample_chunks(n, labels, seed), n)
    else:
        gan.check_whole(n, f"a .{kind} file (a directory --out is written a chunk at a time)")
        images = gan.sample(n, labels, seed)  # uint8 (n, C, H, W)
        columns = math.ceil(n / len(chosen)) if chosen is not None else math.ceil(math.sqrt(n))
        write_images(out, images, labels, columns)
    click.echo(f"wrote {n} images to {out}")


def _points(gan, n, classes, seed, out):
    """A model of 2-D points: the points as .npz/.csv, or a scatter plot over its data."""
    from ganforge.data import load_dataset
    from ganforge.points import sample_points, training_points, write_points

    if classes is not None:
        raise GanforgeError("this model makes 2-D points, which have no classes; leave out --classes")
    points = sample_points(gan, n, seed)
    reference = None
    if Path(out).suffix.lower() == ".png":  # the data behind the samples, when it can still be found
        try:
            reference = load_dataset(training_points(gan)).points
        except GanforgeError:
            click.echo("note: the run's 2-D points are not found; the plot shows the samples alone", err=True)
    write_points(out, points, reference)
    click.echo(f"wrote {n} points to {out}")
