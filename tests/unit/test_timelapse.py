"""`ganforge timelapse`: a run's sample grids as a GIF, each frame captioned with its step."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, ImageSequence

from ganforge.cli import cli
from ganforge.rundir import RunDir, pick
from ganforge.timelapse import BANNER_PX
from harness.hostile import png_declaring


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def frames(path) -> list[np.ndarray]:
    with Image.open(path) as gif:
        return [np.asarray(f.convert("L")) for f in ImageSequence.Iterator(gif)]


def test_pick_spreads_frames_and_keeps_both_ends():
    assert pick(5, 10) == [0, 1, 2, 3, 4]
    assert pick(100, 4) == [0, 33, 66, 99]
    assert pick(3, 2) == [0, 2]


def test_timelapse_shows_each_grid_under_its_step(tiny_run, tmp_path):
    out = tmp_path / "growth.gif"
    result = invoke("timelapse", tiny_run, "--out", out, "--frame-ms", 100)
    assert result.exit_code == 0, result.output
    assert "(2 grids)" in result.output
    shown = frames(out)
    grids = [np.asarray(Image.open(p).convert("L")) for _, p in RunDir(tiny_run).sample_grids()]
    assert len(shown) >= 2
    for frame, grid in zip(shown, grids):
        assert frame.shape == (grid.shape[0] + BANNER_PX, grid.shape[1])
        np.testing.assert_array_equal(frame[BANNER_PX:], grid)  # the grid itself, untouched
        assert frame[:BANNER_PX].max() > 200  # a caption is written
    assert not np.array_equal(shown[0][:BANNER_PX], shown[1][:BANNER_PX])  # "step 3", then "step 6"
    np.testing.assert_array_equal(shown[-1], shown[1])  # the last grid is held


def test_timelapse_refuses_what_it_cannot_use(tiny_run, tmp_path):
    result = invoke("timelapse", tmp_path, "--out", tmp_path / "g.gif")
    assert result.exit_code == 2 and "has no sample grids" in result.output
    result = invoke("timelapse", tiny_run, "--out", tmp_path / "g.png")
    assert result.exit_code == 2 and "a timelapse is a .gif file" in result.output
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "samples" / "step-000009.png").write_bytes(b"not a png")
    result = invoke("timelapse", run, "--out", tmp_path / "g.gif")
    assert result.exit_code == 2 and "step-000009.png is not a readable PNG" in result.output
    assert not (tmp_path / "g.gif").exists()
    (run / "samples" / "step-000009.png").write_bytes(png_declaring(9_000, 9_000))  # a few bytes
    result = invoke("timelapse", run, "--out", tmp_path / "g.gif")
    assert result.exit_code == 2 and "9000x9000 pixels, over the 64,000,000 limit" in result.output


@pytest.mark.parametrize("flag, value, message", [("--frame-ms", 0, "0 is not in the range 20<=x<=10000"),
                                                  ("--frame-ms", 700_000, "700000 is not in the range"),
                                                  ("--max-frames", 1, "1 is not in the range 2<=x<=1000"),
                                                  ("--max-frames", 10**6, "1000000 is not in the range")])
def test_timelapse_flags_are_checked(tiny_run, tmp_path, flag, value, message):
    result = invoke("timelapse", tiny_run, "--out", tmp_path / "g.gif", flag, value)
    assert result.exit_code == 2 and message in result.output
    assert result.output.startswith("error: ") and result.output.count("\n") == 1  # one line, as every error
