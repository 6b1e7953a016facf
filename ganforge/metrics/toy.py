"""Measures of generated 2-D points against a toy source, as pure functions of float tensors.

- Mode statistics for Gaussian mixtures (`ring8`, `grid25`): the definitions of VEEGAN
  (Srivastava et al. 2017, §5.1 "Synthetic Dataset") and PacGAN (Lin et al. 2018, whose released
  code, synthetic_data_experiments/PacGAN/pacgan/extensions.py `MetricLogger`, computes them).
- The sliced Wasserstein distance for every source, mixtures or not (Rabin et al. 2011).

    from ganforge.data.toy import toy_dataset
    from ganforge.metrics.toy import toy_metrics
    toy_metrics(samples, toy_dataset("ring8"))   # {"swd": ..., "modes_covered": ..., ...}

A diverged generator's NaN samples are never high quality, and they make the SWD NaN.
"""

from __future__ import annotations

import math

import torch

HQ_SIGMAS = 3.0  # "within three standard deviations of the nearest mode" (VEEGAN; PacGAN dis_thre=3)
MIN_COUNT = 1  # a mode is captured by one high-quality sample (VEEGAN: "at least one")
N_PROJECTIONS = 128
SWD_SEED = 0  # fixed directions by default, so that two measurements compare like with like
CHUNK = 65_536  # rows of the (N, K) distance matrix held at once
REFERENCE_SIZE = 20_000  # data points an SWD is measured against (see toy_metrics)
PROJECTION_CHUNK = 32  # directions projected at once: a 100,000-point set then needs ~40 MB


def _nearest_mode(samples: torch.Tensor, centres: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N,) index of each sample's nearest centre and (N,) the Euclidean distance to it."""
    index, distance = [], []
    centres = centres.to(samples.device, torch.float64)
    for chunk in samples.split(CHUNK):
        d = torch.cdist(chunk.double(), centres)  # (n, K)
        best = d.min(1)
        index.append(best.indices)
        distance.append(best.values)
    return torch.cat(index), torch.cat(distance)


def mode_stats(samples: torch.Tensor, centres: torch.Tensor, sigma: float,
               threshold: float = HQ_SIGMAS, min_count: int = MIN_COUNT) -> dict:
    """How many of the K mixture modes the samples reach, and how many samples are on a mode.

    A sample is *high quality* when it lies within `threshold` standard deviations of its
    nearest centre, |x - c_nearest| < threshold * sigma (VEEGAN §5.1; PacGAN's MetricLogger uses
    the same nearest-mode rule, with a strict < 3). A mode is *covered* when at least `min_count`
    high-quality samples have it as their nearest centre (VEEGAN: "the number of mixture
    components whose mean is nearest to at least one high quality sample", so min_count 1).
    Samples of the mixture itself are high quality with probability 1 - exp(-9/2) = 98.9% in 2-D
    (the distance to the centre over sigma is chi-distributed with 2 degrees of freedom).

    `mode_kl` is KL(p || uniform) = sum_k p_k log(K p_k) = log K - H(p), where p is the histogram
    over modes of the high-quality samples: 0 when they spread evenly, log K when they all sit on
    one mode. It is the KL to uniform of the histogram whose entropy PacGAN's MetricLogger logs
    ("entropy of coverage"); NaN when no sample is high quality (the histogram is empty).

    Returns `modes_covered` (int), `num_modes` (K), `high_quality` (share in [0, 1]), `mode_kl`
    (nats) and `mode_counts` (K ints: high-quality samples per mode).
    """
    if samples.ndim != 2 or centres.ndim != 2 or samples.shape[1] != centres.shape[1]:
        raise ValueError(f"samples (N, D) and centres (K, D) must share D, got "
                         f"{tuple(samples.shape)} and {tuple(centres.shape)}")
    if len(samples) == 0 or len(centres) == 0 or not sigma > 0:
        raise ValueError(f"need samples, centres and sigma > 0 (got N={len(samples)}, "
                         f"K={len(centres)}, sigma={sigma})")
    nearest, distance = _nearest_mode(samples, centres)
    high_quality = distance < threshold * sigma  # NaN compares False: a NaN sample is never on a mode
    counts = torch.bincount(nearest[high_quality], minlength=len(centres))
    total = int(counts.sum())
    if total:
        p = counts[counts > 0].double() / total
        mode_kl = float((p * (p * len(centres)).log()).sum())
    else:
        mode_kl = math.nan
    return {"modes_covered": int((counts >= min_count).sum()), "num_modes": len(centres),
            "high_quality": total / len(samples), "mode_kl": mode_kl,
            "mode_counts": counts.tolist()}


