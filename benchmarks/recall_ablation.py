"""The diversity ablations of issue 13: variants of the `default` preset trained for the same number
of steps on full MNIST, each scored on 10,000 samples (1,000 per class) at noise scale 1.0 and 1.2.

    python benchmarks/recall_ablation.py [--data mnist] [--steps 5000] [--parallel 2] [--only 1,3]

Steps, not minutes: on a shared machine the step rate moves with the load, and quality per image
seen is what a variant changes (its speed is measured apart, in THROUGHPUT.md). Noise scale 1.2
(z drawn from N(0, 1.2^2 I)) widens what G makes: it trades precision for recall along the model's
own precision-recall frontier, so a variant that only moves along that frontier shows it here,
while a better model moves the frontier (precision + recall at both scales). docs/tuning.md
holds the recorded table.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # find _common however we are loaded
import _common  # noqa: E402  (puts the repository root first on sys.path)

SCALES = (1.0, 1.2)
# The rows compare with float32 steps, the fixed EMA decay, the classic DCGAN pair and no
# mode-seeking, as they were measured (ramp-up, the deeper D, mode-seeking 0.1 and the deeper G
# became the default later); a variant's own flags come later and win.
BASE = ["--amp", "off", "--ema-rampup", "0", "--d-depth", "0", "--g-depth", "0", "--diversity", "0"]
FOURTH = ["--amp", "bf16", "--ema-rampup", "0.05"]
SEVENTH = [*FOURTH, "--d-depth", "1", "--diversity", "0.1"]
VARIANTS = {
    "default (dcgan w32, hinge, projection, lr 4e-4, batch 32, EMA 0.995), float32": [],
    "R1 0.2 (every 16 D steps)": ["--r1", "0.2"],
    "D width 64 (G 32)": ["--d-width", "64"],
    "G width 48, D width 32": ["--width", "48", "--d-width", "32"],
    "z_dim 128": ["--z-dim", "128"],
    "mode-seeking 1.0": ["--diversity", "1"],
    "mode-seeking 0.1": ["--diversity", "0.1"],
    "EMA 0.999, ramp-up 0.05": ["--ema", "0.999", "--ema-rampup", "0.05"],
    "bf16 autocast": ["--amp", "bf16"],
    "bf16 autocast, seed 1 (run-to-run spread)": ["--amp", "bf16", "--seed", "1"],
    "bf16 autocast and mode-seeking 0.1": ["--amp", "bf16", "--diversity", "0.1"],
    "bf16 (the default), learning rates 8e-4 (G and D)": ["--amp", "bf16", "--lr-g", "8e-4", "--lr-d", "8e-4"],
    "bf16, z_dim 32": ["--amp", "bf16", "--z-dim", "32"],
    "bf16, `--net resnet` (width 32, the default's game unchanged)": ["--amp", "bf16", "--net", "resnet"],
    # The fourth session's rows ran with ema_rampup 0.05, the default by then.
    "bf16, DiffAugment translation p 0.5": [*FOURTH, "--augment", "0.5", "--augment-ops", "translation"],
    "bf16, two D steps per G step (`--n-dis 2`)": [*FOURTH, "--n-dis", "2"],
    "bf16, non-saturating loss (`--loss bce`) with R1 0.2": [*FOURTH, "--loss", "bce", "--r1", "0.2"],
    "bf16, batch 64": [*FOURTH, "--batch-size", "64"],
    # The fifth session's: the default again beside them (same flags as the fourth's).
    "bf16, the default again (fifth session)": FOURTH,
    "bf16, one latent bit (`--latent-bits 1`)": [*FOURTH, "--latent-bits", "1"],
    "bf16, two latent bits (`--latent-bits 2`)": [*FOURTH, "--latent-bits", "2"],
    # The sixth session's: the classic D again beside them, then the deeper D (now the default).
    "bf16, the classic D again (sixth session)": FOURTH,
    "bf16, a deeper D (`--d-depth 1`: a 3x3 convolution after each strided one)": [*FOURTH, "--d-depth", "1"],
    "bf16, deeper D and mode-seeking 0.1": [*FOURTH, "--d-depth", "1", "--diversity", "0.1"],
    "bf16, deeper D and mode-seeking 0.3": [*FOURTH, "--d-depth", "1", "--diversity", "0.3"],
    # The seventh session's: one change each to the default of the sixth (deeper D, mode-seeking 0.1).
    "the default, Adam betas (0, 0.9)": [*SEVENTH, "--betas", "0.0,0.9"],
    "the default, spectral norm in D": [*SEVENTH, "--spectral-norm"],
    "the default, spectral norm in D and betas (0, 0.9)": [*SEVENTH, "--spectral-norm", "--betas", "0.0,0.9"],
    "the default, G width 48 (D 32)": [*SEVENTH, "--width", "48", "--d-width", "32"],
    "the default, D width 48": [*SEVENTH, "--d-width", "48"],
    # The eighth session's.
    "the default, a deeper G (`--g-depth 1`: a 3x3 convolution after its inner transposed one)": [*SEVENTH, "--g-depth", "1"],
}
# Scores one run at each noise scale; runs in a subprocess with one thread, like the training.
SCORE = """
import json, sys, torch
import ganforge
from ganforge.metrics.registry import evaluate_samples
gan = ganforge.load(sys.argv[1])
labels = torch.arange(gan.num_classes).repeat_interleave(1000)
for scale in json.loads(sys.argv[2]):
    r = evaluate_samples(gan.images(gan.noise(len(labels), seed=123) * scale, labels), labels)
    print(json.dumps({"scale": scale, **{k: r[k] for k in ("fid", "precision", "recall", "class_accuracy")}}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common.add_data_arg(ap)
    ap.add_argument("--steps", type=int, default=5000)
    _common.add_variant_args(ap)
    args = ap.parse_args()
    header = _common.machine_header(1)
    print(_common.header_line(header), flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, run, peak in _common.train_variants(
                _common.chosen_variants(VARIANTS, args.only), args.parallel,
                lambda run, extra: ["--data", args.data, "--steps", str(args.steps), "--minutes", "100000",
                                    "--eval-every", "0", "--quiet", "--out", run, *BASE, *extra], Path(tmp)):
            scores = [json.loads(line) for line in _common.finish(
                _common.python_child("-c", SCORE, run, json.dumps(SCALES)), "scoring").splitlines()
                if line.startswith("{")]
            rows.append((name, scores, peak))
            print(name, scores, f"matmul yardstick {peak:.0f} GFLOP/s", flush=True)
    command = " ".join(["python benchmarks/recall_ablation.py", *sys.argv[1:]])
    print(f"Machine: {_common.header_line(header)}. Command: `{command}`.")
    print("| variant | FID[digits] ↓ | class accuracy ↑ | precision ↑ | recall ↑ | P + R | at noise x1.2: P / R "
          "| matmul GFLOP/s (1 thread) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, (one, wide), peak in rows:
        print(f"| {name} | {one['fid']:.3f} | {one['class_accuracy']:.3f} | {one['precision']:.3f} "
              f"| {one['recall']:.3f} | {one['precision'] + one['recall']:.3f} "
              f"| {wide['precision']:.3f} / {wide['recall']:.3f} | {peak:.0f} |")


if __name__ == "__main__":
    main()
