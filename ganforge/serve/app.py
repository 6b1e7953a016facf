"""The playground's HTTP side: a JSON API under /api (its OpenAPI schema at /openapi.json) and the
page from ganforge/serve/static. FastAPI's /docs and /redoc pages are off: they load their scripts
from a CDN, and the playground must work offline.

No request names a file: the server reads only the run's checkpoint, metrics and sample grids (by
step number), which it finds itself. Every query parameter is checked against the limits below; a
bad one gets a 4xx answer {"error": "<what is wrong>"}. Nothing is cached per request, so memory
stays flat; metrics.jsonl is followed incrementally (serve/metrics_tail.py). Every request first
passes serve/guard.py (Host header, token, security headers).
"""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations, which
# name types local to create_app.
import base64
import logging
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

import torch
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from ganforge import __version__
from ganforge.data import to_uint8
from ganforge.errors import GanforgeError
from ganforge.generator import GAN, MAX_SEED, class_ends, interpolation, load
from ganforge.outputs import png_bytes, to_pil
from ganforge.police import meaning as police_meaning
from ganforge.rundir import RunDir, find_checkpoint
from ganforge.serve.guard import Guard
from ganforge.serve.metrics_tail import MetricsTail
from ganforge.serve.samples import read_grid
from ganforge.serve.lab import Labs, lab_router

STATIC = Path(__file__).parent / "static"
MAX_SIDE = 16  # grid rows and columns: 256 images, ~0.15 s per request on a busy 2-core CPU
MAX_STEPS = 16  # interpolation frames
SLIDERS = 8  # noise dimensions the page exposes as sliders
SLIDER_LIMIT = 4.0  # z is standard normal: |z_i| > 4 happens once in ~16,000 draws
MAX_CURVE_POINTS = 500  # per metric series sent to the training view
MAX_SAMPLE_STOPS = 500  # steps the sample-grid slider offers: a run saving a grid every step has 10^5

log = logging.getLogger("ganforge.serve")


class Playground:
    """A run directory and the GAN of its newest checkpoint, re-read when training replaces it; or
    a checkpoint file alone (the pretrained model), whose training view stays empty."""

    def __init__(self, run: str | Path, reference: str | Path | None = None):
        run, self.reference = Path(run), reference
        self.is_run_dir = run.is_dir()
        if self.is_run_dir:
            if not os.access(run, os.R_OK | os.X_OK):
                raise GanforgeError(f"{run} cannot be read (permission denied); check its permissions")
            if not RunDir(run).holds_run():
                raise GanforgeError(f"{run} is not a run directory (it has no checkpoints/last.safetensors); "
                                    "give one made by 'ganforge train'")
            self.checkpoint = RunDir(run).checkpoint()
        else:  # a checkpoint file, or "pretrained": a model with no training to watch
            self.checkpoint = find_checkpoint(run)
        self.run, self.dir = run, RunDir(run)
        self.metrics = MetricsTail(self.dir.metrics)
        self._lock = threading.Lock()
        self._stamp = self._checkpoint_stamp()
        try:
            self._gan = load(run)
        except OSError as e:
            raise GanforgeError(f"{run}: cannot read its checkpoint ({e.strerror or e})") from None
        if reference is not None:
            self._gan.rank_among(reference)  # checked once: a folder gone later costs the rank, not the model
        if self._gan.model.points:
            raise GanforgeError(f"{run} is a model of 2-D points; the playground shows image models. Use "
                                "'ganforge generate RUN --out points.png' and 'ganforge evaluate RUN', or the "
                                "lab page of the playground")

    def _load(self) -> GAN:
        gan = load(self.run)
        gan.police_folder = None if self.reference is None else str(self.reference)
        return gan

    def _checkpoint_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.checkpoint)
        except OSError:
            return None
        return st.st_ino, st.st_size, st.st_mtime_ns  # training replaces the file by a rename

    @property
    def gan(self) -> GAN:
        stamp = self._checkpoint_stamp()
        if stamp is not None and stamp != self._stamp:
            with self._lock:
                if stamp != self._stamp:
                    try:
                        self._gan = self._load()
                    except Exception as e:  # whatever is wrong with the new file, keep serving the old
                        log.warning("kept the previous checkpoint: %s", e)
                    self._stamp = stamp
        return self._gan

    def sample_steps(self, most: int | None = None) -> list[int]:
        """Steps with a saved sample grid, oldest first: the grids `ganforge timelapse` animates
        (with `most`, at most that many, spread evenly; the newest is always kept)."""
        return [step for step, _ in self.dir.sample_grids(most)]

    def newest_sample_step(self) -> int | None:
        steps = self.sample_steps()
        return steps[-1] if steps else None


