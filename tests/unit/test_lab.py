"""The lab's API (serve/lab.py): the game in two dimensions, and every bound on what it may cost."""

from __future__ import annotations

import json
import time

import pytest
import torch
from fastapi.testclient import TestClient

from ganforge.serve import create_app
from ganforge.serve.lab import (
    COOKIE,
    HEAT_SIDE,
    MAX_BATCH,
    MAX_POINTS,
    MAX_STEPS_PER_REQUEST,
    MAX_WIDTH,
    MIN_POINTS,
    SHOWN_POINTS,
    Labs,
    LabSettings,
    lab_config,
)

SMALL = "width=8&batch_size=32"


def strict(response):
    def refuse(constant):
        raise ValueError(f"not strict JSON: {constant}")
    return json.loads(response.text, parse_constant=refuse)


@pytest.fixture
def labs():
    return Labs(max_labs=2, ttl_s=60)


@pytest.fixture
def client(labs, tiny_run):
    return TestClient(create_app(tiny_run, labs=labs), base_url="http://127.0.0.1:8000")


def test_create_step_state_reset_delete(client, labs):
    r = client.post(f"/api/lab?data=ring8&{SMALL}")
    assert r.status_code == 200 and COOKIE in r.cookies
    state = strict(r)
    assert len(state["real"]) == len(state["fake"]) == len(state["push"]) == SHOWN_POINTS
    assert len(state["heat"]) == HEAT_SIDE and all(len(row) == HEAT_SIDE for row in state["heat"])
    assert all(0 <= v <= 1 for row in state["heat"] for v in row)  # D's probability of "real"
    assert state["num_modes"] == 8 and 0 <= state["modes_covered"] <= 8
    assert client.post("/api/lab/step?d=3&g=2").json() == {"d_steps": 3, "g_steps": 2}
    moved = strict(client.get("/api/lab/state"))
    assert moved["fake"] != state["fake"] and len(moved["history"]) == 3
    assert moved["history"][-1]["loss_g"] is not None
    assert client.post("/api/lab/reset").json()["g_steps"] == 0
    assert client.delete("/api/lab").json() == {"deleted": True}
    assert client.get("/api/lab/state").status_code == 404 and not labs.labs


def test_other_settings_and_shapes(client):
    r = client.post(f"/api/lab?data=spiral&preset=minimax&loss=hinge&lr_g=0.002&n_dis=2&{SMALL}")
    assert r.status_code == 200 and r.json()["loss"] == "hinge" and "modes_covered" not in r.json()
    assert client.post("/api/lab/step?d=2&g=1").json() == {"d_steps": 2, "g_steps": 1}
    assert client.post(f"/api/lab?preset=tutorial&{SMALL}").json()["loss"] == "bce"


def test_the_minimax_setting_is_the_game_as_first_written():
    # Saturating loss without R1: the one that collapses (with R1 it covers every mode).
    cfg = lab_config(LabSettings(preset="minimax"))
    assert (cfg.loss, cfg.r1) == ("minimax", 0.0)
    assert lab_config(LabSettings(preset="minimax", r1=0.2)).r1 == 0.2  # the menu's own value wins
    assert lab_config(LabSettings()).r1 > 0


@pytest.mark.parametrize("points", [MIN_POINTS, 128, MAX_POINTS])
def test_the_number_of_points_drawn_is_a_setting(client, points):
    state = strict(client.post(f"/api/lab?points={points}&{SMALL}"))
    assert len(state["real"]) == len(state["fake"]) == len(state["push"]) == points
    assert state["settings"]["points"] == points
    moved = strict(client.post("/api/lab/step?d=1&g=1&state=true"))  # steps and state in one request
    assert (moved["d_steps"], moved["g_steps"]) == (1, 1) and len(moved["fake"]) == points
    assert strict(client.post("/api/lab/reset"))["settings"]["points"] == points


def test_a_diverged_game_is_still_strict_json(client, labs):
    client.post(f"/api/lab?{SMALL}")
    (lab,) = labs.labs.values()
    with torch.no_grad():
        for p in lab.D.parameters():
            p.fill_(float("nan"))
    r = client.post("/api/lab/step?d=1&g=1&state=true")
    assert r.status_code == 200, r.text
    state = strict(r)
    assert state["history"][-1]["loss_d"] is None and state["history"][-1]["loss_g"] is None
    assert state["heat"][0][0] is None


