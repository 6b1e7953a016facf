"""The game on toy networks whose input gradients are known: WGAN-GP's penalty and R1 against
closed forms and finite differences, R1's lazy interval, ACGAN's terms, gradients through DiffAugment."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
from torch.testing import assert_close

from ganforge import losses
from ganforge.config import TrainConfig
from ganforge.game import WGAN_GP_WEIGHT, Game
from ganforge.nets import build_discriminator, build_generator

B, SIDE, Z = 6, 4, 3


def toy_config(**changes) -> TrainConfig:
    return TrainConfig().replace(**{"z_dim": Z, "num_classes": 0, "conditioning": "input",
                                    "img_resolution": SIDE, "augment": 0.0, **changes})


class ToyG(nn.Module):
    def __init__(self):
        super().__init__()
        self.A = nn.Parameter(torch.randn(Z, SIDE * SIDE))

    def forward(self, z, labels=None):
        return torch.tanh(z @ self.A).view(-1, 1, SIDE, SIDE)


class LinearD(nn.Module):
    """D(x) = <w, x> + b: its input gradient is w for every x."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(SIDE * SIDE))
        self.b = nn.Parameter(torch.tensor(0.3))

    def forward(self, img, labels=None):
        return img.flatten(1) @ self.w + self.b, None


class TanhD(nn.Module):
    """A small nonlinear D computed in float64, so finite differences are accurate."""

    def __init__(self):
        super().__init__()
        self.W = nn.Parameter(torch.randn(SIDE * SIDE, 5, dtype=torch.float64))
        self.v = nn.Parameter(torch.randn(5, dtype=torch.float64))

    def forward(self, img, labels=None):
        return torch.tanh(img.double().flatten(1) @ self.W) @ self.v, None


def finite_difference_grad(D: nn.Module, x: torch.Tensor, h: float = 1e-6) -> torch.Tensor:
    """Central differences of D's per-sample output w.r.t. each input pixel: (B, C, H, W)."""
    x = x.detach().double()
    grad = torch.zeros_like(x).flatten(1)
    with torch.no_grad():
        for j in range(grad.shape[1]):
            step = torch.zeros_like(grad)
            step[:, j] = h
            plus = D((x.flatten(1) + step).view_as(x))[0]
            minus = D((x.flatten(1) - step).view_as(x))[0]
            grad[:, j] = (plus - minus) / (2 * h)
    return grad.view_as(x)


def real_batch() -> torch.Tensor:
    return torch.rand(B, 1, SIDE, SIDE, generator=torch.Generator().manual_seed(9)) * 2 - 1


def d_loss(cfg, G, D, d_step=0, seed=0):
    game = Game(G, D, cfg, torch.Generator().manual_seed(seed))
    loss, _ = game.d_loss(real_batch(), None, d_step)
    return loss


@pytest.mark.parametrize("augment", [0.0, 1.0])
def test_r1_matches_closed_form_on_a_linear_D(augment):
    torch.manual_seed(0)
    G, D = ToyG(), LinearD()
    gamma, every = 3.0, 4
    base = d_loss(toy_config(augment=augment), G, D)
    # lazy: on D steps 0, 4, 8, ... add gamma/2 * every * E||grad D||^2 = gamma/2 * every * ||w||^2,
    # with the gradient taken at D's input (augmented or not, it is w)
    with_r1 = d_loss(toy_config(augment=augment, r1=gamma, r1_every=every), G, D)
    assert_close(with_r1 - base, gamma / 2 * every * D.w.detach().pow(2).sum(), rtol=1e-5, atol=1e-5)
    for d_step in (1, 2, 3):
        assert_close(d_loss(toy_config(augment=augment, r1=gamma, r1_every=every), G, D, d_step),
                     d_loss(toy_config(augment=augment), G, D, d_step))
    assert_close(d_loss(toy_config(augment=augment, r1=gamma, r1_every=every), G, D, 8) - d_loss(
        toy_config(augment=augment), G, D, 8), with_r1 - base)


def test_r1_matches_finite_differences_on_a_nonlinear_D():
    torch.manual_seed(1)
    G, D = ToyG(), TanhD()
    gamma = 2.0
    added = d_loss(toy_config(r1=gamma, r1_every=1), G, D) - d_loss(toy_config(), G, D)
    grad = finite_difference_grad(D, real_batch())
    expected = gamma / 2 * grad.flatten(1).pow(2).sum(1).mean()
    assert_close(added, expected, rtol=1e-4, atol=1e-6)


