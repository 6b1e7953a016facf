"""The lab: the GAN game in two dimensions, trained step by step on the server and watched live.

Each client (a browser, told apart by the `ganforge_lab` cookie) owns at most one lab: a small
toy pair (ganforge/nets/toy.py) on a toy source, with a loss and settings from the menu. The page
asks for D steps and G steps and the state they lead to, in one request: real points, fake points
(fixed noise, so the same points can be followed as they move), D's score over the plane as a
heat-map, the direction G's loss pushes each fake point, the loss history and the mode counts.

Bounds, because every request costs CPU and every lab memory: one lab per client (a new one
replaces it), at most MAX_LABS labs at once (429 when full), at most MAX_STEPS_PER_REQUEST steps
per request, widths and batches capped so a lab stays below about 10 MB, and a lab nobody has
polled for LAB_TTL_S seconds is dropped. Bad settings get a 4xx answer {"error": ...}.
"""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations.
import math
import secrets
import threading
import time
from typing import Annotated, Literal

import torch
from fastapi import APIRouter, Cookie, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from ganforge.config import preset_for, validate
from ganforge.data.toy import TOY_SOURCES, toy_dataset
from ganforge.game import Game
from ganforge.losses import LOSSES
from ganforge.metrics.toy import mode_stats
from ganforge.nets import build_discriminator, build_generator
from ganforge.optim import make_optimizer

COOKIE = "ganforge_lab"
MAX_LABS = 8  # labs held at once, over all clients
LAB_TTL_S = 120.0  # a lab not polled for this long is dropped
MAX_STEPS_PER_REQUEST = 50
MAX_WIDTH, MAX_BATCH = 256, 512  # a lab then holds < 10 MB (weights, Adam moments, data)
LAB_POINTS = 20_000  # the data sample a lab trains on
SHOWN_POINTS = 512  # real and fake points sent with each state, unless the lab asks for others
MIN_POINTS, MAX_POINTS = 16, 2048  # the `points` setting's bounds: a state stays under ~250 kB of JSON
HEAT_SIDE = 40  # D's score on a HEAT_SIDE x HEAT_SIDE grid over the view
MAX_HISTORY = 2000  # loss records kept (the oldest are dropped)
SHOWN_HISTORY = 500  # loss records sent with each state
LOSS_DIGITS = 4  # decimals of a loss in the history: a curve 180 px high needs no more
# The toy preset; the tutorial's game; the minimax game as first written (saturating G loss, no R1)
# on the toy preset's nets: the two that usually collapse (benchmarks/RESULTS.md, the lab's targets;
# benchmarks/lab_targets.py calls the last one "minimax" too).
SETTINGS = ("default", "tutorial", "minimax")

Source = Literal[TOY_SOURCES]  # type: ignore[valid-type]
Loss = Literal[tuple(LOSSES)]  # type: ignore[valid-type]


class LabSettings(BaseModel):
    """Query parameters of POST /api/lab; unknown ones are refused (a typo must not pass silently)."""

    model_config = {"extra": "forbid"}
    data: Source = "ring8"
    preset: Literal[SETTINGS] = "default"  # type: ignore[valid-type]
    loss: Loss | None = None  # None: the preset's
    lr_g: float | None = Field(None, gt=0, le=0.1)
    lr_d: float | None = Field(None, gt=0, le=0.1)
    batch_size: int | None = Field(None, ge=1, le=MAX_BATCH)
    width: int | None = Field(None, ge=4, le=MAX_WIDTH)
    n_dis: int | None = Field(None, ge=1, le=10)
    r1: float | None = Field(None, ge=0, le=100)
    seed: int = Field(0, ge=0, lt=2**31)
    points: int = Field(SHOWN_POINTS, ge=MIN_POINTS, le=MAX_POINTS, description="real and fake points drawn")


class Steps(BaseModel):
    model_config = {"extra": "forbid"}
    d: int = Field(0, ge=0, le=MAX_STEPS_PER_REQUEST, description="D steps, then...")
    g: int = Field(0, ge=0, le=MAX_STEPS_PER_REQUEST, description="...G steps (each after its n_dis D steps when both)")
    state: bool = Field(False, description="answer the state after the steps (one request a frame)")


def lab_config(s: LabSettings):
    """The TrainConfig of a lab: the chosen preset for points, then the menu's overrides."""
    cfg = preset_for("tutorial" if s.preset == "tutorial" else "default", True)
    if s.preset == "minimax":
        cfg = cfg.replace(loss="minimax", r1=0.0)
    changes = {k: v for k, v in s.model_dump().items() if k in ("loss", "lr_g", "lr_d", "batch_size",
                                                                  "width", "n_dis", "r1") and v is not None}
    return validate(cfg.replace(**changes, data=s.data, seed=s.seed, device="cpu"))