# -- responses (they document the API in its OpenAPI schema) ---------------------------------
class Picture(BaseModel):
    image: str = Field(description="PNG as a data URL (data:image/png;base64,...), native resolution")
    verdict: float = Field(description="sigmoid of D's score: a probability only for the bce and minimax losses")
    score: float = Field(description="the discriminator's raw score (its meaning: /api/info score_meaning)")
    realness: float | None = Field(description="percentage of a fixed batch of real images that D scores "
                                   "lower: 73 = more real-looking than 73% of them; null without real images")
    label: int | None = Field(description="the class it was asked for (the nearer one while interpolating)")


class Generated(Picture):
    seed: int
    z: list[float] = Field(description=f"the first {SLIDERS} noise values used (what the sliders show)")


class Grid(BaseModel):
    rows: int
    cols: int
    seed: int
    pictures: list[Picture] = Field(description="row by row")


class Strip(BaseModel):
    t: list[float] = Field(description="the fraction of the way from the first end to the second")
    pictures: list[Picture]


class Limits(BaseModel):
    max_seed: int = MAX_SEED
    max_side: int = MAX_SIDE
    max_steps: int = MAX_STEPS
    sliders: int = SLIDERS
    slider_limit: float = SLIDER_LIMIT


class Info(BaseModel):
    run: str
    step: int = Field(description="training step of the checkpoint being served")
    net: str
    z_dim: int
    conditional: bool
    class_names: list[str]
    img_channels: int
    img_resolution: int
    limits: Limits = Limits()
    score_meaning: str = Field(description="what D's raw score means under the loss the model was trained with")
    realness_against: str | None = Field(description="the real images realness ranks among (e.g. 'real "
                                         "digits'); null: no realness, and `realness_missing` says why")
    realness_missing: str | None = None


class Series(BaseModel):
    x: list[float]
    y: list[float]


class Training(BaseModel):
    logged_step: int | None = Field(description="newest step in metrics.jsonl")
    model_step: int = Field(description="step of the checkpoint being served")
    seconds_since_update: float | None = Field(description="age of metrics.jsonl; small while training")
    sample_step: int | None = Field(description="step of the newest sample grid")
    sample_url: str | None
    sample_steps: list[int] = Field(description="steps with a sample grid, oldest first: the stops of the "
                                    f"page's step slider; at most {MAX_SAMPLE_STOPS}, evenly spread over "
                                    "the run, the first and the newest always kept")
    series: dict[str, Series] = Field(description="each metric by step, at most "
                                      f"{MAX_CURVE_POINTS} points")
    run_dir: bool = Field(description="a run directory is served; false: a checkpoint file alone, "
                                      "with no log or grids to follow")


