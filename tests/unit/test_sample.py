import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from ganforge.errors import GanforgeError
from click.testing import CliRunner

from ganforge.cli import cli
from ganforge.config import ModelConfig
from ganforge.generator import evaluating, folded, parse_classes, spread
from ganforge.nets import build_generator, dcgan
from ganforge.training import Trainer


def test_sample_is_deterministic_by_seed(tiny_run):
    gan = ganforge.load(tiny_run)
    a, b, c = gan.sample(12, seed=3), gan.sample(12, seed=3), gan.sample(12, seed=4)
    assert a.dtype == torch.uint8 and a.shape == (12, 1, 28, 28)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(gan.sample(5, labels=7, seed=1), gan.sample(5, labels=[7] * 5, seed=1))


def test_labels_are_validated(tiny_run):
    gan = ganforge.load(tiny_run)
    with pytest.raises(GanforgeError, match="class 10 is outside"):
        gan.sample(2, labels=10)
    with pytest.raises(GanforgeError, match="positive integer"):
        gan.sample(0)
    with pytest.raises(GanforgeError, match="3 labels for 2 images"):
        gan.sample(2, labels=[1, 2, 3])
    # not whole class numbers: refused, never truncated (9.9 is not class 9) nor a raw error
    for labels in (9.9, -0.5, True, "7", 2**70, [[1, 2], [3]], float("nan"), torch.tensor([1.0, 2.0])):
        with pytest.raises(GanforgeError, match="class labels must be whole numbers"):
            gan.sample(2, labels=labels)
    assert torch.equal(gan.sample(2, labels=np.array([3, 4]), seed=0), gan.sample(2, labels=[3, 4], seed=0))


@pytest.mark.parametrize("call, says", [
    (lambda gan: gan.sample(2, seed=1.5), "seed must be a whole number"),
    (lambda gan: gan.sample(2, seed=True), "seed must be a whole number"),
    (lambda gan: gan.sample(2, seed="3"), "seed must be a whole number"),
    (lambda gan: gan.sample(2, batch_size=0), "batch_size must be a whole number of at least 1"),
    (lambda gan: gan.sample(2, batch_size=1.5), "batch_size must be a whole number"),
    (lambda gan: gan.noise(-1, 0), "noise vectors must be a whole number of at least 0"),
    (lambda gan: gan.police(gan.sample(2, labels=1), torch.tensor([1, 1])), "D judges float images"),
    (lambda gan: gan.police(torch.zeros(2, 1, 16, 16), torch.tensor([1, 1])), r"\(n, 1, 28, 28\)"),
    (lambda gan: gan.police(torch.zeros(2, 1, 28, 28), torch.tensor([10, 0])), "class 10 is outside"),
    (lambda gan: gan.police(torch.zeros(2, 1, 28, 28), torch.tensor([1, 2, 3])), "3 labels for 2 images"),
])
def test_bad_arguments_are_one_clear_error(tiny_run, call, says):
    with pytest.raises(GanforgeError, match=says):
        call(ganforge.load(tiny_run))


