"""Augmentation for small data: --mirror (x-flipped copies as the second half of the data),
DiffAugment's colour ops against hand values, --augment-ops, and adaptive augmentation (ADA): the
update rule against hand values, p in metrics and checkpoints, and resume equal to an
uninterrupted run."""

from __future__ import annotations

import json
import re

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file
from torch.testing import assert_close

from ganforge.augment import OPS, brightness, contrast, cutout, diff_augment, saturation, translate
from ganforge.checkpoint import load_checkpoint
from ganforge.cli import cli
from ganforge.config import AUGMENT_OPS, TrainConfig, preset, validate
from ganforge.data import ImageDataset
from ganforge.data.order import BatchOrder
from ganforge.errors import GanforgeError
from ganforge.options import override
from ganforge.rundir import RunDir
from ganforge.training import Trainer, resolve, train
from ganforge.training.ada import AdaptiveAugment, adjust
from harness.cli import dry_run, refused


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# -- --mirror ---------------------------------------------------------------------------------
def two_images() -> ImageDataset:
    # (2, 1, 2, 3): rows 0 1 2 / 3 4 5 and 10 11 12 / 13 14 15 (uint8)
    images = torch.tensor([[[[0, 1, 2], [3, 4, 5]]], [[[10, 11, 12], [13, 14, 15]]]], dtype=torch.uint8)
    return ImageDataset(images, torch.tensor([0, 1]), ["a", "b"], "test", mirror=True)


def test_mirror_index_i_at_or_past_n_is_image_i_minus_n_flipped_left_to_right():
    data = two_images()
    assert len(data) == 4 and data.to("cpu").mirror
    img, labels = data.batch(torch.tensor([2, 0, 3, 1]))
    uint8 = torch.tensor([[[[2., 1, 0], [5, 4, 3]]], [[[0., 1, 2], [3, 4, 5]]],
                          [[[12., 11, 10], [15, 14, 13]]], [[[10., 11, 12], [13, 14, 15]]]])
    expected = uint8 * (2 / 255) - 1
    assert_close(img, expected)
    assert labels.tolist() == [0, 0, 1, 1]


def test_batch_order_covers_both_halves_and_mirror_is_saved_in_the_config(tiny_config):
    cfg, data = resolve(tiny_config.replace(mirror=True))
    assert cfg.mirror and data.mirror and len(data) == 2 * len(data.images) == 600
    order = BatchOrder(len(data), 32, seed=0)
    epoch = torch.cat([order.indices(b) for b in range(order.per_epoch)])
    assert len(set(epoch.tolist())) == 18 * 32 and (epoch >= 300).sum() > 200 and (epoch < 300).sum() > 200
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    _, plain = resolve(tiny_config)
    assert not plain.mirror and len(plain) == 300


# -- DiffAugment's colour ops -----------------------------------------------------------------
# Two 3-channel images of 1 x 2 pixels: image 0 has pixels (r, g, b) = (0.5, -0.5, 0) and
# (0.2, 0.2, 0.2) (grey), image 1 (-1, 0, 1) and (1, 1, -1).
X = torch.tensor([[[[0.5, 0.2]], [[-0.5, 0.2]], [[0.0, 0.2]]],
                  [[[-1.0, 1.0]], [[0.0, 1.0]], [[1.0, -1.0]]]])


