"""`ganforge export`: the generator as a TorchScript or ONNX file that runs without ganforge."""

from __future__ import annotations

from pathlib import Path

import click

from ganforge.cli.common import checkpoint_option, images_only, run_argument


@click.command("export")
@run_argument
@click.option("--format", "fmt", type=click.Choice(["torchscript", "onnx"]), required=True)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="File to write (.pt, .onnx).")
@checkpoint_option
def command(run, fmt, out, checkpoint):
    """Write the generator as a file that runs without ganforge: (z, labels) -> images in [-1, 1].
    Example: ganforge export RUN --format onnx --out digits.onnx"""
    from ganforge.export import export
    from ganforge.generator import load

    gan = load(run, checkpoint, device="cpu")
    images_only(gan, "export")
    export(gan, fmt, out)
    m = gan.model
    inputs = f"z float32 (B, {m.z_dim})" + (", labels int64 (B,)" if gan.conditional else "")
    click.echo(f"wrote {out}: {inputs} -> images float32 (B, {m.img_channels}, "
               f"{m.img_resolution}, {m.img_resolution}) in [-1, 1]")