class Lab:
    """One client's game: the pair, its optimizers and noise, the fixed points it shows."""

    def __init__(self, settings: LabSettings):
        self.settings, self.cfg = settings, lab_config(settings)
        self.data = toy_dataset(settings.data, LAB_POINTS, seed=settings.seed)
        with torch.random.fork_rng(devices=[]):  # seed the weights without moving the server's global RNG
            torch.manual_seed(self.cfg.seed)
            self.G, self.D = build_generator(self.cfg.model), build_discriminator(self.cfg.model)
        self.opt_g = make_optimizer(self.G.parameters(), self.cfg.lr_g, self.cfg.betas)
        self.opt_d = make_optimizer(self.D.parameters(), self.cfg.lr_d, self.cfg.betas)
        self.gen = torch.Generator().manual_seed(self.cfg.seed + 1)
        self.game = Game(self.G, self.D, self.cfg, self.gen)
        self.z_shown = torch.randn(settings.points, self.cfg.model.z_dim,
                                   generator=torch.Generator().manual_seed(self.cfg.seed + 2))
        self.real_shown = self.data.points[:settings.points]
        self.extent = float(self.data.points.abs().max()) * 1.15
        self.d_steps = self.g_steps = 0
        self.history: list[dict] = []
        self.lock = threading.Lock()
        self.seen = time.monotonic()

    def d_step(self) -> float:
        idx = torch.randint(len(self.data), (self.cfg.batch_size,), generator=self.gen)
        real, _ = self.data.batch(idx)
        self.D.requires_grad_(True)
        loss, _ = self.game.d_loss(real, None, self.d_steps)
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_d.step()
        self.d_steps += 1
        return loss.item()

    def g_step(self) -> float:
        self.D.requires_grad_(False)
        loss, _ = self.game.g_loss(self.cfg.batch_size, torch.device("cpu"))
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g.step()
        self.g_steps += 1
        return loss.item()

    def step(self, d: int, g: int) -> None:
        """`d` D steps and `g` G steps; with both, they alternate as in training (n_dis D per G)."""
        loss_d = loss_g = None
        while d > 0 or g > 0:
            for _ in range(min(d, self.cfg.n_dis if g else d)):
                loss_d, d = self.d_step(), d - 1
            if g:
                loss_g, g = self.g_step(), g - 1
            self.history.append({"d_steps": self.d_steps, "g_steps": self.g_steps,
                                 "loss_d": _finite(loss_d), "loss_g": _finite(loss_g)})
        del self.history[:-MAX_HISTORY]

    def state(self) -> dict:
        """What the page draws; every number finite or null."""
        fake = self.G(self.z_shown).detach().requires_grad_(True)  # (P, 2)
        self.D.requires_grad_(False)
        logits, _ = self.D(fake)
        LOSSES[self.cfg.loss][1](logits).backward()  # G's loss at the shown points
        push = -fake.grad * len(fake)  # the direction G's loss moves each point (per point, not per mean)
        xs = torch.linspace(-self.extent, self.extent, HEAT_SIDE)
        # (S, S, 2): row i, column j is the point (xs[j], -xs[i]), so row 0 is the top of the view
        plane = torch.stack(torch.meshgrid(xs, xs.flip(0), indexing="xy"), -1)
        with torch.no_grad():
            score = torch.sigmoid(self.D(plane.reshape(-1, 2))[0]).view(HEAT_SIDE, HEAT_SIDE)
        fake = fake.detach()
        out = {"d_steps": self.d_steps, "g_steps": self.g_steps, "extent": self.extent,
               "settings": self.settings.model_dump(), "loss": self.cfg.loss,
               "real": _rounded(self.real_shown), "fake": _rounded(fake), "push": _rounded(push),
               "heat": _rounded(score, 3), "heat_side": HEAT_SIDE, "history": self.history[-SHOWN_HISTORY:]}
        if self.data.centres is not None:
            stats = mode_stats(fake, self.data.centres, self.data.sigma)
            out.update(modes_covered=stats["modes_covered"], num_modes=stats["num_modes"],
                       high_quality=round(stats["high_quality"], 4))
        return out


def _finite(loss: float | None) -> float | None:
    """A loss for the history: rounded, and null when the game has diverged (strict JSON)."""
    return round(loss, LOSS_DIGITS) if loss is not None and math.isfinite(loss) else None


