"""Open the playground in headless Chromium, click through it as a new user would, screenshot it.

    python scripts/playground_screenshot.py RUN docs/playground.png

Needs Debian's chromium (`apt-get install chromium`) and Playwright for Python (the `test` extra);
Playwright's own browser downloads are not used. tests/test_browser.py runs these same steps on a
tiny run, so the README's screenshot and the end-to-end test cannot drift apart.
"""

from __future__ import annotations

import contextlib
import re
import select
import subprocess
import sys
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
START_TIMEOUT_S = 60
TIMEOUT_MS = 20_000


@contextlib.contextmanager
def running_server(run: Path | None, env: dict[str, str] | None = None) -> Iterator[str]:
    """`ganforge serve RUN` (or, with None, the pretrained model) on a free loopback port; yields
    its URL and stops it afterwards. `env`: the server's environment [default: this process's]."""
    target = [str(Path(run).resolve())] if run is not None else []
    proc = subprocess.Popen([sys.executable, "-m", "ganforge", "serve", *target, "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], START_TIMEOUT_S)
        line = proc.stdout.readline() if ready else ""
        found = re.search(r"http://127\.0\.0\.1:\d+/", line)
        if not found:
            proc.kill()
            raise RuntimeError(f"the server did not start: {line!r} {proc.communicate()[1][-2000:]}")
        yield found.group(0)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def chromium_page(width: int = 1360, height: int = 900):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(TIMEOUT_MS)
            yield page
        finally:
            browser.close()


def click_through(page, url: str, screenshot: Path, cls: int = 7, samples: bool = True) -> dict:
    """Open the page, wait for its first image, click class `cls`, move a slider, screenshot.

    `samples`: the run has sample grids to wait for (a checkpoint file alone, like the pretrained
    model, has none). Returns what happened: the image before and after the click, the API requests the page made,
    and any JavaScript errors.
    """
    api_calls, errors = [], []
    page.on("request", lambda r: api_calls.append(r.url) if "/api/" in r.url else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(url)
    # Waits are written as functions: a string expression is eval'd in the page, which its
    # Content-Security-Policy (no 'unsafe-eval') forbids.
    page.wait_for_function("() => document.getElementById('image').src.startsWith('data:image/png')")
    before = page.get_attribute("#image", "src")
    with page.expect_response(lambda r: "/api/generate" in r.url and f"cls={cls}" in r.url) as response:
        page.click(f"#classes button[data-class='{cls}']")
    page.wait_for_function(f"() => document.getElementById('image').dataset.label === '{cls}'")
    after = page.get_attribute("#image", "src")
    with page.expect_response(lambda r: "/api/generate" in r.url and "dims=" in r.url):
        page.locator("#z0").fill("2.5")
    page.wait_for_selector("#grid figure")
    page.wait_for_selector("#strip figure")
    if samples:
        page.wait_for_selector("#sample-grid:not([hidden])")
        page.wait_for_function("() => document.getElementById('sample-grid').complete")
    page.wait_for_load_state("networkidle")
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(screenshot), full_page=True)
    return {"before": before, "after": after, "status": response.value.status, "api_calls": api_calls,
            "errors": errors, "verdict": page.inner_text("#verdict"),
            "grid_pictures": page.locator("#grid figure").count(),
            "strip_pictures": page.locator("#strip figure").count()}


def main(run: str, out: str) -> None:
    with running_server(Path(run)) as url, chromium_page() as page:
        seen = click_through(page, url, Path(out), samples=Path(run).is_dir())
    print(f"wrote {out} ({len(seen['api_calls'])} API calls, JavaScript errors: {seen['errors'] or 'none'})")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
