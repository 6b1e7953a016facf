"""The measurements measure: closed forms on Gaussians, and real, corrupted and collapsed digits
against the bundled MNIST test features."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ganforge.errors import GanforgeError
from ganforge.metrics import caveats, evaluate_samples, load_reference, quick_metrics, scores
from ganforge.metrics.features import embed, to_digit_input

N_REAL = 2000  # bundled digits used per test: 200 per class


@pytest.fixture(autouse=True, scope="module")
def _few_kid_subsets():
    with pytest.MonkeyPatch.context() as mp:  # 10 subsets instead of 100: the tests stay fast
        mp.setattr(scores, "KID_SUBSETS", 10)
        yield


def _random_cov(rng: np.random.Generator, d: int, rank: int | None = None) -> np.ndarray:
    a = rng.normal(size=(d, rank or d))
    return a @ a.T / d


# -- FID ------------------------------------------------------------------------------------------
def test_fid_of_a_set_with_itself_is_zero_and_fid_is_symmetric():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=8), rng.normal(size=8)
    c1, c2 = _random_cov(rng, 8), _random_cov(rng, 8)
    assert scores.frechet_distance(mu1, c1, mu1, c1) == pytest.approx(0, abs=1e-9)
    ab, ba = scores.frechet_distance(mu1, c1, mu2, c2), scores.frechet_distance(mu2, c2, mu1, c1)
    assert ab > 0.1
    assert ab == pytest.approx(ba, rel=1e-9)


def test_fid_matches_the_closed_form_for_gaussians():
    # Covariances sharing eigenvectors: tr((C1 C2)^(1/2)) = sum sqrt(a_i b_i), so
    # FID = |mu1 - mu2|^2 + sum (sqrt(a_i) - sqrt(b_i))^2.
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    a, b = rng.uniform(0.1, 3, 6), rng.uniform(0.1, 3, 6)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    got = scores.frechet_distance(mu1, q @ np.diag(a) @ q.T, mu2, q @ np.diag(b) @ q.T)
    assert got == pytest.approx(expected, rel=1e-9)


def test_fid_agrees_with_scipy_sqrtm_on_general_covariances():
    from scipy import linalg
    rng = np.random.default_rng(2)
    mu1, mu2, c1, c2 = rng.normal(size=5), rng.normal(size=5), _random_cov(rng, 5), _random_cov(rng, 5)
    covmean = linalg.sqrtm(c1 @ c2).real
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(c1 + c2 - 2 * covmean)
    assert scores.frechet_distance(mu1, c1, mu2, c2) == pytest.approx(expected, rel=1e-7)


def test_fid_is_finite_and_real_for_rank_deficient_covariances():
    rng = np.random.default_rng(3)
    c1, c2 = _random_cov(rng, 16, rank=3), _random_cov(rng, 16, rank=2)
    d = scores.frechet_distance(np.zeros(16), c1, np.zeros(16), c2)
    assert isinstance(d, float) and math.isfinite(d)
    assert d == pytest.approx(np.trace(c1) + np.trace(c2) - 2 * np.sqrt(np.clip(
        np.linalg.eigvals(c1 @ c2).real, 0, None)).sum(), rel=1e-6, abs=1e-9)
    assert scores.frechet_distance(np.zeros(16), c1, np.zeros(16), c1) == pytest.approx(0, abs=1e-9)


def test_fid_of_samples_converges_to_the_closed_form():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(20000, 4, generator=gen)  # N(0, I)
    y = torch.randn(20000, 4, generator=gen) * 2 + 1  # N(1, 4 I)
    from ganforge.metrics.reference import mean_cov
    got = scores.frechet_distance(*mean_cov(x), *mean_cov(y))
    assert got == pytest.approx(4 * 1 + 4 * (2 - 1) ** 2, rel=0.05)


# -- KID, manifolds, class figures ----------------------------------------------------------------
def test_kid_is_near_zero_for_one_distribution_and_positive_for_two():
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(3000, 16, generator=gen), torch.randn(3000, 16, generator=gen)
    same, same_std = scores.kernel_distance(x, y, subsets=20, subset_size=500)
    shifted, _ = scores.kernel_distance(x, y + 0.5, subsets=20, subset_size=500)
    assert abs(same) < 3 * same_std + 1e-3
    assert shifted > 20 * max(abs(same), same_std)


def test_precision_recall_density_coverage_on_known_sets():
    gen = torch.Generator().manual_seed(0)
    real = torch.randn(1000, 8, generator=gen)
    same = scores.manifold_scores(real, real.clone())
    assert same["precision"] == 1 and same["recall"] == 1 and same["coverage"] == 1
    assert same["density"] == pytest.approx(1 + 1 / scores.DC_K, abs=0.25)  # each fake also sits in its own ball
    far = scores.manifold_scores(real, real + 100)
    assert far == {"precision": 0, "recall": 0, "density": 0, "coverage": 0}
    # Only half of the distribution: fidelity stays perfect, diversity drops (the half's sparser
    # k-NN balls reach a little past its boundary, so a bit above one half).
    half = scores.manifold_scores(real, real[real[:, 0] > 0])
    assert half["precision"] == 1
    assert 0.45 < half["recall"] < 0.85 and 0.45 < half["coverage"] < 0.8


def test_class_figures_on_extreme_posteriors():
    uniform_onehot = F.one_hot(torch.arange(1000) % 10, 10).float()
    assert scores.digit_score(uniform_onehot) == pytest.approx(10, rel=1e-6)
    assert scores.class_kl(uniform_onehot) == pytest.approx(0, abs=1e-9)
    assert scores.classes_covered(uniform_onehot) == 10
    one_class = F.one_hot(torch.full((1000,), 3), 10).float()
    assert scores.digit_score(one_class) == pytest.approx(1, rel=1e-6)
    assert scores.class_kl(one_class) == pytest.approx(math.log(10), rel=1e-9)
    assert scores.classes_covered(one_class) == 1
    assert scores.class_accuracy(uniform_onehot, torch.arange(1000) % 10) == 1


# -- real digits against the bundled MNIST test features -----------------------------------------
@pytest.fixture(scope="module")
def real(bundled_arrays) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = bundled_arrays
    keep = np.concatenate([np.flatnonzero(labels == c)[:N_REAL // 10] for c in range(10)])
    return torch.from_numpy(images[keep].copy()).unsqueeze(1), torch.from_numpy(labels[keep].astype(np.int64))


@pytest.fixture(scope="module")
def real_result(real) -> dict:
    return evaluate_samples(*real)


def test_evaluate_samples_returns_every_figure(real_result):
    for key in ("fid", "kid", "kid_std", "precision", "recall", "density", "coverage", "digit_score",
                "class_accuracy", "per_class_fid", "per_class_accuracy", "classes_covered", "class_kl"):
        assert key in real_result
    assert sorted(real_result["per_class_fid"], key=int) == [str(c) for c in range(10)]


def test_real_digits_score_close_to_the_floor(real_result):
    r = real_result
    assert 0 <= r["fid"] < 1.0
    assert -0.002 < r["kid"] < 0.02  # pixel noise of sigma 0.1 scores ~1.2
    assert 0.7 < r["precision"] <= 1 and 0.7 < r["recall"] <= 1
    assert 0.7 < r["density"] < 1.3 and 0.8 < r["coverage"] <= 1
    assert 9.3 < r["digit_score"] <= 10
    assert 0.98 < r["class_accuracy"] <= 1
    assert r["classes_covered"] == 10 and 0 <= r["class_kl"] < 0.01
    assert all(0 <= v < 3 for v in r["per_class_fid"].values())


def test_shuffled_labels_give_chance_class_accuracy(real):
    images, labels = real
    shuffled = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))]
    r = evaluate_samples(images, shuffled, metrics=["class_accuracy"])
    assert 0.06 < r["class_accuracy"] < 0.14


def test_one_repeated_digit_collapses_coverage_recall_and_classes(real, real_result):
    images, labels = real
    r = evaluate_samples(images[:1].expand(N_REAL, -1, -1, -1), labels[:1].expand(N_REAL))
    assert 0 <= r["recall"] < 0.02 and 0 <= r["coverage"] < 0.02
    assert r["classes_covered"] == 1 and r["class_kl"] == pytest.approx(math.log(10), rel=1e-6)
    assert r["fid"] > 20 * real_result["fid"]
    assert 0.9 < r["digit_score"] < 1.2


def _noisy(images: torch.Tensor, sigma: float) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    noise = torch.randn(images.shape, generator=gen) * sigma * 255
    return (images.float() + noise).round().clamp(0, 255).to(torch.uint8)


def _blurred(images: torch.Tensor, size: int) -> torch.Tensor:
    out = F.avg_pool2d(images.float(), size, stride=1, padding=size // 2, count_include_pad=False)
    return out.round().to(torch.uint8)


@pytest.mark.slow
def test_pixel_noise_and_blur_make_fid_worse_monotonically(real):
    images, labels = real[0][::2], real[1][::2]  # 100 per class
    clean = evaluate_samples(images, labels, metrics=["fid"])["fid"]
    noise = [evaluate_samples(_noisy(images, s), labels, metrics=["fid"])["fid"] for s in (0.05, 0.1, 0.2, 0.4)]
    blur = [evaluate_samples(_blurred(images, k), labels, metrics=["fid"])["fid"] for k in (3, 5)]
    # each step at least 1.3x worse (measured: 0.39 clean; noise 0.60, 1.3, 5.0, 22; blur 15, 49)
    assert all(1.3 * a < b for a, b in zip([clean, *noise], noise))
    assert all(1.3 * a < b for a, b in zip([clean, *blur], blur))


def test_quick_metrics_is_the_in_training_subset(real):
    r = quick_metrics(*real)
    assert {"fid", "precision", "recall", "class_accuracy"} <= set(r) and "kid" not in r


def test_other_shapes_are_converted_and_flagged(real):
    images, labels = real
    rgb = F.interpolate(images[:300].float(), size=32).round().to(torch.uint8).expand(-1, 3, -1, -1)
    assert to_digit_input(rgb).shape == (300, 1, 28, 28)
    r = evaluate_samples(rgb, labels[:300], metrics=["fid", "class_accuracy"])
    assert r["class_accuracy"] > 0.9  # still digits after the round trip
    assert any("3x32x32" in note for note in caveats((3, 32, 32)))
    assert caveats((1, 28, 28)) == []


def test_a_reference_path_is_embedded_on_the_fly(tiny_digits, real):
    ref = load_reference(str(tiny_digits))  # 30 digits per class
    assert ref.features.shape == (300, 64) and ref.digits
    others = torch.arange(N_REAL) % (N_REAL // 10) >= N_REAL // 10 - 30  # 30 other digits per class
    r = evaluate_samples(real[0][others], real[1][others], reference=ref, metrics=["fid", "per_class_fid"])
    # 30 points in 64 dimensions: rank-deficient covariances, so FID is biased up but finite
    assert 0 < r["fid"] < 10 and len(r["per_class_fid"]) == 10
    assert all(math.isfinite(v) for v in r["per_class_fid"].values())


def test_bad_input_is_one_clear_error():
    with pytest.raises(GanforgeError, match="uint8"):
        embed(torch.zeros(4, 1, 28, 28))
    with pytest.raises(GanforgeError, match="labels"):
        evaluate_samples(torch.zeros(4, 28, 28, dtype=torch.uint8), torch.zeros(3))
    with pytest.raises(GanforgeError, match="no such file"):
        load_reference("/nonexistent/reference")
    with pytest.raises(GanforgeError, match="unknown metric"):
        evaluate_samples(torch.zeros(4, 28, 28, dtype=torch.uint8), metrics=["fidd"])