def draws(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """What a colour op draws from gen(seed): one U[0, 1) magnitude per image, then one U[0, 1)
    per image that decides whether it is changed."""
    g = gen(seed)
    return torch.rand(2, generator=g), torch.rand(2, generator=g)


def test_brightness_adds_one_uniform_shift_in_plus_minus_half_per_image():
    u, _ = draws(1)
    out = brightness(X, 1.0, gen(1))
    for i in range(2):
        assert_close(out[i], X[i] + (u[i] - 0.5))
    shifts = (brightness(torch.zeros(4000, 1, 2, 2), 1.0, gen()) - 0).flatten(1)
    assert (shifts == shifts[:, :1]).all()  # the same shift for every pixel of an image
    assert -0.5 <= shifts.min() < -0.45 and 0.45 < shifts.max() < 0.5
    assert abs(float(shifts.mean())) < 0.02


def test_saturation_scales_each_pixel_around_its_channel_mean_by_up_to_two():
    u, _ = draws(2)
    s = 2 * u  # U(0, 2)
    out = saturation(X, 1.0, gen(2))
    # image 0: pixel 0 has mean 0, so (0.5, -0.5, 0) -> (0.5 s, -0.5 s, 0); the grey pixel stays
    assert_close(out[0, :, 0, 0], torch.stack([0.5 * s[0], -0.5 * s[0], torch.tensor(0.0)]))
    assert_close(out[0, :, 0, 1], torch.tensor([0.2, 0.2, 0.2]))
    # image 1: pixel 0 (-1, 0, 1) has mean 0; pixel 1 (1, 1, -1) has mean 1/3
    assert_close(out[1, :, 0, 0], torch.tensor([-1.0, 0.0, 1.0]) * s[1])
    m = 1 / 3
    assert_close(out[1, :, 0, 1], (torch.tensor([1.0, 1.0, -1.0]) - m) * s[1] + m)
    grey = torch.rand(5, 1, 4, 4, generator=gen()) * 2 - 1
    assert_close(saturation(grey, 1.0, gen()), grey)  # one channel: nothing to saturate


def test_contrast_scales_each_image_around_its_mean_by_half_to_one_and_a_half():
    u, _ = draws(3)
    c = u + 0.5  # U(0.5, 1.5)
    out = contrast(X, 1.0, gen(3))
    mean0 = (0.5 - 0.5 + 0.0 + 0.2 * 3) / 6  # 0.1
    mean1 = (-1 + 0 + 1 + 1 + 1 - 1) / 6  # 1/6
    assert_close(out[0], (X[0] - mean0) * c[0] + mean0)
    assert_close(out[1], (X[1] - mean1) * c[1] + mean1)


@pytest.mark.parametrize("op", [brightness, saturation, contrast])
def test_colour_ops_change_each_image_with_probability_p_and_leave_the_rest_exactly(op):
    _, chosen = draws(4)
    out = op(X, 0.5, gen(4))
    for i in range(2):
        changed = not torch.equal(out[i], X[i])
        assert changed == bool(chosen[i] < 0.5)
    many = torch.rand(3000, 3, 2, 2, generator=gen(5)) * 2 - 1
    share = (op(many, 0.3, gen(6)) != many).flatten(1).any(1).float().mean()
    assert 0.26 < float(share) < 0.34
    assert torch.equal(op(many, 0.0, gen(6)), many)


def test_colour_ops_pass_gradients():
    x = X.clone().requires_grad_(True)
    out = diff_augment(x, 1.0, gen(), ("brightness", "saturation", "contrast"))
    (grad,) = torch.autograd.grad(out.square().sum(), x)
    assert grad.isfinite().all() and grad.abs().sum() > 0


# -- choosing the ops -------------------------------------------------------------------------
def test_every_op_is_registered_in_the_order_they_run():
    assert tuple(OPS) == AUGMENT_OPS


def test_ops_run_in_the_fixed_order_whatever_order_they_are_given_in():
    x = torch.rand(8, 3, 16, 16, generator=gen()) * 2 - 1
    g = gen(1)
    by_hand = cutout(translate(contrast(brightness(x, 0.7, g), 0.7, g), 0.7, g), 0.7, g)
    assert torch.equal(diff_augment(x, 0.7, gen(1), ("cutout", "contrast", "translation", "brightness")), by_hand)
    g = gen(2)
    assert torch.equal(diff_augment(x, 0.7, gen(2), ("saturation",)), saturation(x, 0.7, g))


def test_the_default_ops_are_translation_then_cutout_as_before():
    x = torch.rand(8, 1, 28, 28, generator=gen()) * 2 - 1
    g = gen(3)
    assert torch.equal(diff_augment(x, 0.5, gen(3)), cutout(translate(x, 0.5, g), 0.5, g))
    assert preset("default").augment_ops == ("translation", "cutout")


@pytest.mark.parametrize("ops", [("flip",), (), ("cutout", "cutout"), "translation,cutout"])
def test_unknown_repeated_or_missing_ops_are_refused_naming_the_allowed_ones(ops):
    with pytest.raises(GanforgeError) as e:
        validate(preset("default").replace(augment=0.2, augment_ops=ops))
    assert "augment_ops" in str(e.value) and ", ".join(AUGMENT_OPS) in str(e.value)


# -- the command line -------------------------------------------------------------------------


def test_small_data_flags_reach_the_config(tiny_digits):
    data = ("--data", str(tiny_digits))
    out = dry_run(*data, "--mirror", "--augment", "0.3", "--augment-ops", "brightness, contrast,cutout")
    cfg = out["config"]
    assert cfg["mirror"] is True and out["images"] == 600
    assert (cfg["augment"], cfg["augment_ops"], cfg["ada_target"]) == (0.3, ["brightness", "contrast", "cutout"], None)
    cfg = dry_run(*data, "--augment", "ada")["config"]
    assert (cfg["augment"], cfg["ada_target"], cfg["ada_interval"], cfg["ada_kimg"]) == (0.0, 0.6, 4, 500.0)
    cfg = dry_run(*data, "--augment", "ada", "--ada-target", "0.5", "--ada-kimg", "20")["config"]
    assert (cfg["ada_target"], cfg["ada_kimg"]) == (0.5, 20.0)
    assert dry_run(*data, "--ada-target", "0.7")["config"]["ada_target"] == 0.7


def test_small_data_nonsense_is_one_clear_line(tiny_digits):
    data = ("--data", str(tiny_digits))
    assert "'ada'" in refused(*data, "--augment", "lots")
    line = refused(*data, "--augment", "0.2", "--augment-ops", "color")
    assert "augment_ops" in line and "brightness, saturation, contrast" in line
    assert "--augment-ops has no effect" in refused(*data, "--augment-ops", "brightness")
    assert "--ada-kimg has no effect" in refused(*data, "--ada-kimg", "20")
    assert "not both" in refused(*data, "--augment", "0.2", "--ada-target", "0.6")
    assert "ada_target" in refused(*data, "--augment", "ada", "--ada-target", "1")


def test_a_fixed_probability_replaces_adaptive_augmentation():
    ada = override(preset("default"), {"augment": "ada"})
    assert (ada.augment, ada.ada_target) == (0.0, 0.6)
    fixed = override(ada, {"augment": 0.25})
    assert (fixed.augment, fixed.ada_target) == (0.25, None)


# -- adaptive augmentation --------------------------------------------------------------------
def test_ada_update_rule_against_hand_values():
    # one interval of 4 D steps at batch 32 is 128 images; 500k images take p from 0 to 1
    assert adjust(0.0, 0.7, 0.6, 128, 500) == pytest.approx(128 / 500_000, rel=1e-12)
    assert adjust(0.5, 0.2, 0.6, 128, 500) == pytest.approx(0.5 - 0.000256, rel=1e-12)
    assert adjust(0.3, 0.6, 0.6, 128, 500) == 0.3  # r_t on target: p stays
    assert adjust(0.0, -1.0, 0.6, 128, 500) == 0.0  # clamped below
    assert adjust(0.9999, 1.0, 0.6, 128, 500) == 1.0  # clamped above
    p, intervals = 0.0, 0
    while p < 1:
        p, intervals = adjust(p, 1.0, 0.6, 128, 500), intervals + 1
    assert intervals == 3907  # ceil(500_000 / 128): p goes from 0 to 1 in 500k images


def fake_logits(signs: list[int]) -> torch.Tensor:
    return torch.tensor(signs, dtype=torch.float32) * 2.5  # only the signs matter


def test_ada_moves_p_every_interval_from_the_mean_sign_of_the_real_logits():
    # batch 4, interval 2 D steps, kimg 0.02: each adjustment moves p by 4 * 2 / 20 = 0.4
    cfg = preset("default").replace(batch_size=4, ada_target=0.6, ada_interval=2, ada_kimg=0.02)
    ada = AdaptiveAugment(cfg, torch.device("cpu"))
    steps = [([1, 1, 1, 1], 0.0),    # sign mean 1; mid-interval: p waits
             ([1, 1, 1, -1], 0.4),   # 0.5: r_t = (1 + 0.5) / 2 = 0.75 > 0.6 -> up
             ([1, 1, 1, 1], 0.4),
             ([1, 1, 1, 1], 0.8),    # r_t = 1 -> up
             ([1, 1, 1, 1], 0.8),
             ([1, 1, 1, 1], 1.0),    # up, clamped at 1
             ([1, -1, 1, -1], 1.0),  # 0
             ([1, 1, 1, -1], 0.6),   # r_t = (0 + 0.5) / 2 = 0.25 < 0.6 -> down
             ([1, 1, 1, 1], 0.6),
             ([1, 1, -1, 1], 1.0)]   # r_t = 0.75 -> up
    expected_r_t = {1: 0.75, 3: 1.0, 5: 1.0, 7: 0.25, 9: 0.75}
    for d_step, (signs, p_after) in enumerate(steps):
        ada.observe(fake_logits(signs).sign().mean(), d_step)
        assert ada.p == pytest.approx(p_after, abs=1e-12), d_step
        if d_step in expected_r_t:
            assert ada.r_t == pytest.approx(expected_r_t[d_step], abs=1e-12)
    assert ada.log() == {"ada_p": 1.0, "ada_r_t": 0.75}


def test_ada_state_round_trips_exactly_and_damage_is_refused(tmp_path):
    cfg = preset("default").replace(batch_size=4, ada_target=0.6, ada_interval=3, ada_kimg=0.07)
    ada = AdaptiveAugment(cfg, torch.device("cpu"))
    for d_step, s in enumerate([1, 1, 1, 1, 0.5]):
        ada.observe(torch.tensor(s), d_step)
    state = json.loads(json.dumps(ada.state()))
    assert state["p"] == pytest.approx(12 / 70, rel=1e-12) and state["signs"] == 1.5 and state["r_t"] == 1.0
    again = AdaptiveAugment(cfg, torch.device("cpu"))
    again.load_state(state, tmp_path)
    assert (again.p, again.r_t, float(again.signs)) == (ada.p, ada.r_t, 1.5)
    for broken in (None, {"p": 0.1}, {"p": 2.0, "r_t": None, "signs": 0.0}, {"p": "x", "r_t": None, "signs": 0}):
        with pytest.raises(GanforgeError, match="adaptive augmentation state"):
            again.load_state(broken, tmp_path)


def ada_config(tiny_config):
    # batch 32, interval 4 D steps, kimg 0.512: p moves by 0.25 per interval; with 2 D steps per
    # G step, the checkpoint at step 3 falls in the middle of an interval. A low target makes p
    # rise as soon as D calls most reals real.
    return tiny_config.replace(n_dis=2, ema=0.9, ada_target=0.05, ada_kimg=0.512, log_every=1)


@pytest.mark.slow
def test_ada_resumes_exactly_as_an_uninterrupted_run(tiny_config, tmp_path):
    cfg = ada_config(tiny_config)
    train(cfg.replace(steps=6), tmp_path / "straight", progress=False)
    train(cfg.replace(steps=3), tmp_path / "split", progress=False)
    _, half = load_checkpoint(RunDir(tmp_path / "split").checkpoint())
    train(cfg.replace(steps=6), tmp_path / "split", resume=True, progress=False)
    a, b = RunDir(tmp_path / "straight"), RunDir(tmp_path / "split")
    ta, tb = load_file(a.checkpoint()), load_file(b.checkpoint())
    assert ta.keys() == tb.keys()
    for k in ta:
        assert torch.equal(ta[k], tb[k]), k
    meta_a, meta_b = load_checkpoint(a.checkpoint())[1], load_checkpoint(b.checkpoint())[1]
    assert meta_a["ada"] == meta_b["ada"] and meta_a["ada"]["p"] > 0  # p rose, so augmentation ran
    assert half["ada"]["signs"] != 0  # the split fell inside an interval
    records = a.read_metrics()
    for key in ("ada_p", "ada_r_t"):  # r_t of the interval the split fell in counts its first half too
        assert [r.get(key) for r in records] == [r.get(key) for r in b.read_metrics()], key
    assert all(r["ada_p"] in (0.0, 0.25, 0.5, 0.75, 1.0) for r in records)
    assert "d_real_sign" in records[0] and -1 <= records[0]["d_real_sign"] <= 1


def test_the_game_augments_with_adas_p(tiny_config, tmp_path):
    trainer = Trainer(ada_config(tiny_config).replace(steps=4), tmp_path / "run", progress=False)
    assert trainer.game.augment_p == 0.0
    trainer.train()
    assert trainer.game.augment_p == trainer.state.ada.p > 0


def test_the_progress_bar_shows_p(tiny_config, tmp_path, capsys):
    train(ada_config(tiny_config).replace(steps=2), tmp_path / "run", progress=True)
    assert re.search(r"p=[01]\.\d{3}", capsys.readouterr().err)


def test_ganforge_train_augment_ada_runs_on_tiny_data(tiny_digits, tmp_path):
    run = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", "--data", str(tiny_digits), "--net", "mlp", "--width", "16",
                                      "--z-dim", "8", "--steps", "4", "--log-every", "2", "--eval-every", "0",
                                      "--augment", "ada", "--ada-kimg", "1", "--mirror", "--device", "cpu",
                                      "--quiet", "--out", str(run)])
    assert result.exit_code == 0, result.output
    cfg = json.loads((run / "config.json").read_text())["config"]
    assert (cfg["augment"], cfg["ada_target"], cfg["ada_kimg"], cfg["mirror"]) == (0.0, 0.6, 1.0, True)
    records = RunDir(run).read_metrics()
    assert [r["step"] for r in records] == [2, 4] and all(0 <= r["ada_p"] <= 1 for r in records)
    assert set(load_checkpoint(RunDir(run).checkpoint())[1]["ada"]) == {"p", "r_t", "signs"}