def _rounded(t: torch.Tensor, digits: int = 4) -> list[list[float | None]]:
    """A 2-D tensor as lists of rows, rounded (smaller JSON), NaN and Inf as null (strict JSON:
    a diverged game must still be drawable)."""
    t = t.detach().double().round(decimals=digits)
    t = torch.where(t.isfinite(), t, torch.full_like(t, torch.nan))
    return [[None if v != v else v for v in row] for row in t.tolist()]


class Labs:
    """All labs, by client id; expired ones are dropped whenever the store is touched."""

    def __init__(self, max_labs: int = MAX_LABS, ttl_s: float = LAB_TTL_S):
        self.labs: dict[str, Lab] = {}
        self.max_labs, self.ttl_s = max_labs, ttl_s
        self.lock = threading.Lock()

    def _expire(self) -> None:
        now = time.monotonic()
        for key in [k for k, lab in self.labs.items() if now - lab.seen > self.ttl_s]:
            del self.labs[key]

    def get(self, client: str | None) -> Lab | None:
        with self.lock:
            self._expire()
            lab = self.labs.get(client) if client else None
            if lab is not None:
                lab.seen = time.monotonic()
            return lab

    def _room(self, client: str) -> bool:  # with the lock held
        self._expire()
        return client in self.labs or len(self.labs) < self.max_labs

    def has_room(self, client: str) -> bool:
        """Whether `client` may hold a lab now: checked before one is built, which costs CPU."""
        with self.lock:
            return self._room(client)

    def put(self, client: str, lab: Lab) -> bool:
        """Hold `lab` for `client` (replacing its old one); False when all places are taken."""
        with self.lock:
            if not self._room(client):
                return False
            self.labs[client] = lab
            return True

    def drop(self, client: str | None) -> bool:
        with self.lock:
            return self.labs.pop(client, None) is not None if client else False


def _json(state: dict) -> JSONResponse:
    """A state, encoded straight to JSON: FastAPI's own encoder walks every one of its ~10,000
    numbers in Python first, 13 ms of a frame against 2 ms."""
    return JSONResponse(state)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def lab_router(labs: Labs | None = None) -> APIRouter:
    """The lab's routes under /api/lab; `labs` holds the state (a fresh store by default)."""
    labs = labs or Labs()
    router = APIRouter(prefix="/api/lab", tags=["lab"])
    ClientId = Annotated[str | None, Cookie(alias=COOKIE, max_length=64)]
    NO_LAB = "no lab for this client (or it expired after a while unpolled); create one: POST /api/lab"

    @router.post("", summary="create (or replace) this client's lab")
    def create(settings: Annotated[LabSettings, Query()], client: ClientId = None):
        client = client or secrets.token_urlsafe(16)
        full = _error(429, f"all {labs.max_labs} labs are in use; try again in {labs.ttl_s:.0f} s, "
                           "when unpolled ones expire")
        if not labs.has_room(client):
            return full
        lab = Lab(settings)  # GanforgeError (bad settings) becomes a 400 in the app
        if not labs.put(client, lab):  # another client took the last place meanwhile
            return full
        with lab.lock:  # a /step of the same client may already reach the stored lab
            response = _json(lab.state())
        response.set_cookie(COOKIE, client, httponly=True, samesite="strict")
        return response

    @router.post("/step", summary=f"run D and G steps (at most {MAX_STEPS_PER_REQUEST} each)")
    def step(steps: Annotated[Steps, Query()], client: ClientId = None):
        lab = labs.get(client)
        if lab is None:
            return _error(404, NO_LAB)
        with lab.lock:
            lab.step(steps.d, steps.g)
            return _json(lab.state()) if steps.state else {"d_steps": lab.d_steps, "g_steps": lab.g_steps}

    @router.get("/state", summary="points, D's heat-map, G's push, losses, modes")
    def state(client: ClientId = None):
        lab = labs.get(client)
        if lab is None:
            return _error(404, NO_LAB)
        with lab.lock:
            return _json(lab.state())

    @router.post("/reset", summary="start this client's lab again with the same settings")
    def reset(client: ClientId = None):
        lab = labs.get(client)
        if lab is None:
            return _error(404, NO_LAB)
        fresh = Lab(lab.settings)
        labs.put(client, fresh)
        with fresh.lock:
            return _json(fresh.state())

    @router.delete("", summary="drop this client's lab")
    def delete(client: ClientId = None):
        if not labs.drop(client):
            return _error(404, NO_LAB)
        return {"deleted": True}

    return router
