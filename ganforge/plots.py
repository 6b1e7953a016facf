"""Curves of a run, drawn from its metrics.jsonl: the end-of-run loss plot and `ganforge report`."""

from __future__ import annotations

import math
from typing import Sequence

from PIL import Image, ImageDraw

from ganforge.generator import GAN
from ganforge.outputs import grid, to_pil

REPORT_COLUMNS = 10

COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]


def line_plot(series: dict[str, tuple[Sequence[float], Sequence[float]]], title: str,
              size: tuple[int, int] = (640, 360)) -> Image.Image:
    """A simple line chart of named (x, y) series with axes, min/max labels and a legend."""
    w, h = size
    left, right, top, bottom = 60, 16, 28, 36
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    draw.text((left, 8), title, fill="black")
    pts = [(x, y) for xs, ys in series.values() for x, y in zip(xs, ys) if math.isfinite(y)]
    if not pts:
        draw.text((left, h // 2), "no data yet", fill="gray")
        return img
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    y0, y1 = min(p[1] for p in pts), max(p[1] for p in pts)
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)
    sx = lambda x: left + (x - x0) / (x1 - x0) * (w - left - right)  # noqa: E731
    sy = lambda y: h - bottom - (y - y0) / (y1 - y0) * (h - top - bottom)  # noqa: E731
    draw.rectangle([left, top, w - right, h - bottom], outline="black")
    draw.text((4, top), f"{y1:.3g}", fill="black")
    draw.text((4, h - bottom - 10), f"{y0:.3g}", fill="black")
    draw.text((left, h - bottom + 4), f"{x0:g}", fill="black")
    draw.text((w - right - 40, h - bottom + 4), f"{x1:g}", fill="black")
    for i, (name, (xs, ys)) in enumerate(series.items()):
        color = COLORS[i % len(COLORS)]
        line = [(sx(x), sy(y)) for x, y in zip(xs, ys) if math.isfinite(y)]
        if len(line) > 1:
            draw.line(line, fill=color, width=2)
        elif line:
            draw.ellipse([line[0][0] - 2, line[0][1] - 2, line[0][0] + 2, line[0][1] + 2], fill=color)
        draw.text((left + 8 + 110 * i, h - 16), f"— {name}", fill=color)
    return img


def loss_plot(records: list[dict]) -> Image.Image:
    """loss_d and loss_g against step, from metrics.jsonl records."""
    logs = [r for r in records if "loss_d" in r]
    steps = [r["step"] for r in logs]
    return line_plot({k: (steps, [r[k] for r in logs]) for k in ("loss_d", "loss_g")}, "losses by step")


def report(gan: GAN, records: list[dict]) -> Image.Image:
    """Loss curves, FID curve, fidelity/diversity curves and a per-class sheet, stacked."""
    evals = [(r["step"], r["eval"]) for r in records if isinstance(r.get("eval"), dict)]

    def curve(key: str) -> tuple[list, list]:
        return [s for s, e in evals if key in e], [e[key] for s, e in evals if key in e]

    panels = [loss_plot(records),
              line_plot({"FID[digits]": curve("fid")}, "FID[digits] by step (lower is better)"),
              line_plot({k: curve(k) for k in ("precision", "recall", "coverage", "class_accuracy")},
                        "fidelity and diversity by step")]
    sheet = to_pil(grid(gan.class_sheet(REPORT_COLUMNS, seed=0), REPORT_COLUMNS), scale=2).convert("RGB")
    width = max(p.width for p in panels + [sheet])
    canvas = Image.new("RGB", (width, sum(p.height for p in panels) + sheet.height), "white")
    y = 0
    for p in panels + [sheet]:
        canvas.paste(p, ((width - p.width) // 2, y))
        y += p.height
    return canvas
