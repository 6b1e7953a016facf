"""The measurements, as pure functions of features and class probabilities (torch/numpy only).

Features are (N, D) float tensors from `ganforge.metrics.features.embed`; probabilities (N, K).
Pairwise distances are computed in chunks, so 10,000 x 10,000 comparisons never hold more than
CHUNK rows at once.
"""

from __future__ import annotations

import math

import numpy as np
import torch

CHUNK = 2000
PR_K = 3  # Kynkäänniemi et al. 2019
DC_K = 5  # Naeem et al. 2020
KID_SUBSETS = 100  # as in Bińkowski et al.'s code and StyleGAN2-ADA
KID_SUBSET_SIZE = 1000
COVERED_SHARE = 0.1  # a class counts as made when it gets >= 10% of its uniform share


def _sqrtm_psd(a: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix; rounding negatives become 0."""
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """FID: the Fréchet distance between N(mu1, cov1) and N(mu2, cov2) (Heusel et al. 2017,
    "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium"):

        |mu1 - mu2|^2 + tr(cov1) + tr(cov2) - 2 tr((cov1 cov2)^(1/2))

    tr((cov1 cov2)^(1/2)) = tr((s cov2 s)^(1/2)) with s = cov1^(1/2), because cov1 cov2 and
    s cov2 s are similar. s cov2 s is symmetric PSD, so its root's trace is the sum of the roots of
    its eigenvalues: real, in float64, and defined for rank-deficient covariances (where scipy's
    sqrtm returns complex parts or NaN).
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    cov1, cov2 = np.asarray(cov1, np.float64), np.asarray(cov2, np.float64)
    s = _sqrtm_psd(cov1)
    m = s @ cov2 @ s
    tr_covmean = np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum()
    diff = mu1 - mu2
    return float(max(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2 * tr_covmean, 0.0))


def kernel_distance(x: torch.Tensor, y: torch.Tensor, subsets: int = KID_SUBSETS,
                    subset_size: int = KID_SUBSET_SIZE, seed: int = 0) -> tuple[float, float]:
    """KID: the unbiased estimate of the squared MMD between feature sets x and y with the cubic
    polynomial kernel k(a, b) = (a.b / D + 1)^3 (Bińkowski et al. 2018, "Demystifying MMD GANs"),
    averaged over `subsets` random subsets of `subset_size` points each (at most half of each set,
    so that subsets differ); returns (mean, std over subsets). Unbiased, so it can be slightly
    negative when the sets match."""
    gen = torch.Generator().manual_seed(seed)
    x, y = x.double(), y.double()
    m, d = min(subset_size, len(x) // 2, len(y) // 2), x.shape[1]
    if m < 2:
        return math.nan, math.nan
    values = []
    for _ in range(subsets):
        z = torch.cat([x[torch.randperm(len(x), generator=gen)[:m]], y[torch.randperm(len(y), generator=gen)[:m]]])
        k = torch.addmm(torch.ones((), dtype=z.dtype), z, z.T, alpha=1 / d).pow_(3)  # (2m, 2m): one Gram matrix
        block = k.view(2, m, 2, m).sum((1, 3))  # [[sum k_xx, sum k_xy], [., sum k_yy]]
        diag = k.diagonal()
        within = (block[0, 0] - diag[:m].sum() + block[1, 1] - diag[m:].sum()) / (m * (m - 1))
        values.append((within - 2 * block[0, 1] / m ** 2).item())
    t = torch.tensor(values)
    return t.mean().item(), (t.std().item() if subsets > 1 else 0.0)


def kth_neighbour_distance(x: torch.Tensor, k: int) -> torch.Tensor:
    """Distance (N,) from each point of x to its k-th nearest other point of x."""
    k = min(k, len(x) - 1)
    # k + 1: the point itself is at distance 0. topk is several times faster than kthvalue here.
    return torch.cat([torch.cdist(c, x).topk(k + 1, dim=1, largest=False).values[:, -1]
                      for c in x.split(CHUNK)])


def real_radii(real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The k-NN radii of the real points for precision/recall (k = 3) and density/coverage (k = 5)."""
    real = real.float()
    k_max = min(max(PR_K, DC_K), len(real) - 1)
    nearest = torch.cat([torch.cdist(c, real).topk(k_max + 1, dim=1, largest=False).values
                         for c in real.split(CHUNK)])  # (N, k_max + 1), column 0 = the point itself
    return nearest[:, min(PR_K, k_max)], nearest[:, min(DC_K, k_max)]


def manifold_scores(real: torch.Tensor, fake: torch.Tensor,
                    radii: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict[str, float]:
    """Precision and recall (k = 3) and density and coverage (k = 5) of `fake` against `real`.

    - precision: share of fakes inside some real point's k-NN ball; recall: share of reals inside
      some fake point's k-NN ball (Kynkäänniemi et al. 2019, "Improved Precision and Recall Metric
      for Assessing Generative Models").
    - density: mean number of real k-NN balls holding each fake, divided by k (can exceed 1);
      coverage: share of reals whose k-NN ball holds at least one fake (Naeem et al. 2020,
      "Reliable Fidelity and Diversity Metrics for Generative Models").
    `radii` are `real_radii(real)` when already known. One pass over fake chunks computes all four.
    """
    real, fake = real.float(), fake.float()
    r_pr, r_dc = radii if radii is not None else real_radii(real)
    f_pr = kth_neighbour_distance(fake, PR_K)
    in_real = in_real_count = 0
    real_in_fake = torch.zeros(len(real), dtype=torch.bool)
    nearest_fake = torch.full((len(real),), math.inf)
    for f, fr in zip(fake.split(CHUNK), f_pr.split(CHUNK)):
        d = torch.cdist(f, real)  # (c, N_real)
        in_real += (d <= r_pr).any(1).sum().item()
        in_real_count += (d <= r_dc).sum().item()
        real_in_fake |= (d <= fr[:, None]).any(0)
        nearest_fake = torch.minimum(nearest_fake, d.min(0).values)
    return {"precision": in_real / len(fake), "recall": real_in_fake.float().mean().item(),
            "density": in_real_count / (DC_K * len(fake)),
            "coverage": (nearest_fake < r_dc).float().mean().item()}


def digit_score(probs: torch.Tensor) -> float:
    """The Inception Score formula (Salimans et al. 2016, "Improved Techniques for Training GANs")
    on the digit classifier's softmax: exp(E_x KL(p(y|x) || p(y))). High when each image is
    confidently one class and all classes appear; at most K (10 for digits)."""
    p = probs.double().clamp_min(1e-12)
    marginal = p.mean(0, keepdim=True)
    return math.exp((p * (p.log() - marginal.log())).sum(1).mean().item())


def class_accuracy(probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of images the classifier assigns to the class they were generated for (the
    "classification accuracy score" idea of conditional GAN papers, e.g. Odena et al. 2017)."""
    return (probs.argmax(1) == labels).double().mean().item()


def class_histogram(probs: torch.Tensor) -> torch.Tensor:
    """Share (K,) of images predicted as each class."""
    return torch.bincount(probs.argmax(1), minlength=probs.shape[1]).double() / len(probs)


def classes_covered(probs: torch.Tensor) -> int:
    """Number of classes predicted for at least COVERED_SHARE of their uniform share: a mode
    collapse counter in the spirit of the mode counts of Metz et al. 2017 (unrolled GANs)."""
    hist = class_histogram(probs)
    return int((hist >= COVERED_SHARE / len(hist)).sum())


def class_kl(probs: torch.Tensor) -> float:
    """KL(predicted class histogram || uniform) = log K - entropy: 0 when all classes are made
    equally often, log K (2.30 for digits) when only one is (Santurkar et al. 2018, "A
    Classification-Based Study of Covariate Shift in GAN Distributions")."""
    hist = class_histogram(probs)
    nz = hist[hist > 0]
    return float(math.log(len(hist)) + (nz * nz.log()).sum().item())
