"""Every network family x conditioning: shapes, no BatchNorm in D, the projection head's form,
and spectral norm bounding the top singular value of D's weights."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from torch.testing import assert_close

from ganforge.config import IMAGE_NETS, NETS, ModelConfig, preset
from ganforge.nets import FAMILIES, build_discriminator, build_generator, dcgan
from ganforge.nets.common import DiscriminatorHead

# conditional models with each conditioning, and the unconditional model (which takes "input")
CONDITIONS = [(10, "input"), (10, "projection"), (10, "acgan"), (10, "projection+classifier"), (0, "input")]


def test_every_configurable_net_is_registered():
    assert set(FAMILIES) == set(NETS)


@pytest.mark.parametrize("net", IMAGE_NETS)  # toy: tests/test_points.py
@pytest.mark.parametrize("num_classes,conditioning,channels,resolution",
                         [(k, c, 1, 28) for k, c in CONDITIONS]
                         + [(10, "input", 3, 64), (10, "projection", 3, 32), (0, "input", 1, 8)])
def test_shapes(net, num_classes, conditioning, channels, resolution):
    cfg = ModelConfig(net=net, z_dim=8, width=8, num_classes=num_classes, img_channels=channels,
                      img_resolution=resolution, conditioning=conditioning)
    torch.manual_seed(0)
    G, D = build_generator(cfg), build_discriminator(cfg)
    labels = torch.randint(0, 10, (5,)) if num_classes else None
    img = G(torch.randn(5, 8), labels)
    assert img.shape == (5, channels, resolution, resolution)
    assert img.min() >= -1 and img.max() <= 1
    logits, class_logits = D(img, labels)
    assert logits.shape == (5,)
    if num_classes and conditioning in ("acgan", "projection+classifier"):
        assert class_logits.shape == (5, num_classes)
    else:
        assert class_logits is None


@pytest.mark.parametrize("net", IMAGE_NETS)  # toy: tests/test_points.py
@pytest.mark.parametrize("conditioning", ["input", "projection"])
def test_conditional_D_depends_on_the_label(net, conditioning):
    cfg = ModelConfig(num_classes=10, net=net, z_dim=8, width=8, conditioning=conditioning)
    torch.manual_seed(0)
    D = build_discriminator(cfg)
    img = torch.rand(4, 1, 28, 28) * 2 - 1
    a, _ = D(img, torch.zeros(4, dtype=torch.long))
    b, _ = D(img, torch.ones(4, dtype=torch.long))
    assert (a - b).abs().min() > 1e-6


@pytest.mark.parametrize("net", IMAGE_NETS)  # toy: tests/test_points.py
def test_no_discriminator_has_batchnorm(net):
    # A gradient penalty needs each image's score to depend on that image alone.
    D = build_discriminator(ModelConfig(num_classes=10, net=net, width=8))
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in D.modules())
    img = torch.rand(6, 1, 28, 28) * 2 - 1
    labels = torch.arange(6)
    whole, _ = D(img, labels)
    alone = torch.cat([D(img[i:i + 1], labels[i:i + 1])[0] for i in range(6)])
    assert_close(whole, alone, rtol=1e-5, atol=1e-5)


def test_projection_head_is_linear_plus_inner_product_with_the_class_embedding():
    # f(x, y) = psi(phi(x)) + <V y, phi(x)> (Miyato & Koyama 2018, eq. 3)
    cfg = ModelConfig(num_classes=3, conditioning="projection")
    head = DiscriminatorHead(4, cfg)
    h = torch.randn(5, 4)
    labels = torch.tensor([0, 1, 2, 1, 0])
    logits, class_logits = head(h, labels)
    w, b, V = head.linear.weight[0], head.linear.bias[0], head.embed.weight
    expected = torch.stack([h[i] @ w + b + h[i] @ V[labels[i]] for i in range(5)])
    assert_close(logits, expected)
    assert class_logits is None


@pytest.mark.parametrize("net", IMAGE_NETS)  # toy: tests/test_points.py
@pytest.mark.parametrize("conditioning", ["input", "projection", "acgan", "projection+classifier"])
def test_D_starts_unsaturated(net, conditioning):
    # At the default width a fresh D must not be confident yet: |logit| < 1, sigma in (0.27, 0.73).
    # (The projection embedding's N(0, 1) init used to give dcgan logits of +-20.)
    torch.manual_seed(0)
    D = build_discriminator(ModelConfig(num_classes=10, net=net, conditioning=conditioning))
    with torch.no_grad():
        logits, _ = D(torch.rand(16, 1, 28, 28) * 2 - 1, torch.arange(16) % 10)
    assert logits.abs().max() < 1


def test_acgan_head_classifies_the_same_features():
    cfg = ModelConfig(num_classes=3, conditioning="acgan")
    head = DiscriminatorHead(4, cfg)
    h = torch.randn(5, 4)
    logits, class_logits = head(h, torch.zeros(5, dtype=torch.long))
    assert_close(logits, head.linear(h)[:, 0])  # the label does not enter the realness score
    assert_close(class_logits, head.classifier(h))


def test_projection_with_a_classifier_keeps_the_projection_and_classifies_the_same_features():
    cfg = ModelConfig(num_classes=3, conditioning="projection+classifier")
    head = DiscriminatorHead(4, cfg)
    h, y = torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1])
    logits, class_logits = head(h, y)
    assert_close(logits, head.linear(h)[:, 0] + (head.embed(y) * h).sum(dim=1))
    assert_close(class_logits, head.classifier(h))


@pytest.mark.parametrize("net", IMAGE_NETS)  # toy: tests/test_points.py
@pytest.mark.parametrize("conditioning", ["input", "projection", "acgan", "projection+classifier"])
def test_spectral_norm_bounds_the_top_singular_value(net, conditioning):
    cfg = ModelConfig(num_classes=10, net=net, z_dim=8, width=8, conditioning=conditioning, spectral_norm=True)
    torch.manual_seed(0)
    D = build_discriminator(cfg)
    img = torch.rand(4, 1, 28, 28) * 2 - 1
    labels = torch.arange(4)
    for _ in range(100):  # each training-mode forward runs one more power iteration
        D(img, labels)
    weights = [m.weight for m in D.modules()
               if isinstance(m, (nn.Linear, nn.Conv2d, nn.Embedding))]
    assert weights and all(m.parametrizations for m in D.modules()
                           if isinstance(m, (nn.Linear, nn.Conv2d, nn.Embedding)))
    with torch.no_grad():
        sigmas = torch.stack([torch.linalg.matrix_norm(w.flatten(1), ord=2) for w in weights])
    assert_close(sigmas, torch.ones_like(sigmas), rtol=0, atol=1e-2)
    # without it, the same layers are far from 1
    plain = build_discriminator(ModelConfig(num_classes=10, net=net, z_dim=8, width=8, conditioning=conditioning))
    with torch.no_grad():
        raw = [float(torch.linalg.matrix_norm(m.weight.flatten(1), ord=2)) for m in plain.modules()
               if isinstance(m, (nn.Linear, nn.Conv2d, nn.Embedding))]
    assert max(abs(s - 1) for s in raw) > 0.1


def test_dcgan_input_conditioning_keeps_its_checkpoint_names():
    # The label plane moved into common.LabelPlane; dcgan checkpoints must still load.
    D = build_discriminator(ModelConfig(num_classes=10, net="dcgan", width=8, conditioning="input"))
    assert "label_plane.weight" in D.state_dict()


@pytest.mark.parametrize("net", ["mlp", "dcgan", "resnet"])
def test_fresh_G_listens_to_z_more_than_to_the_class(net):
    # With N(0, 1) class embeddings the class dominated G's input, and trained Gs drew one digit
    # per class whatever z was (intra-class mode collapse, seen in sample grids).
    torch.manual_seed(0)
    G = build_generator(preset("default").replace(net=net, num_classes=10).model).eval()
    z = torch.randn(64, G.cfg.z_dim)
    with torch.no_grad():
        over_z = G(z, torch.full((64,), 3)).std(0).mean()
        over_y = G(z[:1].expand(64, -1), torch.arange(64) % 10).std(0).mean()
    assert over_z > 2 * over_y


@pytest.mark.parametrize("net", ["mlp", "dcgan", "resnet"])
def test_d_width_sizes_D_alone(net):
    def count(m):
        return sum(p.numel() for p in m.parameters())

    same = ModelConfig(net=net, width=16, num_classes=10)
    wider = ModelConfig(net=net, width=16, d_width=32, num_classes=10)
    assert count(build_generator(wider)) == count(build_generator(same))
    assert count(build_discriminator(wider)) > 1.5 * count(build_discriminator(same))
    img = torch.zeros(2, 1, 28, 28)
    assert build_discriminator(wider)(img, torch.tensor([1, 2]))[0].shape == (2,)


@pytest.mark.parametrize("net", ["mlp", "dcgan", "resnet"])
def test_latent_bits_give_G_a_step_where_a_noise_entry_changes_sign(net):
    # Without the step G is continuous in z: its images cannot fall apart into separate pieces.
    torch.manual_seed(0)
    z = torch.randn(16, 64)
    above, below = z.clone(), z.clone()
    above[:, 1], below[:, 1] = 1e-6, -1e-6  # only the sign of entry 1 differs
    jumps = {}
    for bits in (0, 2):
        G = build_generator(ModelConfig(net=net, width=16, num_classes=10, latent_bits=bits)).eval()
        assert G.join.out_dim == 128 + bits
        with torch.no_grad():
            jumps[bits] = (G(above, torch.arange(16) % 10) - G(below, torch.arange(16) % 10)).abs().mean()
    assert jumps[0] < 1e-5 and jumps[2] > 1e-3, jumps


def test_d_depth_adds_stride_1_convolutions_to_the_dcgan_D_alone():
    def convs(model):
        return [(m.kernel_size, m.stride) for m in build_discriminator(model).modules() if isinstance(m, nn.Conv2d)]

    classic = convs(ModelConfig(width=8, num_classes=10, d_depth=0))
    assert classic == [((4, 4), (2, 2))] * 2  # 28 px: 14x14, then 7x7
    assert convs(ModelConfig(width=8, num_classes=10)) == [((4, 4), (2, 2)), ((3, 3), (1, 1))] * 2  # the default
    assert convs(ModelConfig(width=8, num_classes=10, d_depth=2)) == [((4, 4), (2, 2)), *[((3, 3), (1, 1))] * 2] * 2
    deep = ModelConfig(width=8, num_classes=10, d_depth=2)
    assert build_discriminator(deep)(torch.zeros(3, 1, 28, 28), torch.tensor([0, 1, 2]))[0].shape == (3,)
    G = build_generator(deep).state_dict()
    assert {k: v.shape for k, v in G.items()} == {k: v.shape for k, v in build_generator(ModelConfig(width=8, num_classes=10, d_depth=0)).state_dict().items()}
    # The other nets have no such layers: an unset depth is 0 for them.
    assert ModelConfig(net="mlp").discriminator_depth == ModelConfig(net="resnet").discriminator_depth == 0


def test_g_depth_adds_stride_1_convolutions_after_the_dcgan_G_inner_stages_alone():
    def layers(model):
        return [(type(m).__name__, m.kernel_size, m.stride) for m in build_generator(model).modules()
                if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]

    up, last, conv3 = ("ConvTranspose2d", (4, 4), (2, 2)), ("ConvTranspose2d", (4, 4), (2, 2)), ("Conv2d", (3, 3), (1, 1))
    assert layers(ModelConfig(width=8, num_classes=10, g_depth=0)) == [up, last]  # 28 px: 7 -> 14 -> 28
    assert layers(ModelConfig(width=8, num_classes=10)) == [up, conv3, last]  # the default, at 14x14
    assert layers(ModelConfig(width=8, num_classes=10, g_depth=2, img_resolution=32)) == [up, conv3, conv3] * 2 + [last]
    deep = ModelConfig(width=8, num_classes=10, g_depth=2)
    assert build_generator(deep)(torch.randn(3, 64), torch.tensor([0, 1, 2])).shape == (3, 1, 28, 28)
    D = build_discriminator(deep).state_dict()
    assert {k: v.shape for k, v in D.items()} == {k: v.shape for k, v in build_discriminator(ModelConfig(width=8, num_classes=10, g_depth=0)).state_dict().items()}
    assert ModelConfig(net="mlp").generator_depth == ModelConfig(net="resnet").generator_depth == 0
    assert ModelConfig(img_resolution=32).generator_depth == 0  # measured at 28 px only


@pytest.mark.parametrize("num_classes,channels,resolution,bits,g_depth",
                         [(10, 1, 28, 0, None), (10, 1, 28, 0, 0), (0, 1, 28, 2, 2), (10, 3, 32, 1, 1),
                          (0, 3, 64, 0, 0), (10, 1, 8, 0, 1)])
def test_folded_dcgan_generator_makes_the_same_images(num_classes, channels, resolution, bits, g_depth):
    cfg = ModelConfig(net="dcgan", z_dim=8, width=8, num_classes=num_classes, img_channels=channels,
                      img_resolution=resolution, latent_bits=bits, g_depth=g_depth)
    torch.manual_seed(0)
    G = build_generator(cfg)
    with torch.no_grad():  # BatchNorm statistics and affine parameters away from their start
        for p in G.parameters():
            p.add_(0.1 * torch.randn_like(p))
        for _ in range(3):
            G(torch.randn(64, 8), torch.randint(0, 10, (64,)) if num_classes else None)
    G.eval()
    folded = dcgan.FoldedGenerator(G)
    z = torch.randn(33, 8)
    labels = [torch.randint(0, 10, (33,)), torch.softmax(torch.randn(33, 10), 1)] if num_classes else [None]
    with torch.no_grad():
        for y in labels:  # classes, and class weights (interpolation)
            assert_close(folded(z, y), G(z, y), atol=1e-5, rtol=1e-4)
        # a copy: training G further does not change it
        before = folded(z, labels[0])
        next(G.parameters()).add_(1.0)
        assert_close(folded(z, labels[0]), before)
