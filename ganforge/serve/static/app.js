// The playground page: plain JavaScript over the JSON API in ganforge/serve/app.py.
"use strict";

const $ = (id) => document.getElementById(id);
// sampleStep: the step whose grid the training view shows; null follows the newest.
const state = { info: null, cls: null, seed: "0", dims: null, busy: false, again: false,
                trainingKey: null, sampleSteps: [], sampleStep: null };

// GET /api/<path> with query params (arrays repeat the key); throws the API's error message.
async function api(path, params = {}) {
  const url = new URL("/api/" + path, location.origin);
  for (const [key, value] of Object.entries(params)) {
    if (value === null || value === undefined || value === "") continue;
    for (const v of [].concat(value)) url.searchParams.append(key, v);
  }
  const response = await fetch(url);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function showError(err) {
  const box = $("error");
  box.hidden = !err;
  box.textContent = err ? String(err.message || err) : "";
}

function className(label) {
  return label === null ? "" : (state.info.class_names[label] ?? String(label));
}

// The police's verdict: the rank of D's score among its scores on real images (a number every
// loss supports), with the raw score and its meaning on hover; long: the full sentence.
function verdictNode(picture, withClass, long = false) {
  const caption = document.createElement("figcaption");
  caption.className = "verdict";
  const ranked = picture.realness !== null && picture.realness !== undefined;
  const pct = Math.round(ranked ? picture.realness : picture.verdict * 100);
  const info = state.info;
  const short = ranked ? `${pct}%` : `score ${picture.score.toPrecision(3)}`;
  // In the interpolation strip the caption also names the nearer class, so it stays short.
  caption.textContent = withClass && picture.label !== null ? `${className(picture.label)} · ${pct}%` :
    long && ranked ? `more real-looking than ${pct}% of ${info.realness_against}` : short;
  caption.title = (ranked ? `the police (the discriminator) finds this image more real-looking than ` +
    `${pct}% of ${info.realness_against}. ` : `no realness rank: ${info.realness_missing}. `) +
    `Raw score ${picture.score.toPrecision(3)}: ${info.score_meaning}.`;
  const bar = document.createElement("div");
  bar.className = "bar";
  const fill = document.createElement("span");
  fill.style.width = `${pct}%`;
  fill.style.background = `hsl(${Math.round(1.2 * pct)}, 65%, 45%)`;
  bar.append(fill);
  caption.append(bar);
  return caption;
}

function pictureNode(picture, withClass) {
  const fig = document.createElement("figure");
  const img = document.createElement("img");
  img.src = picture.image;
  img.alt = withClass ? `class ${className(picture.label)}` : "generated image";
  fig.append(img, verdictNode(picture, withClass));
  return fig;
}

// -- one image: class buttons, seed, sliders ---------------------------------------------
async function generateOne() {
  if (state.busy) { state.again = true; return; }  // slider drags: keep one request in flight
  state.busy = true;
  try {
    const out = await api("generate", { cls: state.cls, seed: state.seed, dims: state.dims });
    $("image").src = out.image;
    $("image").dataset.seed = out.seed;
    $("image").dataset.label = out.label ?? "";
    $("verdict").replaceWith(Object.assign(verdictNode(out, false, true), { id: "verdict" }));
    if (state.dims === null) setSliders(out.z);
    showError(null);
  } catch (err) {
    showError(err);
  } finally {
    state.busy = false;
    if (state.again) { state.again = false; generateOne(); }
  }
}

function buildClassButtons() {
  const box = $("classes");
  state.info.class_names.forEach((name, label) => {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = name;
    b.dataset.class = label;
    b.addEventListener("click", () => selectClass(label));
    box.append(b);
  });
}

function selectClass(label) {
  state.cls = label;
  for (const b of $("classes").children) b.classList.toggle("active", Number(b.dataset.class) === label);
  generateOne();
}

function buildSliders() {
  const n = Math.min(state.info.limits.sliders, state.info.z_dim);
  const lim = state.info.limits.slider_limit;
  for (let i = 0; i < n; i++) {
    const label = document.createElement("label");
    label.textContent = `z[${i}]`;
    const input = Object.assign(document.createElement("input"),
      { type: "range", min: -lim, max: lim, step: 0.05, value: 0, id: `z${i}` });
    const out = document.createElement("output");
    input.addEventListener("input", () => {
      out.textContent = Number(input.value).toFixed(2);
      state.dims = [...$("sliders").querySelectorAll("input")].map((s) => s.value);
      generateOne();
    });
    $("sliders").append(label, input, out);
  }
}

function setSliders(z) {
  $("sliders").querySelectorAll("input").forEach((s, i) => {
    s.value = z[i];
    s.nextElementSibling.textContent = Number(z[i]).toFixed(2);
  });
}

function newNoise(seed) {
  state.seed = seed;
  state.dims = null;
  $("seed").value = seed;
  generateOne();
}

// -- grid and interpolation ---------------------------------------------------------------
async function drawGrid() {
  try {
    const cls = $("grid-class").value;
    const out = await api("grid", { rows: $("grid-rows").value, cols: $("grid-cols").value,
                                    seed: $("grid-seed").value, cls });
    const grid = $("grid");
    grid.style.gridTemplateColumns = `repeat(${out.cols}, auto)`;
    grid.replaceChildren(...out.pictures.map((p) => pictureNode(p, false)));
    showError(null);
  } catch (err) { showError(err); }
}

async function drawStrip() {
  try {
    const out = await api("interpolate", {
      seed_from: $("seed-from").value, seed_to: $("seed-to").value,
      class_from: state.info.conditional ? $("class-from").value : null,
      class_to: state.info.conditional ? $("class-to").value : null,
      steps: $("steps").value, spherical: $("spherical").checked });
    $("strip").replaceChildren(...out.pictures.map((p) => pictureNode(p, true)));
    showError(null);
  } catch (err) { showError(err); }
}

function fillSelect(select, first) {
  if (first) select.append(new Option(first, ""));
  state.info.class_names.forEach((name, label) => select.append(new Option(`class ${name}`, label)));
}

// -- training view: polls /api/training and redraws when something changed --------------
function drawCurve(name, series) {
  const canvas = document.createElement("canvas");
  const w = 260, h = 130, pad = { l: 44, r: 8, t: 18, b: 18 };
  canvas.width = w; canvas.height = h;
  const g = canvas.getContext("2d");
  g.font = "11px system-ui, sans-serif";
  g.fillStyle = "#1d2330";
  g.fillText(name, pad.l, 12);
  const { x, y } = series;
  if (!x.length) return canvas;
  const x0 = Math.min(...x), x1 = Math.max(...x) || 1, y0 = Math.min(...y), y1 = Math.max(...y);
  const sx = (v) => pad.l + (v - x0) / ((x1 - x0) || 1) * (w - pad.l - pad.r);
  const sy = (v) => h - pad.b - (v - y0) / ((y1 - y0) || 1) * (h - pad.t - pad.b);
  g.fillStyle = "#5f6b7a";
  g.fillText(y1.toPrecision(3), 2, pad.t + 8);
  g.fillText(y0.toPrecision(3), 2, h - pad.b);
  g.fillText(`step ${x1}`, w - pad.r - 70, h - 4);
  g.strokeStyle = "#3b5bdb";
  g.lineWidth = 1.5;
  g.beginPath();
  x.forEach((v, i) => (i ? g.lineTo(sx(v), sy(y[i])) : g.moveTo(sx(v), sy(y[i]))));
  g.stroke();
  return canvas;
}

// The step slider: one stop per saved grid (the server spreads at most a few hundred over the
// run). At its right end it follows the newest grid; moved back, it stays on the step chosen.
function showSampleSteps(steps) {
  $("sample-slider").hidden = steps.length === 0;
  state.sampleSteps = steps;
  if (!steps.length) return;
  const slider = $("sample-step");
  slider.max = steps.length - 1;
  slider.disabled = steps.length < 2;
  // A longer run may thin the stops out: keep the chosen step, or the nearest earlier stop.
  const at = state.sampleStep === null ? steps.length - 1 :
    Math.max(0, steps.findLastIndex((s) => s <= state.sampleStep));
  slider.value = at;
  showSample(at);
}

function showSample(at) {
  const steps = state.sampleSteps, step = steps[at];
  const text = `step ${step} of ${steps[steps.length - 1]}`;
  $("sample-label").textContent = text;
  $("sample-step").setAttribute("aria-valuetext", text);
  const img = $("sample-grid");
  const src = `/api/samples/latest?step=${step}`;
  if (img.getAttribute("src") !== src) img.src = src;  // the same src again would fetch it again
  img.alt = `fixed-noise sample grid of step ${step}`;
  img.hidden = false;
}

function moveSampleSlider() {
  const at = Number($("sample-step").value), last = state.sampleSteps.length - 1;
  state.sampleStep = at === last ? null : state.sampleSteps[at];
  showSample(at);
}

async function refreshTraining() {
  try {
    const t = await api("training");
    // A checkpoint on its own (the pretrained model), not a run being followed.
    $("train-status").textContent = !t.run_dir ?
      `a checkpoint of step ${t.model_step} without its run: serve a run directory (ganforge serve RUN) ` +
      "to follow its losses and sample grids here, live while it trains" :
      (t.logged_step === null ? "no metrics logged yet" :
        `step ${t.logged_step} logged ${Math.round(t.seconds_since_update)} s ago`) +
      ` · serving the checkpoint of step ${t.model_step} · this view refreshes every 3 s`;
    const key = `${t.logged_step}/${t.sample_step}/${t.model_step}`;
    if (key === state.trainingKey) return;
    const modelChanged = state.trainingKey !== null && t.model_step !== state.info.step;
    state.trainingKey = key;
    showSampleSteps(t.sample_steps);
    $("curves").replaceChildren(...Object.entries(t.series).map(([k, s]) => drawCurve(k, s)));
    if (modelChanged) {  // a new checkpoint: show what it makes now
      state.info.step = t.model_step;
      showRunInfo();
      generateOne(); drawGrid(); drawStrip();
    }
  } catch (err) { showError(err); }
}

function showRunInfo() {
  const i = state.info;
  $("run-info").textContent = `${i.run} · ${i.net} · step ${i.step} · ` +
    (i.conditional ? `${i.class_names.length} classes` : "unconditional");
}

async function start() {
  try {
    state.info = await api("info");
  } catch (err) { showError(err); return; }
  const i = state.info;
  showRunInfo();
  document.body.classList.toggle("unconditional", !i.conditional);
  const side = i.limits.max_side;
  $("grid-rows").max = side; $("grid-cols").max = side; $("steps").max = i.limits.max_steps;
  if (i.conditional) {
    buildClassButtons();
    fillSelect($("grid-class"), "one row per class");
    fillSelect($("class-from")); fillSelect($("class-to"));
    $("class-to").value = Math.min(1, i.class_names.length - 1);
    $("grid-rows").value = Math.min(i.class_names.length, side);
    state.cls = 0;
    $("classes").firstChild.classList.add("active");
  } else {
    $("grid-class").append(new Option("samples", ""));
    $("grid-rows").value = 8;
  }
  buildSliders();
  $("seed").addEventListener("change", () => newNoise($("seed").value.trim()));
  $("new-noise").addEventListener("click", () => newNoise(String(Math.floor(Math.random() * 2 ** 31))));
  $("grid-draw").addEventListener("click", drawGrid);
  $("interp-draw").addEventListener("click", drawStrip);
  $("sample-step").addEventListener("input", moveSampleSlider);
  generateOne(); drawGrid(); drawStrip(); refreshTraining();
  setInterval(refreshTraining, 3000);
}

start();
