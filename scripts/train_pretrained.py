"""Train the pretrained digit model that ships in ganforge/assets/pretrained.safetensors.

    python scripts/train_pretrained.py [--data ../shared/data/mnist] [--steps 30000] [--work runs/pretrained]

Trains the `default` preset on full MNIST from seed 0 for a fixed number of G steps (a step budget,
not a time budget, so the result does not depend on the machine's speed) in bf16 autocast (pinned,
so the recipe is the same on a CPU without native bf16, only slower), then writes the asset:
G_ema (stored under G, as the generator to sample from) and D, float16, with the run's
configuration, class names and step as JSON metadata, and no optimizer state. Finally it evaluates
the asset with the bundled evaluator and prints the figures for docs/pretrained.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from ganforge import __version__  # noqa: E402
from ganforge.checkpoint import load_checkpoint, save_checkpoint, unprefixed  # noqa: E402
from ganforge.config import preset  # noqa: E402
from ganforge.rundir import PRETRAINED, RunDir  # noqa: E402
from ganforge.training import train  # noqa: E402

SEED = 0


def write_asset(run: Path, out: Path) -> None:
    tensors, meta = load_checkpoint(RunDir(run).checkpoint())
    slim = {**{f"G.{k}": v for k, v in unprefixed("G_ema", tensors).items()},
            **{f"D.{k}": v for k, v in unprefixed("D", tensors).items()}}
    slim = {k: v.half() if v.is_floating_point() else v for k, v in slim.items()}
    keep = {k: meta[k] for k in ("config", "class_names", "step", "elapsed_s")}
    # The data by name, not by this machine's path: the police ranks against real digits from it,
    # and "mnist" means the bundled digits there (no download), wherever ganforge is installed.
    keep["config"] = {**keep["config"], "data": "mnist"}
    save_checkpoint(out, slim, {**keep, "ganforge_version": __version__, "storage": "float16",
                                "generator": "G_ema of the training run, stored as G"})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "mnist"))
    ap.add_argument("--steps", type=int, default=30_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "pretrained")
    ap.add_argument("--out", type=Path, default=PRETRAINED)
    ap.add_argument("--resume", action="store_true", help="continue an interrupted --work run")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    # The default preset of 2026-11-28 (the deeper D and G, mode-seeking 0.1), its architecture
    # pinned so that a later default cannot change what this script makes.
    cfg = preset("default").replace(data=args.data, seed=SEED, steps=args.steps, minutes=None, epochs=None,
                                    eval_every=4000, device="cpu", amp="bf16", d_depth=1, g_depth=1)
    start = time.time()
    train(cfg, args.work, resume=args.resume, progress=True)
    print(f"trained {args.steps} steps in {(time.time() - start) / 60:.1f} min (wall clock of this call)")
    write_asset(args.work, args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")

    from ganforge.generator import load
    from ganforge.metrics import evaluate_generator
    result = evaluate_generator(load(args.out), 10_000, seed=0)
    print(json.dumps({k: v for k, v in result.items() if not isinstance(v, dict)}, indent=1))


if __name__ == "__main__":
    main()
