"""The game: puts G, D and the losses together. It returns losses; it owns no optimizer and
never calls backward (that is the training loop's job).

    (1) Update D: minimise loss_D(D(x), D(G(z).detach()))  [+ gradient penalty, R1, class loss]
    (2) Update G: minimise loss_G(D(G(z)))                  [+ class loss for ACGAN]

With augment > 0, every image D sees, real or generated, first passes through DiffAugment (the ops
of augment_ops, each with probability `augment_p`: cfg.augment, or ADA's p, which the loop sets).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ganforge import dist, losses
from ganforge.augment import diff_augment
from ganforge.config import CLASSIFYING, TrainConfig

WGAN_GP_WEIGHT = 10.0  # lambda of Gulrajani et al. 2017


class Game:
    """`rank` and `world` (data-parallel training): every rank draws the noise of the global batch
    from the same stream `gen` and keeps its share `[rank::world]`, so the ranks together use
    exactly the noise one process would, and `gen`'s state is the same on every rank. Per-image
    randomness of a rank's own images (augmentation, gradient-penalty mixing) comes from
    `local_gen()`, so ranks do not repeat each other's draws."""

    def __init__(self, G: nn.Module, D: nn.Module, cfg: TrainConfig, gen: torch.Generator,
                 rank: int = 0, world: int = 1):
        self.G, self.D, self.cfg, self.gen = G, D, cfg, gen
        self.rank, self.world = rank, world
        self.d_loss_fn, self.g_loss_fn = losses.LOSSES[cfg.loss]
        # D's classifier, if it has one, and whether it also learns the classes G was asked for
        self.classifier = cfg.model.conditional and cfg.model.conditioning in CLASSIFYING
        self.classify_fakes = cfg.model.conditioning == "acgan"
        self.augment_p = cfg.augment

    def latents(self, n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Fresh noise z ~ N(0, I) (n, z_dim) and, if conditional, uniform labels (n,): this
        rank's share of n * world draws."""
        m, share = self.cfg.model, slice(self.rank, None, self.world)
        z = torch.randn(n * self.world, m.z_dim, generator=self.gen, device=device)[share]
        labels = (torch.randint(0, m.num_classes, (n * self.world,), generator=self.gen, device=device)[share]
                  if m.conditional else None)
        return z, labels

    def local_gen(self, device: torch.device) -> torch.Generator:
        """The stream for randomness of this rank's images only: `gen` itself in one process;
        with several ranks a fresh stream per rank, seeded by one draw from the shared `gen`."""
        if self.world == 1:
            return self.gen
        seed = int(torch.randint(2**62, (), generator=self.gen, device=self.gen.device))
        return torch.Generator(device).manual_seed(seed + self.rank)

    def _augment(self, img: torch.Tensor) -> torch.Tensor:
        if self.augment_p <= 0:
            return img
        return diff_augment(img, self.augment_p, self.local_gen(img.device), self.cfg.augment_ops)

    def d_loss(self, real_img: torch.Tensor, real_labels: torch.Tensor | None,
               d_step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """D's loss on one real batch and as many detached fakes; also returns stats to log.

        `d_step` counts D updates (n_dis per G step): R1 runs on every r1_every-th of them.
        """
        cfg = self.cfg
        if not cfg.model.conditional:
            real_labels = None
        r1 = cfg.r1 > 0 and d_step % cfg.r1_every == 0
        z, fake_labels = self.latents(len(real_img), real_img.device)
        with torch.no_grad():
            fake_img = self.G(z, fake_labels)
        # Penalties are taken at D's actual inputs (augmented, when DiffAugment is on): that is
        # the distribution D is trained on, and where its gradient is meant to be controlled.
        real_in = self._augment(real_img.detach()).detach().requires_grad_(r1)
        fake_in = self._augment(fake_img)
        if r1:  # R1's double backward would run over the fake half too: keep the passes apart
            real_logits, real_cls = self.D(real_in, real_labels)
            fake_logits, fake_cls = self.D(fake_in, fake_labels)
        else:
            (real_logits, fake_logits), (real_cls, fake_cls) = self._d_both(real_in, real_labels, fake_in, fake_labels)
        loss = self.d_loss_fn(real_logits, fake_logits)
        stats = {"d_real": torch.sigmoid(real_logits.detach()).mean(),
                 "d_fake": torch.sigmoid(fake_logits.detach()).mean(),
                 # r_t of ADA, D's overfitting signal: near 1 when D is sure of every real image
                 "d_real_sign": real_logits.detach().float().sign().mean()}
        if self.classifier:
            # ACGAN: D maximises the log-likelihood of the right class on real AND generated images
            # (L_C of Odena et al. 2017), so it also learns to tell G which class it drew. Beside a
            # projection it learns real images' classes only: G is then pulled towards what real
            # digits of its class look like, not towards what tells its own fakes apart.
            loss = loss + losses.class_loss(real_cls, real_labels)
            if self.classify_fakes:
                loss = loss + losses.class_loss(fake_cls, fake_labels)
        if cfg.loss == "wgan-gp":
            loss = loss + WGAN_GP_WEIGHT * self._gradient_penalty(real_in.detach(), fake_in, real_labels)
        if r1:
            (grad,) = torch.autograd.grad(real_logits.sum(), real_in, create_graph=True)
            # gamma/2 * E||grad||^2, times the lazy interval so that the average strength per
            # D step is that of R1 on every step (StyleGAN2's lazy regularisation)
            loss = loss + cfg.r1 / 2 * cfg.r1_every * losses.r1_penalty(grad)
        return loss, stats

    def _d_both(self, real_in: torch.Tensor, real_labels: torch.Tensor | None, fake_in: torch.Tensor,
                fake_labels: torch.Tensor | None) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor | None, ...]]:
        """D on the real and the fake batch in one pass: ((real, fake) logits, (real, fake) class
        logits). No D has layers that mix the images of a batch (nets/), so this is the two passes'
        result (but for spectral norm, whose power iteration then runs once per D update, as in
        SNGAN), with larger matrix products and half the calls: the tutorial preset went from 1.89x
        to 1.96x the classic notebook (benchmarks/THROUGHPUT.md)."""
        n = len(real_in)
        labels = torch.cat([real_labels, fake_labels]) if real_labels is not None else None
        logits, cls = self.D(torch.cat([real_in, fake_in]), labels)
        return logits.split(n), (cls.split(n) if cls is not None else (None, None))

    def _gradient_penalty(self, real_in: torch.Tensor, fake_in: torch.Tensor,
                          labels: torch.Tensor | None) -> torch.Tensor:
        """WGAN-GP's penalty at x_hat = e x + (1 - e) G(z), one e ~ U[0, 1] per sample; a
        conditional critic is asked about x_hat with the real image's label."""
        eps = torch.rand(len(real_in), 1, 1, 1, generator=self.local_gen(real_in.device), device=real_in.device)
        mixed = (eps * real_in + (1 - eps) * fake_in).detach().requires_grad_(True)  # (B, C, H, W)
        logits, _ = self.D(mixed, labels)
        (grad,) = torch.autograd.grad(logits.sum(), mixed, create_graph=True)
        return losses.gradient_penalty(grad)

    def g_loss(self, batch_size: int, device: torch.device) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """G's loss on a fresh batch of fakes (gradients flow through D into G)."""
        z, labels = self.latents(batch_size, device)
        half = len(z) // 2 if self.cfg.diversity > 0 else 0
        if half and labels is not None:
            labels = torch.cat([labels[:half], labels[:len(z) - half]])  # pairs (i, i + half) share y
        fake = self.G(z, labels)
        fake_logits, fake_cls = self.D(self._augment(fake), labels)
        loss = self.g_loss_fn(fake_logits)
        if self.classifier:
            loss = loss + losses.class_loss(fake_cls, labels)
        if half:
            # The ratio's means run over the global batch, so data-parallel ranks train as one
            # process does: their shares hold the same pairs when half the batch splits evenly.
            loss = loss + self.cfg.diversity * losses.mode_seeking(fake[:half], fake[half:2 * half], z[:half],
                                                                  z[half:2 * half], mean=dist.global_mean)
        return loss, {}
