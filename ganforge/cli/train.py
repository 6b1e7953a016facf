"""`ganforge train`: flags -> a TrainConfig (by options.override's rules) -> ganforge.training.train."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ganforge.config import (ADA_TARGET, AMPS, AUGMENT_OPS, BACKENDS, CONDITIONINGS, DEFAULT_AUGMENT_OPS, DEVICES,
                             LOSSES, NETS, PRESETS)
from ganforge.errors import GanforgeError


def _betas(value: str | None):
    if value is None:
        return None
    try:
        b1, b2 = (float(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"expected two numbers like 0.5,0.999 (got {value!r})") from None
    return (b1, b2)


def _augment(value: str | None):
    """A probability, or "ada" (options.override turns it into adaptive augmentation)."""
    if value is None or value == "ada":
        return value
    try:
        return float(value)
    except ValueError:
        raise GanforgeError(f"--augment takes a probability like 0.2, or 'ada' (got {value!r})") from None


def _ops(value: str | None):
    return None if value is None else tuple(op.strip() for op in value.split(","))


@click.command("train")
@click.option("--data", help="'digits' (bundled, default), mnist, fashion-mnist, kmnist, or a directory "
              "of IDX files or images (one sub-folder per class); or 2-D points: ring8, grid25, spiral, "
              "moons or FILE.csv (x,y), which take the toy preset's small MLPs.")
@click.option("--init-from", help="Fine-tune: start from this run's (or checkpoint's) G, D and G_ema "
              "with fresh optimizers; the data and its classes may differ, the architecture may not.")
@click.option("--out", type=click.Path(path_type=Path), help="Run directory [default: runs/<preset>-<time>].")
@click.option("--preset", "preset_name", type=click.Choice(list(PRESETS)), default="default", show_default=True)
@click.option("--net", type=click.Choice(NETS))
@click.option("--conditional/--unconditional", default=None,
              help="Use class labels, or ignore them (--unconditional implies --conditioning input).")
@click.option("--z-dim", type=int)
@click.option("--latent-bits", type=int,
              help="G also sees the signs of the first N noise entries: 2^N separate groups (data in pieces).")
@click.option("--width", type=int, help="Hidden width h (mlp) or base channels (conv nets).")
@click.option("--d-width", type=int, help="D's width, when it should differ from G's (--width).")
@click.option("--d-depth", type=int, help="Stride-1 3x3 convolutions after each of the dcgan D's strided "
              "ones [default: 1 at 28 px, 0 at the other sides]; 0 is the classic DCGAN D.")
@click.option("--g-depth", type=int, help="Stride-1 3x3 convolutions after each of the dcgan G's inner "
              "transposed ones [default: 1 at 28 px, 0 at the other sides]; 0 is the classic DCGAN G.")
@click.option("--resolution", type=int, help="Image side: 28 (default; the digit nets), or 8, 16, 32, 64, "
              "128 for dcgan/resnet (one block per octave; at 64 the default preset's dcgan takes width 16); "
              "mlp takes any multiple of 4 in 8..128.")
@click.option("--batch-size", type=int)
@click.option("--lr-g", type=float)
@click.option("--lr-d", type=float)
@click.option("--betas", callback=lambda c, p, v: _betas(v), help="Adam betas, e.g. 0.5,0.999.")
@click.option("--loss", type=click.Choice(LOSSES),
              help="The objective (docs/menu.md); WGAN-GP's paper adds --n-dis 5 --lr-g 1e-4 "
              "--lr-d 1e-4 --betas 0,0.9.")
@click.option("--conditioning", type=click.Choice(CONDITIONINGS),
              help="How D takes the label: joined to its input, projection, an ACGAN classifier, or "
                   "projection with a classifier of real images' classes that G's images must satisfy.")
@click.option("--spectral-norm/--no-spectral-norm", default=None, help="Spectral normalisation of D's weights.")
@click.option("--ema", type=float, help="G_ema decay; 0 turns it off.")
@click.option("--ema-rampup", type=float, help="Keep G_ema's half-life at most this share of the steps "
              "so far [default: 0.05]; 0: the fixed --ema decay from the start.")
@click.option("--n-dis", type=int, help="D steps per G step.")
@click.option("--r1", type=float, help="R1 penalty weight gamma; 0 turns it off.")
@click.option("--r1-every", type=int, help="Lazy R1: apply it on every K-th D step (scaled by K).")
@click.option("--diversity", type=float, help="Weight of the mode-seeking term (MSGAN) that makes G's images "
              "of one class differ as their noise does; 0 turns it off.")
@click.option("--augment", metavar="P|ada", callback=lambda c, p, v: _augment(v),
              help="DiffAugment: probability P of each op, per image (0 turns it off), or 'ada': "
              "adaptive augmentation, p tuned from D's overfitting signal.")
@click.option("--augment-ops", metavar="OPS", callback=lambda c, p, v: _ops(v),
              help=f"Comma list of DiffAugment ops from {', '.join(AUGMENT_OPS)} "
              f"[default: {','.join(DEFAULT_AUGMENT_OPS)}].")
@click.option("--ada-target", type=float, help=f"--augment ada: the target of E[sign(D(real))] "
              f"[default: {ADA_TARGET}]; giving it turns ADA on.")
@click.option("--ada-kimg", type=float, help="--augment ada: thousands of images over which p can move "
              "by 1 [default: 500].")
@click.option("--mirror/--no-mirror", default=None, help="Add x-flipped copies of the images (doubles the data).")
@click.option("--seed", type=int)
@click.option("--device", type=click.Choice(DEVICES))
@click.option("--backend", type=click.Choice(BACKENDS), help="torch.distributed backend under torchrun.")
@click.option("--sync-bn/--no-sync-bn", default=None, help="BatchNorm statistics over all ranks' batches.")
@click.option("--amp", type=click.Choice(AMPS), help="bf16: mixed-precision forward passes; auto (the "
              "default): bf16 where the CPU or GPU computes it natively, else off.")
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
@click.option("--tensorboard/--no-tensorboard", default=None,
              help="Also log to RUN/tensorboard (needs: pip install 'ganforge[tensorboard]').")
@click.option("--resume", type=click.Path(path_type=Path), help="Continue the run in this directory.")
@click.option("--dry-run", is_flag=True, help="Print the resolved configuration and exit.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
def command(ctx, preset_name, out, resume, dry_run, quiet, **flags):
    """Train a GAN. Example: ganforge train --data mnist --minutes 10 --out runs/mnist"""
    from ganforge.dist import is_main
    from ganforge.rundir import RunDir
    from ganforge.training import Interrupted, resolve, train
    from ganforge.training.api import configure
    from ganforge.training.init_from import read_source

    given = {k: v for k, v in flags.items() if ctx.get_parameter_source(k) == click.core.ParameterSource.COMMANDLINE}
    preset_given = ctx.get_parameter_source("preset_name") == click.core.ParameterSource.COMMANDLINE
    cfg, run = configure(given, out, preset_name if preset_given or resume is None else None, resume)

    if dry_run:
        if resume is None:
            RunDir(run).refuse_foreign()
        resolved, data = resolve(cfg)
        if resolved.init_from is not None:
            read_source(resolved)  # the architecture check, before anything trains
        click.echo(json.dumps({"run": str(run), "resume": resume is not None, "images": len(data),
                               "class_names": data.class_names, "config": resolved.to_dict()}, indent=2))
        return
    try:
        train(cfg, run, resume=resume is not None, progress=not quiet)
    except Interrupted as e:
        click.echo(str(e), err=True)
        sys.exit(128 + e.signum)
    if is_main():
        click.echo(f"done: samples in {run / 'samples'}, per-class sheet {run / 'classes.png'}, "
                   f"checkpoint {run / 'checkpoints' / 'last.safetensors'}")
