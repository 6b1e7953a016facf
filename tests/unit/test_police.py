"""The honest police: D's raw score, its percentile rank among D's scores on a fixed batch of real
images, and what the score means under each loss."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

import ganforge
from ganforge import police
from ganforge.config import LOSSES, preset
from ganforge.data import load_dataset, to_float
from ganforge.errors import GanforgeError
from ganforge.generator import GAN
from ganforge.nets import build_generator
from harness.data import image_folder


class Brightness(torch.nn.Module):
    """A stand-in D whose score is known: the mean pixel, scaled; counts the images it sees."""

    def __init__(self, scale: float):
        super().__init__()
        self.scale, self.seen, self.labels_seen = scale, 0, []

    def forward(self, img, labels=None):
        self.seen += len(img)
        self.labels_seen.append(labels)
        return img.mean(dim=(1, 2, 3)) * self.scale, None


def y(n: int) -> torch.Tensor:
    return torch.zeros(n, dtype=torch.int64)


def gan_with(D, loss: str, data: str, **model) -> GAN:
    cfg = preset("default").replace(data=data, net="mlp", width=16, z_dim=8, loss=loss, num_classes=10, **model)
    return GAN(build_generator(cfg.model), D, cfg.model, [str(i) for i in range(10)], config=cfg)


@pytest.mark.parametrize("loss", LOSSES)
def test_percentile_is_the_rank_among_real_images_for_every_loss(loss, tiny_digits):
    # Each loss gives D's scores another scale (WGAN critics: any), and the rank does not care.
    scale = {"bce": 3.0, "minimax": 3.0, "hinge": 1.0, "lsgan": 0.5, "wgan-gp": -40.0}[loss]
    gan = gan_with(Brightness(abs(scale)), loss, str(tiny_digits))
    real = to_float(load_dataset(str(tiny_digits)).images)  # 300 images: all of them are the reference
    v = gan.police(real, y(300))
    assert v.realness is not None and v.realness.shape == (300,)
    assert float(v.realness.mean()) == pytest.approx(50.0, abs=1e-9)  # ties count half
    brightness = real.mean(dim=(1, 2, 3)).numpy()
    i = 17
    expected = 100 * ((brightness < brightness[i]).sum() + 0.5 * (brightness == brightness[i]).sum()) / 300
    assert float(v.realness[i]) == pytest.approx(expected, abs=1e-9)
    white, black = torch.ones(1, 1, 28, 28), -torch.ones(1, 1, 28, 28)
    assert float(gan.police(white, y(1)).realness[0]) == 100 and float(gan.police(black, y(1)).realness[0]) == 0
    torch.testing.assert_close(v.score, torch.as_tensor(brightness) * abs(scale), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gan.verdict(real, y(300)), torch.sigmoid(v.score))
    assert v.reference == "real training images"
    assert ("not a probability" in v.meaning) == (loss not in ("bce", "minimax"))
    assert v.describe(i).startswith(f"more real-looking than {expected:.0f}% of real training images (score ")


def test_meanings_name_each_loss_targets():
    assert "above +1" in police.meaning("hinge") and "-1" in police.meaning("hinge")
    assert "towards 1" in police.meaning("lsgan") and "drift" in police.meaning("wgan-gp")
    assert "probability that the image is real" in police.meaning("bce")
    assert police.meaning("minimax") == police.meaning("bce")
    assert "unknown" in police.meaning(None)


def test_the_reference_is_scored_once_per_model(tiny_digits):
    D = Brightness(1.0)
    gan = gan_with(D, "hinge", str(tiny_digits))
    gan.police(torch.zeros(4, 1, 28, 28), y(4))
    assert D.seen == 300 + 4
    gan.police(torch.zeros(5, 1, 28, 28), y(5))
    assert D.seen == 300 + 4 + 5


def test_a_conditional_d_judges_real_images_with_their_labels(tiny_digits):
    D = Brightness(1.0)
    gan_with(D, "hinge", str(tiny_digits)).police_reference()
    labels = D.labels_seen[0]
    assert labels is not None and sorted(labels.tolist()) == sorted(load_dataset(str(tiny_digits)).labels.tolist())


def test_digit_models_rank_among_a_fixed_batch_of_bundled_digits():
    cfg = preset("default").replace(data="mnist", num_classes=10)
    a, b = police.reference_images(cfg), police.reference_images(cfg)
    assert a.images.shape == (police.REFERENCE_SIZE, 1, 28, 28) and a.name == "real digits"
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    counts = np.bincount(a.labels.numpy(), minlength=10)
    assert counts.min() >= 70 and counts.max() <= 130  # a fair draw of every class


@pytest.mark.parametrize("data, why", [("/nonexistent/folder", "not available here"),
                                       ("fashion-mnist", "not downloaded")])
def test_no_reference_says_why(data, why, tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_DATA", str(tmp_path))  # an empty cache: nothing is downloaded
    gan = gan_with(Brightness(1.0), "lsgan", data)
    v = gan.police(torch.zeros(2, 1, 28, 28), y(2))
    assert v.realness is None and why in v.reference
    assert v.describe(1).startswith("no rank: ") and "towards 1" in v.describe(1)


def test_a_folder_of_images_is_read_only_when_named(tmp_path, monkeypatch):
    # A checkpoint may come from anyone: the folder its config names is not scanned, decoded or cached.
    monkeypatch.setenv("GANFORGE_DATA", str(tmp_path / "cache"))
    folder = image_folder(tmp_path / "mine", [str(c) for c in range(10)])
    gan = gan_with(Brightness(1.0), "hinge", str(folder))
    v = gan.police(torch.zeros(2, 1, 28, 28), y(2))
    assert v.realness is None and "--reference DIR" in v.reference and "rank_among" in v.reference
    assert not (tmp_path / "cache").exists()
    gan.rank_among(folder)
    v = gan.police(torch.zeros(2, 1, 28, 28), y(2))
    assert v.realness is not None and v.reference == "real training images"
    gan.rank_among(shutil.copytree(folder, tmp_path / "other"))
    assert gan.police(torch.zeros(1, 1, 28, 28), y(1)).reference == "real images in other"
    with pytest.raises(GanforgeError, match="nowhere: no such directory"):
        gan.rank_among(tmp_path / "nowhere")


def test_a_checkpoint_tells_the_gan_its_loss(tiny_run):
    gan = ganforge.load(tiny_run)
    assert gan.loss == "hinge" and gan.config.model == gan.model
    labels = gan.labels_for(8, None)
    v = gan.police(gan.generate(gan.noise(8, 0), labels), labels)
    assert v.realness.shape == (8,) and bool(((v.realness >= 0) & (v.realness <= 100)).all())
    with pytest.raises(GanforgeError, match="give the labels"):
        gan.police(gan.generate(gan.noise(8, 0), labels))


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.slow
def test_a_trained_police_ranks_unseen_digits_near_the_middle_and_noise_last(loss, tiny_digits, bundled_arrays,
                                                                           tmp_path):
    """20 steps of each game already tell digits from noise; the rank reads the same under every
    loss, whatever the scale of its scores."""
    run = ganforge.train(data=tiny_digits, out=tmp_path / loss, steps=20, loss=loss, net="mlp", width=16, z_dim=8,
                         batch_size=32, eval_every=0, device="cpu", progress=False, log_every=10)
    gan = ganforge.load(run)
    images, labels = bundled_arrays
    unseen = np.concatenate([np.flatnonzero(labels == c)[100:110] for c in range(10)])  # tiny_digits: [:30]
    real, y = to_float(torch.from_numpy(images[unseen]).unsqueeze(1)), torch.from_numpy(labels[unseen].astype(np.int64))
    noise = torch.rand(100, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert 35 <= float(gan.police(real, y).realness.mean()) <= 65
    assert 0 <= float(gan.police(noise, y).realness.mean()) <= 5


def test_a_trainer_ranks_among_the_folder_it_trains_on(tmp_path):
    folder = image_folder(tmp_path / "mine", [str(c) for c in range(10)], per_class=4)
    trainer = ganforge.Trainer(data=folder, out=tmp_path / "run", steps=1, net="mlp", width=16, z_dim=8,
                               batch_size=8, eval_every=0, device="cpu", progress=False)
    assert trainer.gan.police(torch.zeros(1, 1, 28, 28), y(1)).reference == "real training images"
    trainer.finish()
