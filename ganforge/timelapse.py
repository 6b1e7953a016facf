"""A run's growth as one animated GIF: the fixed-noise sample grids it saved (RUN/samples), oldest
first, each frame captioned with its training step. The grids all come from the same noise, so
the frames show the same would-be digits taking shape."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from ganforge.data.folder import open_image
from ganforge.errors import GanforgeError
from ganforge.outputs import check_gif_size, write_gif
from ganforge.rundir import RunDir

BANNER_PX = 18  # the strip above each grid that holds its caption
FONT_PX = 13
HOLD_LAST = 8  # the finished grid stays up this many frames before the loop starts again


def caption(grid: Image.Image, text: str) -> Image.Image:
    """`grid` under a black banner with white `text`."""
    frame = Image.new(grid.mode, (grid.width, grid.height + BANNER_PX), 0)
    frame.paste(grid, (0, BANNER_PX))
    white = 255 if grid.mode == "L" else (255, 255, 255)
    ImageDraw.Draw(frame).text((4, 2), text, fill=white, font=ImageFont.load_default(size=FONT_PX))
    return frame


def read_grid(path: Path) -> Image.Image:
    try:
        img = open_image(path)  # refuses decompression bombs before decoding
    except (OSError, ValueError) as e:
        raise GanforgeError(f"{path} is not a readable PNG ({e}); delete it or re-save the grid") from None
    return img.convert("L" if img.mode in ("L", "1", "P", "LA") else "RGB")


def timelapse(run: str | Path, out: str | Path, frame_ms: int = 200, max_frames: int = 100) -> int:
    """Write the GIF `out` from the run's sample grids; returns the number of grids shown."""
    chosen = RunDir(run).sample_grids(most=max_frames)
    if not chosen:
        raise GanforgeError(f"{run} has no sample grids (samples/step-*.png); train it first, or lower "
                            "--sample-every so training saves some")
    first = caption(read_grid(chosen[0][1]), f"step {chosen[0][0]:,}")
    # Every frame must share its size, so the GIF's memory is known before the rest are decoded.
    check_gif_size(len(chosen) + HOLD_LAST, first.height, first.width, len(first.getbands()), "lower --max-frames")
    frames = [first]
    for step, path in chosen[1:]:
        frame = caption(read_grid(path), f"step {step:,}")
        if (frame.size, frame.mode) != (first.size, first.mode):
            raise GanforgeError(f"{path} is {frame.size[0]}x{frame.size[1]} {frame.mode}, unlike the run's other "
                                f"grids ({first.size[0]}x{first.size[1]} {first.mode}); remove it")
        frames.append(frame)
    frames += [frames[-1]] * HOLD_LAST
    arrays = np.stack([np.asarray(f) for f in frames])  # (N, H, W) or (N, H, W, 3)
    images = torch.from_numpy(arrays[:, None] if arrays.ndim == 3 else arrays.transpose(0, 3, 1, 2))
    write_gif(Path(out), images.contiguous(), frame_ms)
    return len(chosen)