def replay_mix(cfg, G, seed=0) -> torch.Tensor:
    """The interpolates x_hat the game draws: replay its generator (z, then one e per sample)."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(B, cfg.model.z_dim, generator=gen)
    eps = torch.rand(B, 1, 1, 1, generator=gen)
    with torch.no_grad():
        fake = G(z)
    return eps * real_batch() + (1 - eps) * fake, fake


def test_gradient_penalty_matches_finite_differences_at_per_sample_interpolates():
    torch.manual_seed(2)
    G, D = ToyG(), TanhD()
    cfg = toy_config(loss="wgan-gp")
    loss = d_loss(cfg, G, D)
    x_hat, fake = replay_mix(cfg, G)
    with torch.no_grad():
        critic = D(fake)[0].mean() - D(real_batch())[0].mean()
    norms = finite_difference_grad(D, x_hat).flatten(1).norm(dim=1)
    expected = critic + WGAN_GP_WEIGHT * (norms - 1).pow(2).mean()
    assert_close(loss, expected, rtol=1e-4, atol=1e-6)


def test_gradient_penalty_is_per_sample_not_per_batch():
    # D(x) = ||x||^2 / 2 has gradient x: the penalty is ((||x_hat_i|| - 1)^2) averaged over i,
    # and replaying the draws with one e shared by the batch gives a different value.
    class HalfSquareD(nn.Module):
        def forward(self, img, labels=None):
            return 0.5 * img.flatten(1).pow(2).sum(1), None

    torch.manual_seed(3)
    G, D = ToyG(), HalfSquareD()
    cfg = toy_config(loss="wgan-gp")
    gp = d_loss(cfg, G, D) - losses.d_wasserstein(D(real_batch())[0], D(replay_mix(cfg, G)[1])[0])
    x_hat, fake = replay_mix(cfg, G)
    assert_close(gp, WGAN_GP_WEIGHT * (x_hat.flatten(1).norm(dim=1) - 1).pow(2).mean())
    shared = 0.5 * real_batch() + 0.5 * fake
    assert abs(gp.item() - WGAN_GP_WEIGHT * float((shared.flatten(1).norm(dim=1) - 1).pow(2).mean())) > 1e-3


def test_r1_lazy_interval_counts_d_steps(monkeypatch, tiny_config, tmp_path):
    # With n_dis = 2 and r1_every = 2, R1 runs on D steps 0, 2, 4, ...: every G step, first D step.
    from ganforge.training import train

    calls: list[str] = []
    original_d_loss, original_r1 = Game.d_loss, losses.r1_penalty

    def d_loss_spy(self, *args, **kwargs):
        calls.append("D")
        return original_d_loss(self, *args, **kwargs)

    def r1_spy(grad):
        calls[-1] = "D+R1"
        return original_r1(grad)

    monkeypatch.setattr(Game, "d_loss", d_loss_spy)
    monkeypatch.setattr(losses, "r1_penalty", r1_spy)
    cfg = tiny_config.replace(n_dis=2, r1=1.0, r1_every=2, steps=3, checkpoint_every=100, sample_every=100)
    train(cfg, tmp_path / "run", progress=False)
    assert calls == ["D+R1", "D"] * 3


def test_acgan_adds_class_terms_to_both_players():
    # With K-way class logits of zero, each cross-entropy term is log K: under ACGAN D gets two
    # (real, fake), beside a projection one (real images only); G one (its own images) under both,
    # and nothing else changes.
    K = 4

    class ClassD(LinearD):
        def forward(self, img, labels=None):
            return super().forward(img)[0], torch.zeros(len(img), K)

    torch.manual_seed(4)
    G, D = ToyG(), ClassD()
    labels = torch.randint(0, K, (B,))
    out = {}
    for conditioning in ("projection", "acgan", "projection+classifier"):
        cfg = toy_config(num_classes=K, conditioning=conditioning)
        game = Game(G, D, cfg, torch.Generator().manual_seed(0))
        d, _ = game.d_loss(real_batch(), labels, 1)
        g, _ = game.g_loss(B, torch.device("cpu"))
        out[conditioning] = (d, g)
    assert_close(out["acgan"][0] - out["projection"][0], torch.tensor(2 * math.log(K)))
    assert_close(out["acgan"][1] - out["projection"][1], torch.tensor(math.log(K)))
    assert_close(out["projection+classifier"][0] - out["projection"][0], torch.tensor(math.log(K)))
    assert_close(out["projection+classifier"][1] - out["projection"][1], torch.tensor(math.log(K)))


@pytest.mark.parametrize("augment", [0.0, 1.0])
def test_generator_learns_through_D_and_augmentation_but_D_loss_does_not_reach_G(tiny_config, augment):
    cfg = tiny_config.replace(augment=augment, num_classes=10)
    torch.manual_seed(0)
    G, D = build_generator(cfg.model), build_discriminator(cfg.model)
    game = Game(G, D, cfg, torch.Generator().manual_seed(0))
    real = torch.rand(8, 1, 28, 28) * 2 - 1
    game.d_loss(real, torch.arange(8), 0)[0].backward()
    assert all(p.grad is None for p in G.parameters())
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in D.parameters())
    D.zero_grad()
    game.g_loss(8, torch.device("cpu"))[0].backward()
    grads = [p.grad for p in G.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0


def test_mode_seeking_term_is_the_inverse_distance_ratio_of_same_class_pairs():
    # G(z) = tanh(z A) with a recording D: the extra loss is exactly 1 / (mean|x1 - x2| / mean|z1 - z2|)
    # over the pairs (i, i + B/2), and those pairs were drawn with the same label.
    K, seen = 3, {}

    class RecordingD(LinearD):
        def forward(self, img, labels=None):
            seen["img"], seen["labels"] = img.detach(), labels
            return super().forward(img)

    torch.manual_seed(5)
    G, D = ToyG(), RecordingD()
    losses_by_weight = {}
    for weight in (0.0, 2.0):
        cfg = toy_config(num_classes=K, conditioning="projection", diversity=weight)
        loss, _ = Game(G, D, cfg, torch.Generator().manual_seed(0)).g_loss(B, torch.device("cpu"))
        losses_by_weight[weight] = loss
    z = torch.randn(B, Z, generator=torch.Generator().manual_seed(0))  # the game's first draw
    x, half = seen["img"], B // 2
    assert torch.equal(seen["labels"][:half], seen["labels"][half:])
    ratio = (x[:half] - x[half:]).abs().mean() / (z[:half] - z[half:]).abs().mean()
    # The plain loss differs between the two calls only through the pairing of labels, which a
    # label-blind D ignores: the whole difference is the weighted term.
    assert_close(losses_by_weight[2.0] - losses_by_weight[0.0], 2.0 / (ratio + 1e-5))


def test_mode_seeking_pushes_collapsed_pairs_apart():
    # G that ignores most of z: the term's gradient increases the spread between paired images.
    torch.manual_seed(6)
    G = ToyG()
    with torch.no_grad():
        G.A.mul_(0.01)
    cfg = toy_config(diversity=1.0)
    loss = Game(G, LinearD(), cfg, torch.Generator().manual_seed(0)).g_loss(B, torch.device("cpu"))[0]
    loss.backward()
    z = torch.randn(B, Z, generator=torch.Generator().manual_seed(0))
    spread = lambda A: (torch.tanh(z[:B // 2] @ A) - torch.tanh(z[B // 2:] @ A)).abs().mean()  # noqa: E731
    before = spread(G.A.detach())
    after = spread(G.A.detach() - 1e-3 * G.A.grad)
    assert after > before


@pytest.mark.parametrize("net,conditioning,classes,r1", [
    ("mlp", "input", 10, 0.0), ("dcgan", "projection", 10, 0.0), ("dcgan", "acgan", 10, 0.0),
    ("resnet", "projection", 10, 0.0), ("dcgan", "input", 0, 0.0), ("dcgan", "projection", 10, 1.0)])
def test_d_loss_sees_real_and_fake_in_one_pass_with_the_two_passes_result(tiny_config, net, conditioning,
                                                                          classes, r1):
    # Game.d_loss runs D once on real and fake images together; no D mixes the images of a batch,
    # so the loss must be what two separate passes give. On an R1 step it keeps the two passes, so
    # that R1's double backward does not run over the fakes too.
    cfg = tiny_config.replace(net=net, conditioning=conditioning, num_classes=classes, augment=0.0, amp="off",
                              r1=r1, r1_every=1)
    torch.manual_seed(0)
    G, D = build_generator(cfg.model), build_discriminator(cfg.model)
    real, labels = torch.rand(8, 1, 28, 28) * 2 - 1, torch.arange(8) if classes else None
    calls = []
    D.register_forward_hook(lambda *_: calls.append(1))
    loss, _ = Game(G, D, cfg, torch.Generator().manual_seed(3)).d_loss(real, labels, 1)
    assert len(calls) == (2 if r1 else 1)
    if r1:
        real.requires_grad_(True)

    z, fake_labels = Game(G, D, cfg, torch.Generator().manual_seed(3)).latents(8, torch.device("cpu"))
    with torch.no_grad():
        fake = G(z, fake_labels)
    (real_logits, real_cls), (fake_logits, fake_cls) = D(real, labels), D(fake, fake_labels)
    expected = losses.LOSSES[cfg.loss][0](real_logits, fake_logits)
    if conditioning == "acgan":
        expected = expected + losses.class_loss(real_cls, labels) + losses.class_loss(fake_cls, fake_labels)
    if r1:
        (grad,) = torch.autograd.grad(real_logits.sum(), real)
        expected = expected + r1 / 2 * losses.r1_penalty(grad)
    assert_close(loss, expected, rtol=1e-5, atol=1e-6)
