"""benchmarks/own_images.py's data and measures (benchmarks/_own_data.py), without training: the
coloured digits keep their digit in luminance, `digit_view` reads it back white on black whichever
colour is brighter, and the colour distance is 0 for the same colours and large for others."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from ganforge.data import load_dataset
from ganforge.data.dataset import resize
from ganforge.metrics.registry import evaluate_samples

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def benchmark_module(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def od():
    return benchmark_module("_own_data")


@pytest.fixture(scope="module")
def digits(tiny_digits, od):
    return od.mnist(tiny_digits)


def test_coloured_digits_keep_their_contrast_and_read_back_as_the_digit(od, digits):
    images, labels = digits
    rgb, fg, bg = od.colour_digits(images, seed=0)
    assert rgb.shape == (len(images), 3, 32, 32) and rgb.dtype == torch.uint8
    assert float(((fg - bg) @ od.LUMA).abs().min()) >= od.MIN_CONTRAST
    assert bool((((fg - bg) @ od.LUMA) > 0).any()) and bool((((fg - bg) @ od.LUMA) < 0).any())  # both polarities
    view = od.digit_view(rgb)
    grey = evaluate_samples(images, labels, metrics=["class_accuracy"])["class_accuracy"]
    read = evaluate_samples(view, labels, metrics=["class_accuracy"])["class_accuracy"]
    assert grey - 0.05 <= read <= grey + 0.05, (grey, read)  # colouring and reading back lose ~nothing


def test_fg_bg_colours_recover_the_drawn_colours(od, digits):
    rgb, fg, bg = od.colour_digits(digits[0][:50], seed=1)
    fg_seen, bg_seen = od.fg_bg_colours(rgb)
    torch.testing.assert_close(bg_seen, bg, atol=0.02, rtol=0)  # the background is flat
    # Stroke pixels include anti-aliased edges (half background): the mean is pulled towards bg.
    error = (fg_seen - fg).abs()
    assert float(error.median()) < 0.1 and float(error.max()) < 0.3, error.max()


def test_luma_contrast_reads_the_drawn_contrast_and_little_for_faint_strokes(od, digits):
    def contrast(images):
        return od.luma_difference(*od.fg_bg_colours(images)).abs()

    rgb, fg, bg = od.colour_digits(digits[0][:50], seed=2)
    drawn = od.luma_difference(fg, bg).abs()
    read = contrast(rgb)
    assert bool((read <= drawn + 0.02).all())  # anti-aliased stroke pixels only pull it down...
    assert float((drawn - read).median()) < 0.1  # ...a little
    alpha = resize(digits[0][:50], 32).float() / 255  # the same strokes, grey on grey 0.05 apart
    faint = 0.5 + 0.05 * alpha.expand(-1, 3, -1, -1)
    read_faint = contrast((faint * 255).round().to(torch.uint8))
    assert float(read_faint.max()) <= 0.06 and float(read_faint.median()) > 0.02


def test_colour_distance_is_zero_for_the_same_colours_and_one_for_disjoint_ones(od):
    colours = torch.rand(500, 3, generator=torch.Generator().manual_seed(0))
    assert od.colour_distance(colours, colours) == pytest.approx(0.0, abs=1e-9)
    dark, light = colours * 0.2, 0.8 + colours * 0.2
    assert od.colour_distance(dark, light) == pytest.approx(1.0, abs=1e-9)


def test_write_folder_is_read_back_by_ganforge_with_the_digit_names(od, digits, tmp_path):
    images, labels = digits
    idx = od.pick(labels, [3, 7], 4)
    assert idx.shape == (8,) and set(labels[idx].tolist()) == {3, 7}
    ds = load_dataset(str(od.write_folder(tmp_path / "f", images[idx], labels[idx])))
    assert ds.class_names == ["3", "7"] and len(ds) == 8
    torch.testing.assert_close(od.digit_labels(ds.class_names, ds.labels), labels[idx].sort().values)


def test_lanczos_28_undoes_the_64px_upsampling_closely(od, digits):
    images = digits[0][:20]
    back = od.lanczos_28(od.upsample(images, 64))
    assert back.shape == images.shape and back.dtype == torch.uint8
    error = (back.float() - images.float()).abs().mean()
    assert 0 < float(error) < 8, error  # a few grey levels of 255 on average: strokes keep their width


def test_each_part_is_recorded_where_its_doc_is_and_old_flag_spellings_still_run():
    module = benchmark_module("own_images")
    a = module.parse_args(["--out", "results.md", "--tuning-out", "tuning.md", "--res64-args", "--width 8",
                           "--res64-minutes", "1,2"])
    assert {part: module.destination(a, part).name for part in module.PARTS} == {
        "finetune": "results.md", "smalldata": "results.md", "colour": "results.md", "res64": "results.md",
        "res128": "results.md", "res64tune": "tuning.md", "res128tune": "tuning.md"}
    assert (a.res_args, a.res_minutes) == ("--width 8", [1.0, 2.0])  # the recorded commands' spellings