def test_one_lab_per_client(client, labs):
    client.post(f"/api/lab?{SMALL}")
    client.post(f"/api/lab?data=grid25&{SMALL}")  # replaces this client's lab
    assert len(labs.labs) == 1 and client.get("/api/lab/state").json()["num_modes"] == 25
    other = TestClient(client.app, base_url="http://127.0.0.1:8000")
    assert other.get("/api/lab/state").status_code == 404  # another client does not see it
    other.post(f"/api/lab?{SMALL}")
    assert len(labs.labs) == 2


def test_lab_count_is_capped(client, labs):
    for _ in range(labs.max_labs):
        assert TestClient(client.app, base_url="http://127.0.0.1:8000").post(f"/api/lab?{SMALL}").status_code == 200
    r = TestClient(client.app, base_url="http://127.0.0.1:8000").post(f"/api/lab?{SMALL}")
    assert r.status_code == 429 and "in use" in r.json()["error"] and len(labs.labs) == labs.max_labs


def test_a_full_store_refuses_before_building_a_lab(client, labs, monkeypatch):
    for _ in range(labs.max_labs):
        TestClient(client.app, base_url="http://127.0.0.1:8000").post(f"/api/lab?{SMALL}")
    built = []
    monkeypatch.setattr("ganforge.serve.lab.Lab", lambda settings: built.append(settings))
    r = TestClient(client.app, base_url="http://127.0.0.1:8000").post(f"/api/lab?{SMALL}")
    assert r.status_code == 429 and built == []  # a refused request costs no lab build


def test_unpolled_labs_expire(client, labs):
    labs.ttl_s = 0.2
    client.post(f"/api/lab?{SMALL}")
    assert client.get("/api/lab/state").status_code == 200  # polling keeps it
    time.sleep(0.3)
    assert client.get("/api/lab/state").status_code == 404 and not labs.labs


@pytest.mark.parametrize("query, status, fragment", [
    (f"d={MAX_STEPS_PER_REQUEST + 1}", 422, "'d'"),
    (f"g={MAX_STEPS_PER_REQUEST + 1}", 422, "'g'"),
    ("d=-1", 422, "'d'"),
    ("n=5", 422, "'n'"),
    ("d=1&state=maybe", 422, "'state'"),
])
def test_steps_per_request_are_capped(client, query, status, fragment):
    client.post(f"/api/lab?{SMALL}")
    r = client.post(f"/api/lab/step?{query}")
    assert r.status_code == status and fragment in r.json()["error"]
    assert client.get("/api/lab/state").json()["d_steps"] == 0


@pytest.mark.parametrize("query, status, fragment", [
    (f"width={MAX_WIDTH + 1}", 422, "'width'"),  # the memory bound: nets and batches are capped
    (f"batch_size={MAX_BATCH + 1}", 422, "'batch_size'"),
    (f"points={MIN_POINTS - 1}", 422, "'points'"),  # the JSON of a state is bounded too
    (f"points={MAX_POINTS + 1}", 422, "'points'"),
    ("points=many", 422, "'points'"),
    ("data=digits", 422, "'data'"),
    ("loss=magic", 422, "'loss'"),
    ("lr_g=0", 422, "'lr_g'"),
    ("lr_d=nan", 422, "'lr_d'"),
    ("preset=fast", 422, "'preset'"),
    ("bogus=1", 422, "'bogus'"),
    ("loss=wgan-gp&r1=1", 400, "wgan-gp"),  # the config's own rules
])
def test_bad_settings_get_4xx(client, labs, query, status, fragment):
    r = client.post(f"/api/lab?{query}")
    assert r.status_code == status and fragment in r.json()["error"], r.text
    assert not labs.labs


@pytest.mark.parametrize("method, path", [("post", "/api/lab/step?d=1"), ("get", "/api/lab/state"),
                                          ("post", "/api/lab/reset"), ("delete", "/api/lab")])
def test_no_lab_is_404(client, method, path):
    r = getattr(client, method)(path)
    assert r.status_code == 404 and "POST /api/lab" in r.json()["error"]


def test_the_page_is_served_and_linked_from_the_playground(client):
    assert "/static/lab.html" in client.get("/").text
    r = client.get("/static/lab.html")
    assert r.status_code == 200 and "<canvas" in r.text
    assert client.get("/static/lab.js").status_code == 200
