// The lab page: asks the server for steps and state (/api/lab/...), draws the plane on a canvas.
"use strict";
const $ = (id) => document.getElementById(id);
let playing = false, state = null, busy = false;
// What the page has drawn, read by benchmarks/lab_fps.py: redraws completed, those that showed a new
// training state (steps moved), and where the time went (waiting for the server, drawing).
const frames = { drawn: 0, fresh: 0, wait_ms: 0, draw_ms: 0 };

function showError(message) {
  $("error").textContent = message || "";
  $("error").hidden = !message;
}

async function api(method, path) {
  const r = await fetch(path, { method, credentials: "same-origin" });
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}

function toCanvas(p, extent, size) {  // plane (x, y) -> canvas pixel (y up)
  return [(p[0] / extent + 1) * size / 2, (1 - p[1] / extent) * size / 2];
}

function drawPlane(s) {
  const canvas = $("plane"), ctx = canvas.getContext("2d"), size = canvas.width;
  const cell = size / s.heat_side;
  for (let i = 0; i < s.heat_side; i++) {
    for (let j = 0; j < s.heat_side; j++) {
      const v = s.heat[i][j] ?? 0.5;  // null: D diverged here
      const fade = Math.round(255 * (1 - v));
      ctx.fillStyle = `rgb(255,${fade},${fade})`;
      ctx.fillRect(j * cell, i * cell, cell + 1, cell + 1);
    }
  }
  ctx.fillStyle = "rgba(90,90,90,0.6)";
  for (const p of s.real) {
    const [x, y] = toCanvas(p, s.extent, size);
    ctx.fillRect(x - 1.5, y - 1.5, 3, 3);
  }
  // Arrows: scaled so the longest is 1/12 of the view, so small pushes stay visible.
  const lengths = s.push.map((g) => Math.hypot(g[0] ?? 0, g[1] ?? 0));
  const longest = Math.max(1e-12, ...lengths), scale = size / 12 / longest;
  ctx.strokeStyle = "rgba(20,60,160,0.5)";
  ctx.beginPath();
  s.fake.forEach((p, k) => {
    if (p[0] === null || s.push[k][0] === null) return;
    const [x, y] = toCanvas(p, s.extent, size);
    ctx.moveTo(x, y);
    ctx.lineTo(x + s.push[k][0] * scale, y - s.push[k][1] * scale);
  });
  ctx.stroke();
  ctx.fillStyle = "rgb(31,100,200)";
  for (const p of s.fake) {
    if (p[0] === null) continue;
    const [x, y] = toCanvas(p, s.extent, size);
    ctx.fillRect(x - 2, y - 2, 4, 4);
  }
}

function drawLosses(history) {
  const canvas = $("losses"), ctx = canvas.getContext("2d"), w = canvas.width, h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  const series = [["loss_d", "#c92a2a"], ["loss_g", "#1f64c8"]];
  const values = history.flatMap((r) => series.map(([k]) => r[k])).filter((v) => v !== null && isFinite(v));
  if (!values.length) return;
  const lo = Math.min(...values), hi = Math.max(...values), span = hi - lo || 1;
  for (const [key, colour] of series) {
    ctx.strokeStyle = colour;
    ctx.beginPath();
    history.forEach((r, i) => {
      if (r[key] === null) return;
      const x = (i / Math.max(1, history.length - 1)) * (w - 10) + 5, y = h - 5 - (r[key] - lo) / span * (h - 20);
      ctx.lineTo(x, y);
    });
    ctx.stroke();
  }
  ctx.fillStyle = "#5f6b7a";
  ctx.fillText(`D ${hi.toPrecision(3)} … ${lo.toPrecision(3)}   red: D, blue: G`, 6, 12);
}

function render(s) {
  const fresh = !state || s.d_steps !== state.d_steps || s.g_steps !== state.g_steps;
  state = s;
  drawPlane(s);
  drawLosses(s.history);
  $("steps").textContent = `steps: D ${s.d_steps}, G ${s.g_steps} (loss ${s.loss})`;
  $("modes").textContent = s.num_modes
    ? `modes covered: ${s.modes_covered} of ${s.num_modes}; on a mode: ${(100 * s.high_quality).toFixed(1)}%`
    : "modes: this shape is not a mixture";
  frames.drawn++;
  if (fresh) frames.fresh++;
}

function drawn(s, waited) {  // render the state `s`, for which the page waited `waited` ms
  const start = performance.now();
  render(s);
  frames.wait_ms += waited;
  frames.draw_ms += performance.now() - start;
}

function stop(message) {
  showError(message);
  setPlaying(false);
}

function setPlaying(on) {
  playing = on;
  $("play").textContent = on ? "pause" : "play";
}

// One request at a time keeps the lab's state consistent: wait for the one in flight, then run
// `work`; an error stops play and is shown. Resolves to whether `work` finished.
async function exclusive(work) {
  while (busy) await nextFrame();
  busy = true;
  try {
    showError("");
    await work();
    return true;
  }
  catch (e) { stop(e.message); return false; }
  finally { busy = false; }
}

// A button pressed while the game plays first pauses it and waits for the frame in flight; `resume`
// plays on afterwards (new lab, reset), a single D or G step leaves the game paused.
async function guarded(work, resume = false) {
  const wasPlaying = playing;
  setPlaying(false);
  const ok = await exclusive(async () => {
    const asked = performance.now(), s = await work();
    drawn(s, performance.now() - asked);
  });
  if (ok && resume && wasPlaying) {
    setPlaying(true);
    loop();
  }
}

function create() {
  const q = new URLSearchParams({ data: $("data").value, preset: $("preset").value, points: $("points").value });
  if ($("loss").value) q.set("loss", $("loss").value);
  return guarded(() => api("POST", `/api/lab?${q}`), true);
}

function step(d, g) {  // the steps and the state they lead to, in one request
  return api("POST", `/api/lab/step?d=${d}&g=${g}&state=true`);
}

function nextFrame() {
  return new Promise((r) => requestAnimationFrame(r));
}

function stepAtSpeed() {
  const n = Number($("speed").value), answer = step(n, n);
  answer.catch(() => {});  // a failure is reported where it is awaited, a frame later
  return answer;
}

// Play: the next frame's steps are asked for as soon as a state arrives, before it is drawn, so the
// server trains while the page draws and waits for the screen; taking turns, it sat idle meanwhile.
function loop() {
  return exclusive(async () => {
    let next = playing ? stepAtSpeed() : null;
    while (next) {
      const asked = performance.now(), s = await next, waited = performance.now() - asked;
      next = playing ? stepAtSpeed() : null;
      await nextFrame();
      drawn(s, waited);
    }
  });
}

$("create").onclick = create;
$("reset").onclick = () => guarded(() => api("POST", "/api/lab/reset"), true);
$("d-step").onclick = () => guarded(() => step(1, 0));
$("g-step").onclick = () => guarded(() => step(0, 1));
$("play").onclick = () => {
  setPlaying(!playing);
  if (playing) loop();
};
create();