def _quantile_steps(n: int, m: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """Weights (L,) and order-statistic indices ia, ib (L,) such that, for sorted samples a (N,)
    and b (M,), W1 = sum_l weight_l |a[ia_l] - b[ib_l]|.

    W1(mu, nu) = integral over t in (0, 1] of |F_mu^-1(t) - F_nu^-1(t)| (the 1-D closed form;
    Peyré & Cuturi 2019, "Computational Optimal Transport", Remark 2.30). Both empirical quantile
    functions are steps, constant between the breakpoints {i/N} and {j/M}; on the common
    denominator N*M those are the integers i*M and j*N, so the integral is an exact weighted sum
    with no rounding of the breakpoints (a breakpoint shared by both gets weight 0). With N = M it
    is mean |a_(i) - b_(i)|.
    """
    s = torch.cat([torch.arange(1, n + 1, device=device) * m,
                   torch.arange(1, m + 1, device=device) * n]).sort().values  # in (0, N*M]
    weight = torch.diff(s, prepend=s.new_zeros(1)).float() / (n * m)
    ia = (s + m - 1) // m - 1  # ceil(s / M) - 1: the order statistic of a on (s_prev, s]
    ib = (s + n - 1) // n - 1
    return weight, ia, ib


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, n_projections: int = N_PROJECTIONS,
                       generator: torch.Generator | None = None) -> float:
    """Sliced 1-Wasserstein distance between point sets a (N, D) and b (M, D), in data units:

        SW1(a, b) = E_theta W1(<theta, a>, <theta, b>),  theta uniform on the unit sphere,

    estimated with `n_projections` random directions (Rabin, Peyré, Delon & Bernot 2011,
    "Wasserstein Barycenter and its Application to Texture Mixing"; Bonneel et al. 2015). W1, not
    W2, so that a shift by a vector v gives |v| E|cos theta| = (2/pi)|v| in 2-D. Unequal sizes are
    compared through their quantile functions, exactly (see `_quantile_steps`). The directions come
    from `generator` (a CPU torch.Generator; by default seeded with SWD_SEED, so that repeated
    measurements use the same directions).
    """
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or not len(a) or not len(b):
        raise ValueError(f"a (N, D) and b (M, D) must be non-empty and share D, got "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")
    if n_projections < 1:
        raise ValueError(f"n_projections must be >= 1, got {n_projections}")
    generator = generator or torch.Generator().manual_seed(SWD_SEED)
    # A normalised standard normal vector is uniform on the sphere (Muller 1959).
    theta = torch.randn(n_projections, a.shape[1], generator=generator, dtype=torch.float64)
    theta = (theta / theta.norm(dim=1, keepdim=True)).to(a.device, torch.float32)
    a, b = a.float(), b.to(a.device).float()
    weight, ia, ib = _quantile_steps(len(a), len(b), a.device)
    w1 = []
    for t in theta.split(PROJECTION_CHUNK):  # (p, D)
        a_proj = (t @ a.T).sort(1).values  # (p, N): sorting rows of a contiguous tensor is fast
        b_proj = (t @ b.T).sort(1).values  # (p, M)
        w1.append(((a_proj[:, ia] - b_proj[:, ib]).abs() @ weight))  # (p,)
    return float(torch.cat(w1).double().mean())


def toy_metrics(samples: torch.Tensor, dataset, n_projections: int = N_PROJECTIONS,
                generator: torch.Generator | None = None,
                reference_size: int = REFERENCE_SIZE) -> dict:
    """The measures that fit `dataset` (a `ganforge.data.toy.PointDataset`): `swd` to its points
    always, plus the `mode_stats` keys when it is a mixture (it has centres and sigma).

    The SWD uses the first `reference_size` points of the data set: they are an i.i.d. sample, so
    a random subset, and the sampling noise of the distance is set by the smaller of the two sets
    (a few thousand generated samples), so more reference points cost time and buy nothing.
    """
    reference = dataset.points[:reference_size]
    metrics = {"swd": sliced_wasserstein(samples, reference, n_projections, generator)}
    if dataset.centres is not None:
        metrics.update(mode_stats(samples, dataset.centres, dataset.sigma))
    return metrics
