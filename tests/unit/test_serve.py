"""The playground's JSON API: every endpoint, every validation error, the start-up checks."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import socket
import time

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from fastapi.testclient import TestClient
from PIL import Image

import ganforge
from ganforge.checkpoint import load_checkpoint, save_checkpoint
from ganforge.cli import cli
from ganforge.cli.serve import is_loopback
from ganforge.data import to_uint8
from ganforge.errors import GanforgeError
from ganforge.serve import create_app
from ganforge.serve.app import MAX_CURVE_POINTS, MAX_SAMPLE_STOPS, MAX_SIDE, MAX_STEPS, SLIDERS
from ganforge.serve.metrics_tail import MetricsTail


def local_client(run, **options) -> TestClient:
    """A client that reaches the app as a browser on this machine does (the app refuses other Host names)."""
    return TestClient(create_app(run, **options), base_url="http://127.0.0.1:8000")


@pytest.fixture(scope="module")
def client(tiny_run):
    return local_client(tiny_run)


@pytest.fixture(scope="module")
def gan(tiny_run):
    return ganforge.load(tiny_run)


def decode(url: str) -> np.ndarray:
    prefix = "data:image/png;base64,"
    assert url.startswith(prefix)
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url[len(prefix):]))))


def test_info_describes_the_model(client, gan):
    info = client.get("/api/info").json()
    assert info["conditional"] is True and info["z_dim"] == gan.model.z_dim == 8
    assert info["class_names"] == [str(c) for c in range(10)]
    assert info["step"] == gan.step == 6
    assert info["limits"]["max_side"] == MAX_SIDE


def test_generate_matches_the_library(client, gan):
    out = client.get("/api/generate", params={"cls": 7, "seed": 42}).json()
    z, y = gan.noise(1, 42), torch.tensor([7])
    images = gan.generate(z, y)
    expected = to_uint8(images)[0, 0].numpy()
    np.testing.assert_array_equal(decode(out["image"]), expected)
    assert out["verdict"] == pytest.approx(float(gan.verdict(images, y)[0]), abs=1e-4)
    assert 0 <= out["verdict"] <= 1 and out["seed"] == 42 and out["label"] == 7
    assert out["z"] == pytest.approx(z[0, :SLIDERS].tolist(), abs=1e-4)


def test_generate_sliders_replace_the_first_noise_values(client, gan):
    out = client.get("/api/generate", params=[("cls", 3), ("seed", 5), ("dims", 1.5), ("dims", -2)]).json()
    z = gan.noise(1, 5)
    z[0, :2] = torch.tensor([1.5, -2.0])
    assert out["z"][:3] == pytest.approx([1.5, -2.0, float(z[0, 2])], abs=1e-4)
    np.testing.assert_array_equal(decode(out["image"]), to_uint8(gan.generate(z, torch.tensor([3])))[0, 0].numpy())


def test_generate_without_seed_draws_a_new_one(client):
    seeds = {client.get("/api/generate", params={"cls": 1}).json()["seed"] for _ in range(3)}
    assert len(seeds) >= 2


def test_generate_is_fast(client):
    client.get("/api/generate", params={"cls": 0, "seed": 0})  # warm up
    start = time.perf_counter()
    for seed in range(20):
        assert client.get("/api/generate", params={"cls": seed % 10, "seed": seed}).status_code == 200
    per_request = (time.perf_counter() - start) / 20
    assert 0 < per_request < 0.05  # the issue asks for "well under 50 ms on CPU"


def test_grid_one_row_per_class(client):
    out = client.get("/api/grid", params={"cols": 3, "seed": 1}).json()
    assert (out["rows"], out["cols"]) == (10, 3) and len(out["pictures"]) == 30
    assert [p["label"] for p in out["pictures"]] == [r for r in range(10) for _ in range(3)]
    assert all(decode(p["image"]).shape == (28, 28) for p in out["pictures"])


def test_grid_of_one_class(client):
    out = client.get("/api/grid", params={"rows": 2, "cols": 4, "cls": 5}).json()
    assert len(out["pictures"]) == 8 and {p["label"] for p in out["pictures"]} == {5}
    assert len({p["image"] for p in out["pictures"]}) == 8  # eight different noises


def test_interpolate_between_classes_and_seeds(client, gan):
    out = client.get("/api/interpolate", params={"seed_from": 3, "seed_to": 4, "class_from": 1,
                                                 "class_to": 8, "steps": 4}).json()
    assert out["t"] == pytest.approx([0, 1 / 3, 2 / 3, 1])
    assert [p["label"] for p in out["pictures"]] == [1, 1, 8, 8]  # the nearer class
    ends = [to_uint8(gan.generate(gan.noise(1, s), torch.tensor([c])))[0, 0].numpy() for s, c in ((3, 1), (4, 8))]
    np.testing.assert_array_equal(decode(out["pictures"][0]["image"]), ends[0])
    np.testing.assert_array_equal(decode(out["pictures"][-1]["image"]), ends[1])


def test_interpolate_without_classes_walks_within_class_0(client):
    out = client.get("/api/interpolate", params={"steps": 3}).json()
    assert [p["label"] for p in out["pictures"]] == [0, 0, 0]


def test_interpolate_one_class_given_means_both_ends(client):
    out = client.get("/api/interpolate", params={"class_to": 2, "steps": 3, "spherical": "false"}).json()
    assert [p["label"] for p in out["pictures"]] == [2, 2, 2]


def test_training_status_and_newest_sample(client, tiny_run):
    t = client.get("/api/training").json()
    assert t["logged_step"] == 6 and t["model_step"] == 6 and t["sample_step"] == 6
    assert {"loss_d", "loss_g"} <= set(t["series"]) and t["series"]["loss_d"]["x"] == [2, 4, 6]
    png = client.get(t["sample_url"])
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content == (tiny_run / "samples" / "step-000006.png").read_bytes()


def test_the_step_slider_lists_every_grid_and_each_is_served(client, tiny_run):
    steps = client.get("/api/training").json()["sample_steps"]
    assert steps == [3, 6]  # sample_every=3 over 6 steps
    for step in steps:
        png = client.get("/api/samples/latest", params={"step": step})
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        assert png.content == (tiny_run / "samples" / f"step-{step:06d}.png").read_bytes()
    r = client.get("/api/samples/latest", params={"step": 4})
    assert r.status_code == 404 and r.json() == {"error": "the run has no sample grid of step 4"}


def test_the_step_slider_of_a_long_run_is_thinned_keeping_both_ends(tmp_path, tiny_run):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    png = (run / "samples" / "step-000006.png").read_bytes()
    for step in range(7, 1300):
        (run / "samples" / f"step-{step:06d}.png").write_bytes(png)
    steps = local_client(run).get("/api/training").json()["sample_steps"]
    assert MAX_SAMPLE_STOPS - 5 <= len(steps) <= MAX_SAMPLE_STOPS
    assert steps[0] == 3 and steps[-1] == 1299 and steps == sorted(set(steps))
    every = [3, 6, *range(7, 1300)]
    gaps = np.diff([every.index(s) for s in steps])
    assert 2 <= gaps.min() and gaps.max() <= 3  # evenly spread: 1295 grids over 500 stops


def test_metric_series_is_thinned_and_skips_non_finite(tmp_path):
    records = [{"step": s, "loss_d": float(s), "fid": float("nan") if s == 3 else 1.0} for s in range(2000)]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    tail = MetricsTail(tmp_path / "metrics.jsonl")
    tail.refresh()
    series = tail.thinned(MAX_CURVE_POINTS)
    assert 0 < len(series["loss_d"][0]) <= MAX_CURVE_POINTS
    assert 3 not in series["fid"][0] and set(series) == {"loss_d", "fid"}


def test_page_and_its_files_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "ganforge playground" in page.text
    assert "/static/app.js" in page.text and "http" not in page.text  # nothing from elsewhere: works offline
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/style.css").headers["content-type"].startswith("text/css")


def test_openapi_documents_every_endpoint(client):
    assert client.get("/docs").status_code == 404  # its page loads scripts from a CDN
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/info", "/api/generate", "/api/grid", "/api/interpolate", "/api/training",
            "/api/samples/latest", "/api/lab", "/api/lab/step", "/api/lab/state", "/api/lab/reset"} == set(paths)
    cls = next(p for p in paths["/api/generate"]["get"]["parameters"] if p["name"] == "cls")
    assert cls["schema"]["anyOf"][0]["maximum"] == 9


@pytest.mark.parametrize("path, params, says", [
    ("/api/generate", {"cls": 99}, "'cls': Input should be less than or equal to 9"),
    ("/api/generate", {"cls": -1}, "'cls': Input should be greater than or equal to 0"),
    ("/api/generate", {"cls": "seven"}, "'cls': Input should be a valid integer"),
    ("/api/generate", {"cls": 1, "seed": "abc"}, "'seed': Input should be a valid integer"),
    ("/api/generate", {"cls": 1, "seed": 1.5}, "'seed': Input should be a valid integer"),
    ("/api/generate", {"cls": 1, "seed": -1}, "'seed': Input should be greater than or equal to 0"),
    ("/api/generate", {"cls": 1, "seed": 2**63}, "'seed': Input should be less than or equal to"),
    ("/api/generate", [("cls", 1), ("dims", "nan")], "'dims[0]': Input should be a finite number"),
    ("/api/generate", [("cls", 1), ("dims", 0), ("dims", "inf")], "'dims[1]': Input should be a finite number"),
    ("/api/generate", [("cls", 1), ("dims", 4.5)], "'dims[0]': Input should be less than or equal to 4"),
    ("/api/generate", [("cls", 1)] + [("dims", 0)] * (SLIDERS + 1), "'dims': List should have at most 8 items"),
    ("/api/grid", {"rows": 10000, "cols": 10000}, "'rows': Input should be less than or equal to 16"),
    ("/api/grid", {"cols": 0}, "'cols': Input should be greater than or equal to 1"),
    ("/api/grid", {"cls": 10}, "'cls': Input should be less than or equal to 9"),
    ("/api/grid", {"seed": "x"}, "'seed': Input should be a valid integer"),
    ("/api/interpolate", {"class_from": 1, "steps": 1}, "'steps': Input should be greater than or equal to 2"),
    ("/api/interpolate", {"class_from": 1, "steps": MAX_STEPS + 1}, "'steps': Input should be less than or equal"),
    ("/api/interpolate", {"class_from": 1, "spherical": "maybe"}, "'spherical': Input should be a valid boolean"),
    ("/api/interpolate", {"class_to": 12}, "'class_to': Input should be less than or equal to 9"),
    ("/api/interpolate", {"class_from": 1, "seed_to": "abc"}, "'seed_to': Input should be a valid integer"),
    ("/api/samples/latest", {"step": -3}, "'step': Input should be greater than or equal to 0"),
    ("/api/samples/latest", {"step": "6.5"}, "'step': Input should be a valid integer"),
    ("/api/samples/latest", {"step": "../6"}, "'step': Input should be a valid integer"),
    ("/api/samples/latest", {"step": "6;rm -rf /"}, "'step': Input should be a valid integer"),
    ("/api/samples/latest", {"step": "1e400"}, "'step': Input should be a valid integer"),
    ("/api/samples/latest", {"step": 10**30}, "'step': Input should be less than or equal to"),
])
def test_bad_parameters_get_a_422_saying_what_is_wrong(client, path, params, says):
    r = client.get(path, params=params)
    assert r.status_code == 422
    assert says in r.json()["error"]


@pytest.mark.parametrize("path, params, says", [
    ("/api/generate", {"seed": 1}, "this model is conditional: give a class"),
])
def test_missing_class_is_a_400(client, path, params, says):
    r = client.get(path, params=params)
    assert r.status_code == 400 and says in r.json()["error"]


@pytest.mark.parametrize("path", ["/../../etc/passwd", "/static/../../app.py", "/static/..%2f..%2fapp.py",
                                  "/static/%2e%2e/app.py", "/api/samples/../config.json", "/config.json",
                                  "/api/samples/step-000006.png", "/static/../../../../etc/passwd"])
def test_no_path_reaches_files_outside_the_page(client, path):
    r = client.get(path)
    assert r.status_code == 404 and "error" in r.json()


def test_new_checkpoint_is_picked_up(tmp_path, tiny_run):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    client = local_client(run)
    before = client.get("/api/generate", params={"cls": 2, "seed": 0}).json()["image"]
    ckpt = run / "checkpoints" / "last.safetensors"
    tensors, meta = load_checkpoint(ckpt)
    meta["step"] = 99
    save_checkpoint(ckpt, {k: v + 0.5 if v.is_floating_point() else v for k, v in tensors.items()}, meta)
    assert client.get("/api/info").json()["step"] == 99
    assert client.get("/api/generate", params={"cls": 2, "seed": 0}).json()["image"] != before


def test_training_view_of_a_run_just_started(tmp_path, tiny_run):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    shutil.rmtree(run / "samples")
    (run / "metrics.jsonl").write_text(json.dumps({"step": 2, "loss_d": 1.0}) + "\n{torn")
    client = local_client(run)
    t = client.get("/api/training").json()
    assert t["logged_step"] == 2 and t["sample_url"] is None and t["series"]["loss_d"]["y"] == [1.0]
    assert 0 <= t["seconds_since_update"] < 60
    r = client.get("/api/samples/latest")
    assert r.status_code == 404 and "no sample grid" in r.json()["error"]


def test_a_sample_symlink_leading_out_of_the_run_is_not_served(tmp_path, tiny_run):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"not yours")
    (run / "samples" / "step-999999.png").symlink_to(secret)
    r = local_client(run).get("/api/samples/latest")
    assert r.status_code == 400 and "a link is not served" in r.json()["error"]
    assert "not yours" not in r.text


@pytest.mark.slow
def test_unconditional_model_with_a_short_noise(tmp_path, tiny_config):
    from ganforge.training import train
    run = train(tiny_config.replace(num_classes=0, conditioning="input", z_dim=4, steps=2, sample_every=2, checkpoint_every=2),
                tmp_path / "uncond", progress=False)
    client = local_client(run)
    assert client.get("/api/info").json()["conditional"] is False
    assert len(client.get("/api/generate", params={"seed": 3}).json()["z"]) == 4
    r = client.get("/api/generate", params=[("seed", 3)] + [("dims", 0.5)] * 5)
    assert r.status_code == 400 and "dims has 5 values but the noise has only 4" in r.json()["error"]
    assert client.get("/api/generate", params={"seed": 3}).json()["label"] is None
    r = client.get("/api/generate", params={"seed": 3, "cls": 1})
    assert r.status_code == 400 and "unconditional" in r.json()["error"]
    assert len(client.get("/api/grid").json()["pictures"]) == 64
    assert len(client.get("/api/interpolate", params={"steps": 4}).json()["pictures"]) == 4
    assert client.get("/api/interpolate", params={"steps": 4, "class_from": 1}).status_code == 400


@pytest.mark.parametrize("make, says", [
    (lambda p: p / "missing", "does not exist"),
    (lambda p: p, "is not a run directory"),
    (lambda p: (p / "file.txt").write_text("x") and p / "file.txt", "not a readable ganforge checkpoint"),
])
def test_bad_run_directory_fails_at_start_up(tmp_path, make, says):
    with pytest.raises(GanforgeError, match=says):
        create_app(make(tmp_path))


def test_run_without_checkpoint_fails_at_start_up(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(GanforgeError, match="no checkpoints/last.safetensors"):
        create_app(tmp_path)


def test_unreadable_run_fails_at_start_up(tiny_run, monkeypatch):
    # chmod cannot lock out root (CI runs as root), so permissions are denied through os.access.
    monkeypatch.setattr("ganforge.serve.app.os.access", lambda path, mode: False)
    with pytest.raises(GanforgeError, match="cannot be read"):
        create_app(tiny_run)


def test_serve_command_refuses_a_directory_that_is_not_a_run(tmp_path):
    r = CliRunner().invoke(cli, ["serve", str(tmp_path)])
    assert r.exit_code == 2 and f"error: {tmp_path} is not a run directory" in r.output


def test_serve_command_refuses_a_reference_that_is_no_directory(tiny_run, tmp_path):
    r = CliRunner().invoke(cli, ["serve", str(tiny_run), "--reference", str(tmp_path / "nowhere")])
    assert r.exit_code == 2 and "error: " in r.output and "nowhere: no such directory" in r.output


def test_the_police_ranks_among_a_named_reference_after_every_reload(tiny_run, tiny_digits, tmp_path):
    run, named = tmp_path / "run", shutil.copytree(tiny_digits, tmp_path / "named")
    shutil.copytree(tiny_run, run)
    c = local_client(run, reference=named)
    assert c.get("/api/info").json()["realness_against"] == "real images in named"
    assert c.get("/api/training").json()["run_dir"] is True
    os.utime(run / "checkpoints" / "last.safetensors", ns=(1, 1))  # what a new checkpoint looks like: a reload
    assert c.get("/api/generate", params={"cls": 1}).json()["realness"] is not None
    assert c.get("/api/info").json()["realness_against"] == "real images in named"


def test_serve_command_refuses_a_busy_port(tiny_run):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = CliRunner().invoke(cli, ["serve", str(tiny_run), "--port", str(port)])
    assert r.exit_code == 2 and f"error: cannot listen on 127.0.0.1:{port}" in r.output


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("::1", True), ("localhost", True),
                                            ("0.0.0.0", False), ("192.168.1.5", False)])
def test_only_loopback_hosts_count_as_private(host, loopback):
    assert is_loopback(host) is loopback


def test_pictures_carry_the_honest_police(client, gan):
    out = client.get("/api/generate", params={"cls": 7, "seed": 42}).json()
    z, y = gan.noise(1, 42), torch.tensor([7])
    police = gan.police(gan.generate(z, y), y)
    assert out["score"] == pytest.approx(float(police.score[0]), abs=1e-4)
    assert out["realness"] == pytest.approx(float(police.realness[0]), abs=0.05)
    assert out["verdict"] == pytest.approx(float(torch.sigmoid(police.score[0])), abs=1e-4)
    info = client.get("/api/info").json()
    assert info["realness_against"] == "real training images" and info["realness_missing"] is None
    assert "above +1" in info["score_meaning"]  # the tiny run plays the default hinge game
    grid = client.get("/api/grid", params={"rows": 2, "cols": 3}).json()["pictures"]
    assert all(0 <= p["realness"] <= 100 for p in grid)


def test_a_checkpoint_file_is_served_with_an_empty_training_view(tiny_run):
    # How `ganforge serve` without a run serves the pretrained model (one file, no run around it).
    c = local_client(tiny_run / "checkpoints" / "last.safetensors")
    assert c.get("/api/info").json()["step"] == ganforge.load(tiny_run).step
    assert c.get("/api/generate", params={"cls": 3, "seed": 1}).status_code == 200
    training = c.get("/api/training").json()
    assert training["series"] == {} and training["sample_step"] is None and training["logged_step"] is None
    assert training["sample_steps"] == [] and training["run_dir"] is False  # the page hides its step slider
