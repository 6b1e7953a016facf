"""The `ganforge` command: subcommands parse and validate their flags, then call one library
function. A GanforgeError becomes one line on stderr and exit status 2, never a traceback."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

import click

from ganforge import __version__
from ganforge.config import AMPS, BACKENDS, CONDITIONINGS, DEVICES, LOSSES, NETS, PRESETS, preset
from ganforge.errors import GanforgeError


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


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="ganforge")
def cli() -> None:
    """ganforge: train GANs on handwritten digits or your own images, watch them learn,
    generate any class."""
    logging.basicConfig(format="warning: %(message)s", level=logging.WARNING)


def _betas(value: str | None):
    if value is None:
        return None
    try:
        b1, b2 = (float(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"expected two numbers like 0.5,0.999 (got {value!r})") from None
    return (b1, b2)


# Flag name -> TrainConfig/ModelConfig field; flags left out keep the preset's value.
TRAIN_FIELDS = {
    "net": "net", "conditional": "conditional", "z_dim": "z_dim", "width": "width",
    "resolution": "img_resolution", "batch_size": "batch_size", "lr_g": "lr_g", "lr_d": "lr_d",
    "betas": "betas", "seed": "seed", "device": "device", "loss": "loss",
    "conditioning": "conditioning", "spectral_norm": "spectral_norm", "ema": "ema",
    "n_dis": "n_dis", "r1": "r1", "r1_every": "r1_every", "augment": "augment", "log_every": "log_every",
    "sample_every": "sample_every", "checkpoint_every": "checkpoint_every",
    "eval_every": "eval_every", "eval_reference": "eval_reference", "data": "data",
    "backend": "backend", "sync_bn": "sync_bn", "amp": "amp", "compile": "compile",
}
BUDGET = ("steps", "epochs", "minutes")
# What may change when continuing a run: the budget, and how (not what) it computes.
RESUMABLE = {"device", "backend", "sync_bn", "amp", "compile", *BUDGET}


@cli.command()
@click.option("--data", help="'digits' (bundled, default), mnist, fashion-mnist, kmnist, or a directory "
              "of IDX files or images (one sub-folder per class).")
@click.option("--out", type=click.Path(path_type=Path), help="Run directory [default: runs/<preset>-<time>].")
@click.option("--preset", "preset_name", type=click.Choice(list(PRESETS)), default="default", show_default=True)
@click.option("--net", type=click.Choice(NETS))
@click.option("--conditional/--unconditional", default=None,
              help="Use class labels, or ignore them (--unconditional implies --conditioning input).")
@click.option("--z-dim", type=int)
@click.option("--width", type=int, help="Hidden width h (mlp) or base channels (conv nets).")
@click.option("--resolution", type=int, help="Image side for image folders (multiple of 4, 8..64).")
@click.option("--batch-size", type=int)
@click.option("--lr-g", type=float)
@click.option("--lr-d", type=float)
@click.option("--betas", callback=lambda c, p, v: _betas(v), help="Adam betas, e.g. 0.5,0.999.")
@click.option("--loss", type=click.Choice(LOSSES),
              help="The objective (docs/menu.md); WGAN-GP's paper adds --n-dis 5 --lr-g 1e-4 "
              "--lr-d 1e-4 --betas 0,0.9.")
@click.option("--conditioning", type=click.Choice(CONDITIONINGS),
              help="How D takes the label: joined to its input, projection, or an ACGAN classifier.")
@click.option("--spectral-norm/--no-spectral-norm", default=None, help="Spectral normalisation of D's weights.")
@click.option("--ema", type=float, help="G_ema decay; 0 turns it off.")
@click.option("--n-dis", type=int, help="D steps per G step.")
@click.option("--r1", type=float, help="R1 penalty weight gamma; 0 turns it off.")
@click.option("--r1-every", type=int, help="Lazy R1: apply it on every K-th D step (scaled by K).")
@click.option("--augment", type=float,
              help="DiffAugment: probability of translation and of cutout, per image; 0 turns it off.")
@click.option("--seed", type=int)
@click.option("--device", type=click.Choice(DEVICES))
@click.option("--backend", type=click.Choice(BACKENDS), help="torch.distributed backend under torchrun.")
@click.option("--sync-bn/--no-sync-bn", default=None, help="BatchNorm statistics over all ranks' batches.")
@click.option("--amp", type=click.Choice(AMPS), help="bf16: mixed-precision forward passes.")
@click.option("--compile/--no-compile", default=None, help="torch.compile G and D.")
@click.option("--steps", type=int, help="Budget in G steps.")
@click.option("--epochs", type=float, help="Budget in passes over the data.")
@click.option("--minutes", type=float, help="Budget in wall-clock minutes.")
@click.option("--log-every", type=int)
@click.option("--sample-every", type=int)
@click.option("--checkpoint-every", type=int)
@click.option("--eval-every", type=int, help="Steps between evaluations; 0 turns them off.")
@click.option("--eval-reference", help="Reference for --eval-every: 'mnist-test' (default for 28x28 grey "
              "data) or a directory of images like the training data.")
@click.option("--resume", type=click.Path(path_type=Path), help="Continue the run in this directory.")
@click.option("--dry-run", is_flag=True, help="Print the resolved configuration and exit.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
def train(ctx, preset_name, out, resume, dry_run, quiet, **flags):
    """Train a GAN. Example: ganforge train --data mnist --minutes 10 --out runs/mnist"""
    from ganforge.dist import is_main
    from ganforge.train import Interrupted, resolve, stored_config
    from ganforge.train import train as run_training

    given = {k: v for k, v in flags.items()
             if ctx.get_parameter_source(k) == click.core.ParameterSource.COMMANDLINE}
    if resume is not None:
        fixed = sorted(set(given) - RESUMABLE) + (["preset"] if ctx.get_parameter_source("preset_name")
                                                  == click.core.ParameterSource.COMMANDLINE else [])
        if fixed:
            raise GanforgeError(f"--{fixed[0].replace('_', '-')} cannot change when resuming; only "
                                "--steps, --epochs, --minutes, --device, --backend, --sync-bn, --amp "
                                "and --compile can")
        if out is not None and Path(out).resolve() != Path(resume).resolve():
            raise GanforgeError("--out and --resume name different directories; give only --resume RUN")
        cfg, run = stored_config(resume), Path(resume)
    else:
        cfg = preset(preset_name)
        run = out or Path("runs") / f"{preset_name}-{time.strftime('%Y%m%d-%H%M%S')}"
        if given.get("conditional") is False and "conditioning" not in given:
            # Projection and ACGAN need labels; an unconditional model's D sees the image alone.
            given["conditioning"] = "input"
    changes = {TRAIN_FIELDS.get(k, k): v for k, v in given.items()}
    if any(k in given for k in BUDGET):  # a budget on the command line replaces the preset's
        changes = {**dict.fromkeys(BUDGET), **changes}
    cfg = cfg.replace(**changes)
    if "r1_every" in given and cfg.r1 == 0:
        raise GanforgeError("--r1-every has no effect without R1; give --r1 GAMMA (e.g. --r1 10) too")

    if dry_run:
        resolved, data = resolve(cfg)
        click.echo(json.dumps({"run": str(run), "resume": resume is not None, "images": len(data),
                               "class_names": data.class_names, "config": resolved.to_dict()}, indent=2))
        return
    try:
        run_training(cfg, run, resume=resume is not None, progress=not quiet)
    except Interrupted as e:
        click.echo(str(e), err=True)
        sys.exit(128 + e.signum)
    if is_main():
        click.echo(f"done: samples in {run / 'samples'}, per-class sheet {run / 'classes.png'}, "
                   f"checkpoint {run / 'checkpoints' / 'last.safetensors'}")


@cli.command()
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--n", "n", type=int, default=100, show_default=True, help="Number of images.")
@click.option("--classes", help="'all' (default for conditional models), one class, or a list like 0,3,9.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="FILE.png (one grid), FILE.npz (arrays) or a directory (one PNG per image).")
@click.option("--checkpoint", type=click.Choice(["last", "best"]), default="last", show_default=True)
def generate(run, n, classes, seed, out, checkpoint):
    """Generate images from a trained run. Example: ganforge generate RUN --n 100 --out digits.png"""
    from ganforge.sample import load, write_images

    if n <= 0:
        raise GanforgeError(f"--n must be a positive integer (got {n})")
    gan = load(run, checkpoint)
    path = write_images(gan, n, classes, seed, out)
    click.echo(f"wrote {n} images to {path}")


from ganforge.cli_playground import export, interpolate, serve  # noqa: E402

for command in (serve, export, interpolate):
    cli.add_command(command)


def main() -> None:
    entry = cli
    if "TORCHELASTIC_ERROR_FILE" in os.environ:  # under torchrun: its summary shows a failed rank's error
        from torch.distributed.elastic.multiprocessing.errors import record
        entry = record(cli)
    entry(prog_name="ganforge")


from ganforge.evaluate import evaluate, report  # noqa: E402  (own module: keeps merges easy)

cli.add_command(evaluate)
cli.add_command(report)
