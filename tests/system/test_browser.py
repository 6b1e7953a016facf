"""End to end in a real browser: Debian's headless chromium, driven by Playwright, clicks through
`ganforge serve` on a tiny run (the steps live in scripts/playground_screenshot.py)."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "playground_screenshot.py"
spec = importlib.util.spec_from_file_location("playground_screenshot", SCRIPT)
playground = importlib.util.module_from_spec(spec)
spec.loader.exec_module(playground)


@pytest.fixture
def chromium():
    if not Path(playground.CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{playground.CHROMIUM} is missing; .ci/run installs it with apt-get install chromium")
        pytest.skip(f"{playground.CHROMIUM} is not installed (apt-get install chromium)")
    with playground.chromium_page() as page:
        yield page


def shows_grid(page, step: int, newest: int) -> None:
    """Wait until the training view shows the grid of `step` (loaded) with its label."""
    page.wait_for_function(f"""() => {{
        const img = document.getElementById('sample-grid');
        return img.getAttribute('src') === '/api/samples/latest?step={step}' && img.complete &&
               img.naturalWidth > 0 && document.getElementById('sample-label').textContent ===
               'step {step} of {newest}'; }}""", timeout=15_000)  # a poll every 3 s


def add_grid(run: Path, step: int) -> None:
    """What a live run does: a new fixed-noise grid."""
    (run / "samples" / f"step-{step:06d}.png").write_bytes((run / "samples" / "step-000006.png").read_bytes())


@pytest.mark.slow
def test_clicking_a_class_draws_a_new_image(tiny_run, chromium, tmp_path):
    shot = tmp_path / "playground.png"
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)  # the slider below watches it grow
    with playground.running_server(run) as url:
        seen = playground.click_through(chromium, url, shot, cls=7)
        shows_grid(chromium, 6, 6)
        chromium.focus("#sample-step")  # by keyboard: the step slider is an <input type=range>
        chromium.keyboard.press("Home")
        shows_grid(chromium, 3, 6)
        add_grid(run, 9)
        shows_grid(chromium, 3, 9)  # moved back, it stays put while the run grows
        chromium.keyboard.press("End")
        shows_grid(chromium, 9, 9)
        add_grid(run, 12)
        shows_grid(chromium, 12, 12)  # at its right end, it follows the newest grid
        assert chromium.get_attribute("#sample-step", "aria-valuetext") == "step 12 of 12"
    assert seen["errors"] == []
    assert seen["status"] == 200
    assert seen["before"].startswith("data:image/png;base64,") and seen["after"] != seen["before"]
    calls = " ".join(seen["api_calls"])
    for call in ("/api/info", "/api/generate?cls=0", "/api/generate?cls=7", "dims=2.5", "/api/grid",
                 "/api/interpolate", "/api/training", "/api/samples/latest"):
        assert call in calls
    assert seen["verdict"].startswith("more real-looking than ")
    assert seen["verdict"].endswith("% of real training images")
    assert seen["grid_pictures"] == 80 and seen["strip_pictures"] == 10  # 10 classes x 8, 10 steps
    assert 20_000 < shot.stat().st_size < 5_000_000  # a real screenshot, not a blank page


def test_the_lab_plays_and_the_modes_are_found(chromium):
    """Open the lab beside the pretrained model (`ganforge serve` without a run), play on grid25,
    and watch the points move and the mode count rise."""
    errors = []
    chromium.on("pageerror", lambda e: errors.append(str(e)))
    with playground.running_server(None) as url:
        chromium.goto(url)  # the pretrained model has no run: no grids, so no step slider
        chromium.wait_for_function("() => document.getElementById('train-status').textContent.includes('without its run')")
        assert chromium.is_hidden("#sample-slider") and chromium.is_hidden("#sample-grid")
        chromium.goto(url + "static/lab.html")
        chromium.wait_for_function("() => document.getElementById('modes').textContent.includes('of 8')")
        chromium.select_option("#data", "grid25")
        chromium.click("#create")
        chromium.wait_for_function("() => document.getElementById('modes').textContent.includes('of 25')")
        before = chromium.evaluate("() => JSON.stringify(state.fake.slice(0, 5))")
        start = chromium.evaluate("() => state.modes_covered")
        chromium.fill("#speed", "50")
        chromium.click("#play")
        chromium.wait_for_function(f"() => state.modes_covered >= {start} + 5", timeout=120_000)
        # Reset while playing: the game starts over and plays on; a single step pauses it.
        played = chromium.evaluate("() => state.g_steps")
        chromium.click("#reset")
        chromium.wait_for_function(f"() => state.g_steps > 0 && state.g_steps < {played}", timeout=60_000)
        assert chromium.text_content("#play") == "pause"
        chromium.click("#g-step")
        chromium.wait_for_function("() => document.getElementById('play').textContent === 'play' && !busy")
        paused_at = chromium.evaluate("() => state.g_steps")
        chromium.wait_for_timeout(500)
        assert chromium.evaluate("() => state.g_steps") == paused_at  # nothing plays on
        assert chromium.evaluate("() => JSON.stringify(state.fake.slice(0, 5))") != before
        assert paused_at > 0
    assert errors == []
