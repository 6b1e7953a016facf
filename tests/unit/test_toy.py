"""Toy 2-D sources, the points CSV reader and the toy measures (mode statistics, sliced W1)."""

from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from ganforge.data import toy
from ganforge.data.toy import (TOY_SOURCES, PointDataset, grid_centres, load_points_csv, ring_centres,
                               toy_dataset)
from ganforge.errors import GanforgeError
from ganforge.metrics.toy import mode_stats, sliced_wasserstein, toy_metrics


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- sources ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", TOY_SOURCES)
def test_sources_are_deterministic_per_seed(name):
    a, b = toy_dataset(name, n=1000, seed=3), toy_dataset(name, n=1000, seed=3)
    c = toy_dataset(name, n=1000, seed=4)
    assert a.points.dtype == torch.float32 and a.points.shape == (1000, 2)
    assert torch.equal(a.points, b.points)
    assert not torch.equal(a.points, c.points)
    assert torch.isfinite(a.points).all()


def test_mixture_centres():
    angle = torch.arange(8) * (2 * math.pi / 8)
    assert_close(ring_centres(), 2 * torch.stack([angle.cos(), angle.sin()], 1))
    assert_close(ring_centres().norm(dim=1), torch.full((8,), 2.0))
    expected = {(x, y) for x in (-4, -2, 0, 2, 4) for y in (-4, -2, 0, 2, 4)}  # PacGAN's 2D grid
    assert {tuple(c) for c in grid_centres().int().tolist()} == expected
    assert torch.equal(grid_centres(), grid_centres().round())


@pytest.mark.parametrize("name, k, sigma", [("ring8", 8, 0.02), ("grid25", 25, 0.05)])
def test_mixtures_have_their_modes(name, k, sigma):
    n = 1000 * k
    ds = toy_dataset(name, n=n, seed=0)
    assert ds.sigma == sigma and ds.centres.shape == (k, 2)
    d = torch.cdist(ds.points.double(), ds.centres.double())
    nearest = d.min(1)
    # |x - c| / sigma is chi with 2 degrees of freedom: P(> 6) = exp(-18), about 1e-8 a point.
    assert nearest.values.max() < 6 * sigma
    counts = torch.bincount(nearest.indices, minlength=k)
    # Binomial(n, 1/k): standard deviation about 31; 5 of them either side.
    assert counts.min() > 1000 - 160 and counts.max() < 1000 + 160
    assert_close(ds.points.mean(0), torch.zeros(2), atol=0.1, rtol=0)


def test_shapes_extent_and_placement():
    spiral, moons = toy_dataset("spiral", n=20_000), toy_dataset("moons", n=20_000)
    assert spiral.centres is None and spiral.sigma is None and moons.centres is None
    r = spiral.points.norm(dim=1)
    assert r.max() < 3.6  # radius 3 plus six noise widths
    # r = 3 sqrt(u), u uniform, so E r = 2 (the noise adds about 0.003).
    assert_close(r.mean(), torch.tensor(2.0), atol=0.05, rtol=0)
    assert moons.points[:, 0].abs().max() < 3.6 and moons.points[:, 1].abs().max() < 2.1
    # make_moons has mean (1/2, 1/4); centring puts it at 0.
    assert_close(moons.points.mean(0), torch.zeros(2), atol=0.05, rtol=0)


def test_toy_dataset_errors():
    with pytest.raises(GanforgeError, match="unknown toy source 'rings'; choose one of ring8, grid25"):
        toy_dataset("rings")
    with pytest.raises(GanforgeError, match="n=5 is outside"):
        toy_dataset("ring8", n=5)


def test_point_dataset_mirrors_image_dataset():
    ds = toy_dataset("ring8", n=100)
    index = torch.tensor([3, 1, 4])
    points, labels = ds.batch(index)
    assert torch.equal(points, ds.points[index])
    assert labels.dtype == torch.int64 and torch.equal(labels, torch.zeros(3, dtype=torch.int64))
    assert len(ds) == 100 and ds.num_classes == 0 and ds.class_names == []
    moved = ds.to("cpu")
    assert torch.equal(moved.points, ds.points) and torch.equal(moved.centres, ds.centres)
    assert moved.sigma == ds.sigma and moved.source == ds.source
    with pytest.raises(ValueError, match="float32"):
        PointDataset(ds.points.double(), "x")
    with pytest.raises(ValueError, match="go together"):
        PointDataset(ds.points, "x", centres=ds.centres)