def test_load_checks_the_device(tiny_run, monkeypatch):
    with pytest.raises(GanforgeError, match="device must be cpu, cuda, cuda:N, mps or auto"):
        ganforge.load(tiny_run, device="gpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(GanforgeError, match="'cuda:1' asked for, but PyTorch does not see it"):
        ganforge.load(tiny_run, device="cuda:1")
    assert ganforge.load(tiny_run, device="auto").device.type in ("cpu", "mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(GanforgeError, match="'cuda:1' asked for, but PyTorch does not see it"):
        ganforge.load(tiny_run, device="cuda:1")
    from ganforge.metrics import evaluate_generator
    with pytest.raises(GanforgeError, match="number of images must be a whole number"):
        evaluate_generator(ganforge.load(tiny_run), n=-5)


def test_numpy_seeds_and_one_label_for_the_police_work(tiny_run):
    gan = ganforge.load(tiny_run)
    assert torch.equal(gan.sample(2, seed=np.int64(3)), gan.sample(2, seed=3))
    assert torch.equal(gan.noise(np.int64(2), 0), gan.noise(2, 0))
    assert torch.equal(gan.sample(3, batch_size=np.int64(2), seed=0), gan.sample(3, seed=0))
    images = gan.generate(gan.noise(2, 0), torch.tensor([4, 4]))
    assert torch.equal(gan.police(images, 4).score, gan.police(images, torch.tensor([4, 4])).score)


def test_parse_classes_and_spread():
    assert parse_classes("all", 3) == [0, 1, 2]
    assert parse_classes("0,2", 3) == [0, 2]
    for bad in ("x", "5", ""):
        with pytest.raises(GanforgeError):
            parse_classes(bad, 3)
    assert spread(6, [3, 7]).tolist() == [3, 3, 3, 7, 7, 7]


def test_write_each_format(tiny_run, tmp_path):
    def generate(n, classes, out):
        result = CliRunner().invoke(cli, ["generate", str(tiny_run), "--n", str(n), "--classes", classes,
                                          "--out", str(out)])
        assert result.exit_code == 0, result.output

    gan = ganforge.load(tiny_run)
    generate(20, "all", tmp_path / "g.png")
    assert Image.open(tmp_path / "g.png").size == (2 + 2 * 30, 2 + 10 * 30)  # one row per class
    generate(6, "3,4", tmp_path / "g.npz")
    z = np.load(tmp_path / "g.npz")
    assert z["images"].shape == (6, 28, 28) and z["images"].dtype == np.uint8
    assert z["labels"].tolist() == [3, 3, 3, 4, 4, 4] and z["labels"].dtype == np.int64
    generate(3, "7", tmp_path / "d")
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["7_0.png", "7_1.png", "7_2.png"]
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "d" / "7_1.png")),
                                  gan.sample(3, labels=7, seed=0)[1, 0].numpy())


def test_loaded_conv_generator_generates_fast_with_the_same_images():
    # The shipped dcgan model: loaded channels-last and generating through its folded form for
    # speed, its images match the plain G's.
    gan = ganforge.load("pretrained")
    conv = next(m for m in gan.generator.modules() if isinstance(m, torch.nn.ConvTranspose2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert isinstance(gan.folded_generator(), dcgan.FoldedGenerator)
    z, labels = gan.noise(64, seed=3), torch.arange(64) % 10
    plain = gan.generator.__class__(gan.model)
    plain.load_state_dict(gan.generator.state_dict())
    with torch.no_grad():
        expected = plain.eval()(z, labels)
    torch.testing.assert_close(gan.generate(z, labels), expected, atol=1e-5, rtol=1e-4)


def test_a_loaded_deeper_dcgan_folds_and_refolds_when_its_G_changes(tiny_config, tmp_path):
    # The default's deeper G (g_depth 1) through a checkpoint: the folded copy makes G's images,
    # and follows G when its weights change in place or G is replaced.
    run = Trainer(tiny_config.replace(net="dcgan", width=8, steps=2), tmp_path / "run", progress=False).train()
    gan = ganforge.load(run)
    assert gan.model.generator_depth == 1 and isinstance(gan.folded_generator(), dcgan.FoldedGenerator)
    z, labels = gan.noise(20, seed=1), torch.arange(20) % gan.num_classes

    def plain_images():
        with evaluating(gan.generator) as G, torch.no_grad():
            return G(z, labels)

    torch.testing.assert_close(gan.generate(z, labels), plain_images(), atol=1e-5, rtol=1e-4)
    with torch.no_grad():
        for p in gan.generator.parameters():
            p.mul_(0.5)
    torch.testing.assert_close(gan.generate(z, labels), plain_images(), atol=1e-5, rtol=1e-4)
    gan.generator = build_generator(gan.model).eval()
    torch.testing.assert_close(gan.generate(z, labels), plain_images(), atol=1e-5, rtol=1e-4)


def test_only_small_dcgan_generators_on_a_cpu_fold():
    small = ModelConfig(num_classes=10, width=8)
    G = build_generator(small)
    assert isinstance(folded(G, small, "cpu"), dcgan.FoldedGenerator)
    assert folded(G, small, "cuda") is None and folded(G, small, "meta") is None
    for model in (ModelConfig(num_classes=10, width=8, img_resolution=64, img_channels=3),
                  ModelConfig(net="resnet", num_classes=10, width=8)):
        assert folded(build_generator(model), model, "cpu") is None