def data_url(image: torch.Tensor) -> str:
    """uint8 (C, H, W) -> 'data:image/png;base64,...'."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(to_pil(image))).decode()


def pictures(gan: GAN, z: torch.Tensor, labels: torch.Tensor | None) -> list[Picture]:
    images = gan.generate(z, labels)  # (n, C, H, W) in [-1, 1]
    police = gan.police(images, labels)
    realness = police.realness.tolist() if police.realness is not None else [None] * len(z)
    if labels is not None and labels.is_floating_point():
        labels = labels.argmax(dim=1)
    names = labels.tolist() if labels is not None else [None] * len(z)
    return [Picture(image=data_url(img), verdict=round(v, 4), score=round(s, 4),
                    realness=None if r is None else round(r, 1), label=y)
            for img, v, s, r, y in zip(to_uint8(images).cpu(), torch.sigmoid(police.score).tolist(),
                                       police.score.tolist(), realness, names)]


def realness_reference(gan: GAN) -> dict[str, str | None]:
    """What the model's realness ranks against, or why it has none (Info's two fields)."""
    ref = gan.police_reference()
    return {"realness_against": ref[1]} if isinstance(ref, tuple) else {"realness_against": None,
                                                                          "realness_missing": ref}


def shown(name: str) -> str:
    """A class name as text: a folder name that was not UTF-8 reaches the checkpoint with its bytes
    as lone surrogates (os.listdir's surrogateescape), which no JSON answer can encode."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def describe(err: dict) -> str:
    """One pydantic validation error -> "query parameter 'cls': ... (got '99')"."""
    name, *index = err["loc"][1:] or ["request"]  # loc is ("query", name) or ("query", name, i)
    where = f"{name}" + "".join(f"[{i}]" for i in index)
    got = f" (got {err['input']!r})" if "input" in err and err["input"] is not None else ""
    return f"query parameter '{where}': {err['msg']}{got}"


def create_app(run: str | Path, token: str | None = None, allowed_hosts: Iterable[str] = (),
               labs: Labs | None = None, reference: str | Path | None = None) -> FastAPI:
    """The playground for the run directory `run`; raises GanforgeError if it is not a usable run.
    `reference`: a folder of real images the police ranks among (see GAN.rank_among).

    Requests must name a host it serves (see serve/guard.py; `allowed_hosts` adds names) and, if
    `token` is given, carry it."""
    play = Playground(run, reference)
    first = play.gan.model
    # Unconditional models take no class; any given is refused with that reason, not a range.
    last_class = first.num_classes - 1 if first.conditional else None

    Seed = Annotated[int, Query(ge=0, le=MAX_SEED, description=f"noise seed, 0..{MAX_SEED}")]
    Class = Annotated[int | None, Query(ge=0, le=last_class, description=f"class 0..{last_class} "
                                        "(none for unconditional models)")]
    Side = Annotated[int | None, Query(ge=1, le=MAX_SIDE, description=f"1..{MAX_SIDE}")]
    Value = Annotated[float, Field(ge=-SLIDER_LIMIT, le=SLIDER_LIMIT, allow_inf_nan=False)]

    app = FastAPI(title="ganforge playground", version=__version__, docs_url=None, redoc_url=None,
                  description="Generate images from a trained ganforge run, see what the noise "
                              "controls, and watch training. Images are PNG data URLs.")

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        return error(422, "; ".join(describe(e) for e in exc.errors()))

    @app.exception_handler(GanforgeError)
    async def refused(request: Request, exc: GanforgeError):
        return error(400, str(exc))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        return error(exc.status_code, f"{exc.detail}: {request.url.path}")

    def labels(gan: GAN, n: int, cls: int | None) -> torch.Tensor | None:
        if gan.conditional and cls is None:
            raise GanforgeError("this model is conditional: give a class with cls=")
        return gan.labels_for(n, cls)

    @app.get("/api/info", response_model=Info, summary="what the served model is")
    def info() -> Info:
        gan = play.gan
        m = gan.model
        return Info(run=play.run.resolve().name, step=gan.step, net=m.net, z_dim=m.z_dim,
                    conditional=gan.conditional, class_names=[shown(n) for n in gan.class_names],
                    img_channels=m.img_channels, img_resolution=m.img_resolution,
                    score_meaning=police_meaning(gan.loss), **realness_reference(gan))

    @app.get("/api/generate", response_model=Generated, summary="one image for a class and a seed")
    def generate(cls: Class = None, seed: Annotated[int | None, Query(
                     ge=0, le=MAX_SEED, description="noise seed; left out: a new random one")] = None,
                 dims: Annotated[list[Value] | None, Query(max_length=SLIDERS, description=(
                     f"replaces the first noise values (up to {SLIDERS}, each within "
                     f"±{SLIDER_LIMIT:g}); repeat the parameter: dims=0.5&dims=-1"))] = None) -> Generated:
        gan = play.gan
        if seed is None:
            seed = int(torch.randint(0, 2**31, ()))
        y = labels(gan, 1, cls)
        z = gan.noise(1, seed)
        if dims:
            if len(dims) > gan.model.z_dim:
                raise GanforgeError(f"dims has {len(dims)} values but the noise has only {gan.model.z_dim}")
            z[0, :len(dims)] = torch.tensor(dims)
        (pic,) = pictures(gan, z, y)
        return Generated(**pic.model_dump(), seed=seed, z=[round(v, 4) for v in z[0, :SLIDERS].tolist()])

    @app.get("/api/grid", response_model=Grid, summary="many images: one row per class, or one class")
    def grid(rows: Side = None, cols: Side = None, seed: Seed = 0,
             cls: Annotated[int | None, Query(ge=0, le=last_class, description=(
                 "fill the grid with this class; left out: row r shows class r mod K"))] = None) -> Grid:
        gan = play.gan
        k = gan.model.num_classes
        rows = rows or (min(k, MAX_SIDE) if gan.conditional and cls is None else 8)
        cols = cols or 8
        n = rows * cols
        if gan.conditional and cls is None:
            y = gan.labels_for(n, (torch.arange(rows) % k).repeat_interleave(cols))
        else:
            y = gan.labels_for(n, cls)
        return Grid(rows=rows, cols=cols, seed=seed, pictures=pictures(gan, gan.noise(n, seed), y))

    @app.get("/api/interpolate", response_model=Strip, summary="a strip between two seeds and/or classes")
    def interpolate(seed_from: Seed = 0, seed_to: Seed = 1, class_from: Class = None, class_to: Class = None,
                    steps: Annotated[int, Query(ge=2, le=MAX_STEPS, description=f"2..{MAX_STEPS}")] = 8,
                    spherical: Annotated[bool, Query(description="slerp the noise (else lerp)")] = True) -> Strip:
        gan = play.gan
        z, y = interpolation(gan, steps, (seed_from, seed_to), class_ends(class_from, class_to), spherical)
        return Strip(t=torch.linspace(0, 1, steps).tolist(), pictures=pictures(gan, z, y))

    @app.get("/api/training", response_model=Training, summary="progress of the run: metrics and newest samples")
    def training() -> Training:
        gan = play.gan
        play.metrics.refresh()
        try:
            age = round(time.time() - os.stat(play.dir.metrics).st_mtime, 1)
        except OSError:
            age = None
        steps = play.sample_steps(MAX_SAMPLE_STOPS)
        newest = steps[-1] if steps else None
        series = {name: Series(x=x, y=y) for name, (x, y) in play.metrics.thinned(MAX_CURVE_POINTS).items()}
        return Training(logged_step=play.metrics.logged_step, model_step=gan.step, seconds_since_update=age,
                        sample_step=newest, sample_url=None if newest is None else f"/api/samples/latest?step={newest}",
                        sample_steps=steps, series=series, run_dir=play.is_run_dir)

    @app.get("/api/samples/latest", summary="a sample grid of the run (image/png): the newest, or a step's",
             responses={200: {"content": {"image/png": {}}}, 404: {"description": "no such sample grid"},
                        400: {"description": "the file there is not one training wrote"}})
    def latest_sample(step: Annotated[int | None, Query(
            ge=0, le=MAX_SEED, description="the step whose grid to send; left out: the newest")] = None) -> Response:
        if step is None:
            step = play.newest_sample_step()
        png = None if step is None else read_grid(play.dir, step)
        if png is None:
            return error(404, "the run has no sample grid yet" if step is None else
                         f"the run has no sample grid of step {step}")
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})

    app.include_router(lab_router(labs))  # the lab (serve/lab.py): toy GANs trained live, beside the run
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(Guard, token=token, allowed_hosts=allowed_hosts)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    return app