# --- points CSV ------------------------------------------------------------------------------

POINTS = torch.tensor([[i * 0.5, -i * 0.25] for i in range(12)])


def write(tmp_path, text: str | bytes, name: str = "p.csv"):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def rows(points=POINTS) -> str:
    return "".join(f"{x},{y}\n" for x, y in points.tolist())


@pytest.mark.parametrize("text", [rows(), "x,y\n" + rows(), " X , Y \r\n\n" + rows().replace("\n", "\r\n\n"),
                                  '"x","y"\n' + rows(), "\ufeffx,y\n" + rows() + "\n  \n"])
def test_csv_reads_points_with_or_without_header(tmp_path, text):
    ds = load_points_csv(write(tmp_path, text))
    assert torch.equal(ds.points, POINTS) and ds.points.dtype == torch.float32
    assert ds.centres is None and ds.sigma is None and ds.source.endswith("p.csv")


@pytest.mark.parametrize("text, message", [
    ("x,y\n1,2\n3,4,5\n", r"line 3: found 3 column\(s\); a points CSV has exactly two"),
    ("1,2\n3\n", r"line 2: found 1 column\(s\)"),
    ("1;2\n", r"line 1: found 1 column\(s\)"),
    ("1,2\n\n3,abc\n", "line 3: 'abc' is not a number"),
    ("a,b\n1,2\n", "line 1: 'a' is not a number; .* header x,y"),
    ("1,2\nx,y\n", "line 2: 'x' is not a number"),
    ("1,2\nnan,4\n", "line 2: 'nan' is not a finite float32 number"),
    ("1,2\n3,-inf\n", "line 2: '-inf' is not a finite float32 number"),
    ("1,1e39\n", "line 1: '1e39' is not a finite float32 number"),
    ("x,y\n" + rows(POINTS[:9]), "holds 9 point\\(s\\); at least 10"),
    ("", "holds 0 point"),
])
def test_csv_errors_name_the_line(tmp_path, text, message):
    with pytest.raises(GanforgeError, match=message):
        load_points_csv(write(tmp_path, text))


def test_csv_file_errors(tmp_path, monkeypatch):
    with pytest.raises(GanforgeError, match="does not exist; give a CSV file"):
        load_points_csv(tmp_path / "missing.csv")
    with pytest.raises(GanforgeError, match="is a directory"):
        load_points_csv(tmp_path)
    with pytest.raises(GanforgeError, match="not UTF-8 text"):
        load_points_csv(write(tmp_path, b"1,2\n\xff\xfe,3\n"))
    path = write(tmp_path, rows())
    monkeypatch.setattr(toy, "MAX_POINTS", 11)
    with pytest.raises(GanforgeError, match="more than 11 points; subsample it"):
        load_points_csv(path)
    monkeypatch.setattr(toy, "MAX_CSV_BYTES", 10)
    with pytest.raises(GanforgeError, match="over the 0 MiB limit"):
        load_points_csv(path)


# --- mode statistics -------------------------------------------------------------------------

CENTRES, SIGMA = ring_centres(), 0.02


def test_all_samples_on_one_mode():
    stats = mode_stats(CENTRES[:1].repeat(100, 1), CENTRES, SIGMA)
    assert stats["modes_covered"] == 1 and stats["num_modes"] == 8 and stats["high_quality"] == 1.0
    assert stats["mode_counts"] == [100] + [0] * 7
    assert_close(stats["mode_kl"], math.log(8))  # KL(point mass || uniform over 8)


def test_perfect_samples_cover_every_mode():
    stats = mode_stats(CENTRES.repeat(10, 1), CENTRES, SIGMA)
    assert stats["modes_covered"] == 8 and stats["high_quality"] == 1.0
    assert stats["mode_counts"] == [10] * 8 and stats["mode_kl"] == 0.0


def test_far_and_nan_samples_are_not_high_quality():
    stats = mode_stats(torch.full((50, 2), 10.0), CENTRES, SIGMA)
    assert stats["high_quality"] == 0.0 and stats["modes_covered"] == 0
    assert math.isnan(stats["mode_kl"])
    stats = mode_stats(torch.stack([CENTRES[2], torch.tensor([math.nan, 0.0])]), CENTRES, SIGMA)
    assert stats["high_quality"] == 0.5 and stats["mode_counts"][2] == 1


