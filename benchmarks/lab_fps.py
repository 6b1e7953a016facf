"""The lab page's frame rate in a real browser (issue 16: "stay smooth, >= 10 frames/s on 2 cores
with 512 points"), written into benchmarks/RESULTS.md.

    python benchmarks/lab_fps.py [--seconds 20] [--points 512] [--speeds 1,10,50] [--threads 1]

Starts `ganforge serve` (no run: the pretrained model, and the lab) on a free loopback port with
torch on --threads threads (OMP_NUM_THREADS), opens /static/lab.html in Debian's headless Chromium
the way tests/system/test_browser.py does (scripts/playground_screenshot.py), and for each speed
(steps per frame, the page's slider) makes a new ring8 lab of --points points, presses play, lets
it run WARMUP_S, then reads the page's own counters (`frames` in lab.js) over --seconds:

- redraws/s: the plane and the loss curves drawn completely, with an answer from the server;
- new states/s: those redraws that showed a training state not drawn before (the steps moved);
- steps/s: G steps (and D steps) the server made, from the drawn states' step counters;
- browser frames/s: requestAnimationFrame callbacks, the rate the browser itself could paint at;
- where a redraw's time went: waiting for the server's answer (steps + state, one request; while
  playing the server computes the next frame as the page draws) and drawing (the page's
  JavaScript; the browser's own painting comes after and is not counted).

Timings come from the page's clock (performance.now()). The machine is shared, so the load
average and the CPU pressure over each window are printed beside its row.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shlex
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # find _common however we are loaded
import _common  # noqa: E402  (puts the repository root first on sys.path)

SCRIPT = _common.ROOT / "scripts" / "playground_screenshot.py"
BEGIN, END = "<!-- lab_fps:begin -->", "<!-- lab_fps:end -->"
OUTS = (_common.ROOT / "benchmarks" / "RESULTS.md",)
TARGET_FPS = 10.0  # the "smooth"
TARGET_POINTS = 512
WARMUP_S = 3.0  # first requests, the loss history filling up
DATA = "ring8"

# Counts browser frames from now on; a function (not a string) because the page's CSP forbids eval.
COUNT_RAF = """() => { if (window.rafCount === undefined) { window.rafCount = 0;
    const tick = () => { window.rafCount++; requestAnimationFrame(tick); }; requestAnimationFrame(tick); } }"""
READ = """() => ({ t: performance.now(), raf: window.rafCount, drawn: frames.drawn, fresh: frames.fresh,
    wait_ms: frames.wait_ms, draw_ms: frames.draw_ms, d: state.d_steps, g: state.g_steps })"""


def load_playground():
    spec = importlib.util.spec_from_file_location("playground_screenshot", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def measure(page, speed: int, points: int, seconds: float) -> dict:
    """A new lab of `points` points, played at `speed` for `seconds` after WARMUP_S: the rates."""
    page.select_option("#data", DATA)
    page.select_option("#points", str(points))
    before = page.evaluate("() => frames.drawn")
    page.click("#create")
    page.wait_for_function(f"() => frames.drawn > {before} && state.fake.length === {points} && state.g_steps === 0")
    page.fill("#speed", str(speed))
    page.click("#play")
    time.sleep(WARMUP_S)
    load_before = os.getloadavg()[0]
    with _common.PressureMeter() as pressure:
        a = page.evaluate(READ)
        time.sleep(seconds)
        b = page.evaluate(READ)
    page.click("#play")  # pause
    page.wait_for_function("() => !busy")
    if page.is_visible("#error"):
        raise RuntimeError(f"the lab page shows an error: {page.text_content('#error')}")
    span = (b["t"] - a["t"]) / 1000
    drawn = max(1, b["drawn"] - a["drawn"])
    return {"speed": speed, "points": points, "seconds": span,
            "fps": (b["drawn"] - a["drawn"]) / span, "states_per_s": (b["fresh"] - a["fresh"]) / span,
            "g_steps_per_s": (b["g"] - a["g"]) / span, "d_steps_per_s": (b["d"] - a["d"]) / span,
            "raf_per_s": (b["raf"] - a["raf"]) / span,
            "wait_ms": (b["wait_ms"] - a["wait_ms"]) / drawn, "draw_ms": (b["draw_ms"] - a["draw_ms"]) / drawn,
            "load": max(load_before, os.getloadavg()[0]), "pressure": pressure.percent}


def report(rows: list[dict], header: dict, command: str, browser: str, threads: int) -> str:
    lines = [
        BEGIN,
        f"- Machine: {_common.header_line(header)}",
        f"- Command: `{command}`",
        f"- Server: `ganforge serve` (pretrained model + lab) with torch on {threads} thread(s) "
        f"(OMP_NUM_THREADS={threads}); browser: headless Chromium {browser} (software drawing, "
        f"--disable-gpu), on the same cores. Lab: {DATA}, the toy preset; timings by the page's clock "
        f"after {WARMUP_S:g} s of play.",
        "- redraws/s: plane and loss curves drawn completely; new states/s: redraws showing steps not "
        "drawn before; steps/s: G (D) steps the server made; browser frames/s: requestAnimationFrame "
        "callbacks; wait / draw: mean ms per redraw that the page waited for the server's answer "
        "(steps + state; while playing, the server computes the next frame as the page draws) and "
        "spent in its drawing code; load: 1-minute load average; pressure: share of the window in "
        "which a runnable task waited for a CPU.",
        "",
        "| points | speed (steps a frame) | s | redraws/s | new states/s | G steps/s | D steps/s | browser "
        "frames/s | wait ms | draw ms | load | pressure |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['points']} | {r['speed']} | {r['seconds']:.1f} | **{r['fps']:.1f}** | "
                     f"{r['states_per_s']:.1f} | {r['g_steps_per_s']:.0f} | {r['d_steps_per_s']:.0f} | "
                     f"{r['raf_per_s']:.0f} | {r['wait_ms']:.1f} | {r['draw_ms']:.1f} | {r['load']:.2f} | "
                     f"{'—' if r['pressure'] is None else format(r['pressure'], '.0f') + '%'} |")
    judged = [r for r in rows if r["points"] == TARGET_POINTS]
    if judged:
        met = [r["speed"] for r in judged if r["fps"] >= TARGET_FPS]
        missed = [r["speed"] for r in judged if r["fps"] < TARGET_FPS]
        parts = [f"met at speed {', '.join(map(str, met))}" if met else "",
                 f"missed at speed {', '.join(map(str, missed))}" if missed else ""]
        lines += ["", f"Target (>= {TARGET_FPS:g} redraws/s with {TARGET_POINTS} points): "
                  + "; ".join(part for part in parts if part) + "."]
    lines.append(END)
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20.0, help="measured window per speed [default: 20]")
    ap.add_argument("--points", type=int, default=TARGET_POINTS, help=f"points drawn [default: {TARGET_POINTS}]")
    ap.add_argument("--speeds", default="1,10,50", help="steps per frame, comma-separated [default: 1,10,50]")
    _common.add_threads_arg(ap, default=1)
    ap.add_argument("--out", type=Path, action="append",
                    help="markdown file whose block is (re)written; repeatable [default: "
                         + ", ".join(str(p.relative_to(_common.ROOT)) for p in OUTS) + "]")
    ap.add_argument("--no-write", action="store_true", help="print the block only")
    args = ap.parse_args(argv)
    try:
        args.speeds = [int(s) for s in args.speeds.split(",")]
    except ValueError:
        ap.error(f"--speeds {args.speeds!r}: give whole numbers separated by commas, such as 1,10,50")
    if not all(1 <= s <= 50 for s in args.speeds):
        ap.error(f"--speeds {args.speeds}: the page's slider goes from 1 to 50")
    if args.points not in (128, 256, 512, 1024, 2048):
        ap.error(f"--points {args.points}: the page offers 128, 256, 512, 1024 or 2048")
    if args.seconds <= 0:
        ap.error(f"--seconds {args.seconds:g}: give a positive duration")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    command = "python " + " ".join(shlex.quote(a) for a in
                                   ["benchmarks/lab_fps.py", *(sys.argv[1:] if argv is None else argv)])
    playground = load_playground()
    if not Path(playground.CHROMIUM).exists():
        sys.exit(f"error: {playground.CHROMIUM} is missing; apt-get install chromium")
    header = _common.machine_header(args.threads)  # before the server and the browser start
    print(_common.header_line(header), file=sys.stderr, flush=True)
    rows = []
    with playground.running_server(None, env=_common.subprocess_env(args.threads)) as url, \
            playground.chromium_page() as page:
        browser = page.context.browser.version
        page.goto(url + "static/lab.html")
        page.wait_for_function("() => frames.drawn > 0")
        page.evaluate(COUNT_RAF)
        for speed in args.speeds:
            rows.append(measure(page, speed, args.points, args.seconds))
            print(f"  speed {speed}: {rows[-1]['fps']:.1f} redraws/s", file=sys.stderr, flush=True)
    block = report(rows, header, command, browser, args.threads)
    print(block)
    if not args.no_write:
        for out in args.out or OUTS:
            _common.write_block(out, block, BEGIN, END)
            print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
