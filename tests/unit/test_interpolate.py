"""Walking between two seeds and classes: slerp, mixed class embeddings, the interpolate command."""

from __future__ import annotations

import io

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import ganforge
from ganforge.cli import cli
from ganforge.errors import GanforgeError
from ganforge.generator import interpolation, slerp
from ganforge.outputs import write_gif


@pytest.fixture(scope="module")
def gan(tiny_run):
    return ganforge.load(tiny_run)


def test_slerp_keeps_the_ends_and_the_length():
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(1, 64, generator=gen), torch.randn(1, 64, generator=gen)
    t = torch.linspace(0, 1, 9)
    path = slerp(a.expand(9, -1), b.expand(9, -1), t)
    torch.testing.assert_close(path[0], a[0])
    torch.testing.assert_close(path[-1], b[0])
    # On the arc the norm stays between the ends' norms; the straight line dips well below both.
    norms = path.norm(dim=1)
    low, high = sorted([float(a.norm()), float(b.norm())])
    assert low - 1e-4 <= float(norms.min()) and float(norms.max()) <= high + 1e-4
    assert float(torch.lerp(a, b, 0.5).norm()) < 0.8 * low
    torch.testing.assert_close(slerp(a, a.clone(), torch.tensor([0.3])), a)  # parallel: no 0/0


def test_interpolation_mixes_the_class_embeddings(gan):
    z, weights = interpolation(gan, 5, seeds=(1, 2), classes=(4, 6))
    assert z.shape == (5, 8) and weights.shape == (5, 10)
    torch.testing.assert_close(weights[:, 4], torch.linspace(1, 0, 5))
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(5))
    torch.testing.assert_close(z[0], gan.noise(1, 1)[0])
    torch.testing.assert_close(z[-1], gan.noise(1, 2)[0])
    images = gan.generate(z, weights)
    torch.testing.assert_close(images[0], gan.generate(z[:1], torch.tensor([4]))[0], rtol=0, atol=1e-6)
    torch.testing.assert_close(images[-1], gan.generate(z[-1:], torch.tensor([6]))[0], rtol=0, atol=1e-6)
    # Halfway, G sees the average of the two classes' embeddings.
    embed = gan.generator.join.embed.weight
    joined = gan.generator.join(z[2:3], weights[2:3])
    torch.testing.assert_close(joined[0, 8:], (embed[4] + embed[6]) / 2)
    assert gan.verdict(images, weights).shape == (5,)


@pytest.mark.parametrize("kwargs, says", [
    ({"steps": 1, "seeds": (0, 1), "classes": (0, 1)}, "at least 2 steps"),
    ({"steps": 3, "seeds": (0, 1), "classes": (0, 10)}, "class 10 is outside"),
    ({"steps": 3, "seeds": (0, -1), "classes": (0, 1)}, "seed must be a whole number in"),
])
def test_interpolation_validates(gan, kwargs, says):
    with pytest.raises(GanforgeError, match=says):
        interpolation(gan, **kwargs)


def test_interpolation_without_classes_walks_within_class_0(gan):
    # The one default of the command line and the server alike.
    _, weights = interpolation(gan, 3, (0, 1))
    assert weights.argmax(dim=1).tolist() == [0, 0, 0] and torch.all(weights.max(dim=1).values == 1)


def test_interpolate_command_writes_a_gif(tiny_run, tmp_path):
    out = tmp_path / "walk.gif"
    r = CliRunner().invoke(cli, ["interpolate", str(tiny_run), "--from-seed", "1", "--to-seed", "2",
                                 "--classes", "3,8", "--steps", "6", "--scale", "2", "--out", str(out)])
    assert r.exit_code == 0, r.output
    gif = Image.open(io.BytesIO(out.read_bytes()))
    assert gif.format == "GIF" and gif.n_frames == 6 and gif.size == (56, 56)


@pytest.mark.parametrize("args, says", [
    (["--out", "walk.png"], "give a .gif file"),
    (["--steps", "1", "--out", "w.gif"], "--steps must be in 2..1000"),
    (["--classes", "3", "--out", "w.gif"], "--classes must be two classes"),
    (["--classes", "3,4", "--class-from", "1", "--out", "w.gif"], "not both"),
    (["--class-from", "12", "--out", "w.gif"], "class 12 is outside"),
    # one seed at both ends: 100 identical frames, which a GIF shows as one for their summed time
    (["--from-seed", "3", "--to-seed", "3", "--steps", "100", "--frame-ms", "10000", "--out", "w.gif"],
     "100 identical frames in a row would show for 1,000,000 ms"),
])
def test_interpolate_command_errors(tiny_run, tmp_path, args, says):
    r = CliRunner().invoke(cli, ["interpolate", str(tiny_run), *args])
    assert r.exit_code == 2 and says in r.output


def test_frames_that_merge_only_after_quantisation_are_one_clear_error(tmp_path):
    picture = torch.randint(0, 256, (3, 64, 64), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    images = picture.repeat(70, 1, 1, 1)  # colour: the GIF writer quantises it to 256 colours, and then
    images[:, 0, 5, 5] = 100 + torch.arange(70) % 2  # neighbours that differ by one level are one
    with pytest.raises(GanforgeError, match="shows them as one picture .* lower --frame-ms"):
        write_gif(tmp_path / "w.gif", images, 10_000)


def test_a_gif_too_large_for_memory_is_refused_before_its_frames_are_built(tmp_path):
    images = torch.zeros(300, 3, 128, 128, dtype=torch.uint8)  # at scale 16: 3.5 GiB of frames
    with pytest.raises(GanforgeError, match="300 frames of 2048x2048 pixels would take 3.5 GiB"):
        write_gif(tmp_path / "w.gif", images, 80, scale=16)
    assert not (tmp_path / "w.gif").exists()
