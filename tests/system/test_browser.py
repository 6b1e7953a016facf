"""End to end in a real browser: Debian's headless chromium, driven by Playwright, clicks through
`ganforge serve` on a tiny run (the steps live in scripts/playground_screenshot.py)."""

from __future__ import annotations

import importlib.util
import os
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


@pytest.mark.slow
def test_clicking_a_class_draws_a_new_image(tiny_run, chromium, tmp_path):
    shot = tmp_path / "playground.png"
    with playground.running_server(tiny_run) as url:
        seen = playground.click_through(chromium, url, shot, cls=7)
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
        chromium.click("#play")  # pause
        assert chromium.evaluate("() => JSON.stringify(state.fake.slice(0, 5))") != before
        assert chromium.evaluate("() => state.g_steps") > 0
        assert chromium.text_content("#play") == "play"
    assert errors == []