def test_three_sigma_boundary_and_min_count():
    radial = CENTRES[:4] / 2  # unit vectors from the origin through the first four centres
    inside, outside = CENTRES[:4] + 2.9 * SIGMA * radial, CENTRES[:4] + 3.1 * SIGMA * radial
    stats = mode_stats(torch.cat([inside, outside]), CENTRES, SIGMA)
    assert stats["high_quality"] == 0.5 and stats["modes_covered"] == 4
    samples = torch.cat([CENTRES[:1].repeat(3, 1), CENTRES[1:2]])
    assert mode_stats(samples, CENTRES, SIGMA, min_count=2)["modes_covered"] == 1
    assert_close(mode_stats(samples, CENTRES, SIGMA)["mode_kl"],
                 0.75 * math.log(8 * 0.75) + 0.25 * math.log(8 * 0.25))


def test_real_mixture_samples_score_like_the_mixture():
    ds = toy_dataset("grid25", n=100_000, seed=1)
    stats = mode_stats(ds.points, ds.centres, ds.sigma)
    assert stats["modes_covered"] == 25
    # P(|x - c| < 3 sigma) = 1 - exp(-9/2) in 2-D; binomial sd over 1e5 samples about 3e-4.
    assert_close(stats["high_quality"], 1 - math.exp(-4.5), atol=2e-3, rtol=0)
    assert 0 <= stats["mode_kl"] < 1e-3


# --- sliced Wasserstein ----------------------------------------------------------------------

def test_swd_zero_for_identical_and_equal_empirical_distributions():
    a = torch.randn(500, 2, generator=gen(1))
    assert sliced_wasserstein(a, a.clone()) == 0.0
    assert sliced_wasserstein(a, torch.cat([a, a])) == 0.0  # unequal sizes, same distribution


def test_swd_is_symmetric_and_deterministic():
    a, b = torch.randn(300, 2, generator=gen(1)), torch.randn(700, 2, generator=gen(2)) + 0.5
    assert sliced_wasserstein(a, b, 64, gen(5)) == sliced_wasserstein(b, a, 64, gen(5))
    assert sliced_wasserstein(a, b) == sliced_wasserstein(a, b)
    assert sliced_wasserstein(a, b) > 0


def test_swd_one_dimensional_is_exact_w1():
    a, b = torch.tensor([[0.0], [1.0]]), torch.tensor([[0.0], [0.0], [3.0]])
    # Quantiles: a is 0 then 1 after t = 1/2; b is 0 then 3 after t = 2/3.
    # W1 = (2/3 - 1/2) * |1 - 0| + (1 - 2/3) * |1 - 3| = 5/6.
    assert_close(sliced_wasserstein(a, b, 3), 5 / 6)


@pytest.mark.parametrize("shift", [1.0, 2.0])
def test_swd_of_a_shift_is_two_over_pi_per_unit(shift):
    a = torch.randn(100, 2, generator=gen(1))  # any set: the answer does not depend on it
    # W1 of the projections is |shift cos theta|; E|cos theta| = 2/pi on the circle. With 4096
    # directions the standard error is 0.31 shift / 64 = 0.005 shift.
    swd = sliced_wasserstein(a + torch.tensor([shift, 0.0]), a, 4096, gen(2))
    assert_close(swd, 2 / math.pi * shift, atol=0.02 * shift, rtol=0)


def test_swd_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="share D"):
        sliced_wasserstein(torch.zeros(3, 2), torch.zeros(3, 3))
    with pytest.raises(ValueError, match="n_projections"):
        sliced_wasserstein(torch.zeros(3, 2), torch.zeros(3, 2), 0)


# --- the entry point -------------------------------------------------------------------------

def test_toy_metrics_picks_the_measures(tmp_path):
    ring = toy_dataset("ring8", n=20_000)
    samples = toy_dataset("ring8", n=2000, seed=1).points
    metrics = toy_metrics(samples, ring)
    assert set(metrics) == {"swd", "modes_covered", "num_modes", "high_quality", "mode_kl", "mode_counts"}
    assert metrics["modes_covered"] == 8 and 0 < metrics["swd"] < 0.05
    collapsed = toy_metrics(ring.centres[:1].repeat(2000, 1), ring)
    assert collapsed["modes_covered"] == 1 and collapsed["swd"] > 1.0
    moons = toy_metrics(samples, toy_dataset("moons", n=20_000))
    assert set(moons) == {"swd"}
    from_csv = toy_metrics(samples, load_points_csv(write(tmp_path, rows())))
    assert set(from_csv) == {"swd"} and from_csv["swd"] > 0
