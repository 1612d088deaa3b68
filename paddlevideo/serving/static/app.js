// The page: choose or drop a video, see it play, the top classes as bars, the attention pictures when the
// service has them, and the timeline ribbon of a long video filling in as its job runs. Plain JavaScript,
// no build step, nothing loaded from elsewhere: the page works offline. Every request goes to this service
// (same origin), so an API key given at the browser's login prompt is sent along by the browser.
"use strict";

const TOP_K = 5;
const LONG_VIDEO_S = 30;         // longer videos get a timeline by default (when the service offers one)
const POLL_MS = 500;             // how often a running timeline job is read
const $ = (id) => document.getElementById(id);

let info = null;                 // GET /info
let current = 0;                 // the choice being shown; answers for an older choice are dropped
let timeline = null;             // {job, windows, segments, duration, done}

function showError(message) {
  const line = $("error");
  line.textContent = String(message).split("\n")[0];
  line.hidden = !message;
}

async function readJson(response) {
  const text = await response.text();
  try {
    return JSON.parse(text);
  } catch (err) {
    return {error: `HTTP ${response.status}: ${text.slice(0, 200) || response.statusText}`};
  }
}

// ------------------------------------------------------------------ the service

async function loadInfo() {
  const line = $("service");
  try {
    const response = await fetch("/info", {cache: "no-store"});
    const data = await readJson(response);
    if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
    info = data;
    const ready = info.status === "ready";
    line.textContent = `${info.model} · ${info.backend} ${info.precision} · ${ready ? "ready" : info.status}`;
    line.className = "service " + (ready ? "ready" : "waiting");
    $("want-attention").disabled = !info.attention;
    $("want-attention").checked = !!info.attention;
    $("want-timeline").disabled = !info.timeline;
    if (!ready) setTimeout(loadInfo, 1000);
  } catch (err) {
    line.textContent = `service not reachable (${err.message}); retrying`;
    line.className = "service waiting";
    setTimeout(loadInfo, 2000);
  }
}

// ------------------------------------------------------------------ choosing a video

function choose(file) {
  if (!file) return;
  current += 1;
  const choice = current;
  showError("");
  const size = file.size < 1048576 ? `${Math.max(1, Math.round(file.size / 1024))} kB`
    : `${(file.size / 1048576).toFixed(1)} MB`;
  $("chosen").textContent = `${file.name} (${size})`;
  $("result").hidden = true;
  $("attention").hidden = true;
  stopTimeline();
  const video = $("video");
  if (video.src) URL.revokeObjectURL(video.src);
  video.src = URL.createObjectURL(file);
  video.hidden = false;
  video.onerror = () => {
    if (choice === current) showError(`this browser cannot play ${file.name}; the service classifies it anyway`);
  };
  video.onloadedmetadata = () => {
    if (choice !== current) return;
    video.classList.toggle("small", video.videoWidth < 200);  // tiny clips: enlarge without blurring
    if (info && info.timeline && video.duration > LONG_VIDEO_S && !$("want-timeline").checked) {
      $("want-timeline").checked = true;
      startTimeline(file, choice);
    }
  };
  predict(file, choice);
  if ($("want-timeline").checked && info && info.timeline) startTimeline(file, choice);
}

// ------------------------------------------------------------------ one answer for the clip

async function predict(file, choice) {
  const form = new FormData();
  form.append("file", file, file.name);
  const attention = $("want-attention").checked && info && info.attention;
  const url = `/predict?top_k=${TOP_K}` + (attention ? "&attention=1" : "");
  $("busy").hidden = false;
  try {
    const response = await fetch(url, {method: "POST", body: form});
    const data = await readJson(response);
    if (choice !== current) return;
    if (!response.ok) {
      const wait = response.headers.get("Retry-After");
      showError((data.error || `HTTP ${response.status}`) + (wait ? ` (retry in ${wait} s)` : ""));
      return;
    }
    showAnswer(data);
  } catch (err) {
    if (choice === current) showError(`cannot reach the service (${err.message})`);
  } finally {
    if (choice === current) $("busy").hidden = true;
  }
}

function showAnswer(data) {
  const bars = $("bars");
  bars.replaceChildren();
  data.class_ids.forEach((id, rank) => {
    const name = data.class_names ? data.class_names[rank] : `class ${id}`;
    const score = data.scores[rank];
    const row = document.createElement("li");
    row.className = "bar-row";
    row.dataset.classId = id;
    row.dataset.rank = rank + 1;
    const label = document.createElement("span");
    label.className = "name";
    label.textContent = name;
    label.title = `${name} (class ${id})`;
    const track = document.createElement("span");
    track.className = "bar-track";
    const fill = document.createElement("span");
    fill.className = "bar-fill";
    fill.style.display = "block";
    fill.style.width = `${(100 * score).toFixed(1)}%`;
    track.append(fill);
    const value = document.createElement("span");
    value.className = "score";
    value.textContent = `${(100 * score).toFixed(1)}%`;
    row.append(label, track, value);
    bars.append(row);
  });
  const t = data.timings_ms || {};
  $("timings").textContent = `${data.file} · ${Math.round(t.total || 0)} ms (decode ${Math.round(t.decode || 0)}, ` +
    `model ${Math.round(t.inference || 0)} in a batch of ${data.batch_size})`;
  $("result").hidden = false;
  if (data.attention) {
    $("attention-gif").src = data.attention.gif;
    $("attention-grid").src = data.attention.grid_png;
    $("attention-grid-link").href = data.attention.grid_png;
    $("attention").hidden = false;
  }
}

// ------------------------------------------------------------------ the timeline of a long video

function stopTimeline() {
  if (timeline && timeline.job && !timeline.done) {
    fetch(`/jobs/${timeline.job}`, {method: "DELETE"}).catch(() => {});
  }
  timeline = null;
  $("timeline").hidden = true;
}

async function startTimeline(file, choice) {
  if (timeline) return;
  timeline = {job: null, windows: [], segments: null, done: false, choice};
  $("timeline").hidden = false;
  $("timeline-progress").textContent = "uploading…";
  drawRibbon();
  const form = new FormData();
  form.append("file", file, file.name);
  try {
    const response = await fetch("/timeline", {method: "POST", body: form});
    const data = await readJson(response);
    if (choice !== current || !timeline) return;
    if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
    timeline.job = data.job;
    pollTimeline(choice);
  } catch (err) {
    if (choice === current) {
      showError(`timeline: ${err.message}`);
      $("timeline-progress").textContent = "failed";
    }
  }
}

async function pollTimeline(choice) {
  if (!timeline || choice !== current) return;
  try {
    const response = await fetch(`/jobs/${timeline.job}?since=${timeline.windows.length}`, {cache: "no-store"});
    const data = await readJson(response);
    if (!timeline || choice !== current) return;
    if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
    timeline.windows.push(...data.items);
    const p = data.progress || {};
    $("timeline-progress").textContent = p.total ? `${p.done} / ${p.total} windows` : `${p.done} windows`;
    if (data.state === "done") {
      timeline.done = true;
      timeline.segments = (data.result && data.result.segments) || null;
      $("timeline-progress").textContent = `${timeline.windows.length} windows · done`;
    } else if (data.state === "failed" || data.state === "cancelled") {
      timeline.done = true;
      showError(`timeline: ${data.error || data.state}`);
    }
    drawRibbon();
    if (!timeline.done) setTimeout(() => pollTimeline(choice), POLL_MS);
  } catch (err) {
    if (choice === current) showError(`timeline: ${err.message}`);
  }
}

function classColour(id) {
  const hue = (Number(id) * 137.508) % 360;  // golden angle: neighbouring ids get distant hues
  return `hsl(${hue.toFixed(0)}, 62%, 52%)`;
}

function spans() {
  // The finished timeline's segments, or, while it runs, each window's top-1 over its span.
  if (!timeline) return [];
  const source = timeline.segments || timeline.windows;
  return source.map((w) => ({
    start: Number(w.start_s), end: Number(w.end_s),
    id: w.class_id, name: w.class_name != null ? w.class_name : `class ${w.class_id}`,
  }));
}

function drawRibbon() {
  const canvas = $("ribbon");
  const width = canvas.clientWidth || 600;
  const ratio = window.devicePixelRatio || 1;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(36 * ratio);
  const ctx = canvas.getContext("2d");
  ctx.scale(ratio, ratio);
  ctx.clearRect(0, 0, width, 36);
  const parts = spans();
  const video = $("video");
  const end = Math.max(isFinite(video.duration) ? video.duration : 0, ...parts.map((s) => s.end), 1);
  const legend = new Map();
  for (const part of parts) {
    ctx.fillStyle = classColour(part.id);
    const x = (part.start / end) * width;
    ctx.fillRect(x, 4, Math.max(1, ((part.end - part.start) / end) * width), 28);
    legend.set(part.id, part.name);
  }
  if (isFinite(video.currentTime) && video.duration) {
    ctx.fillStyle = "#1d2430";
    ctx.fillRect((video.currentTime / end) * width - 1, 0, 2, 36);
  }
  const box = $("ribbon-legend");
  box.replaceChildren(...[...legend].map(([id, name]) => {
    const item = document.createElement("span");
    item.style.setProperty("--swatch", classColour(id));
    item.textContent = name;
    return item;
  }));
  canvas.onclick = (event) => {
    const rect = canvas.getBoundingClientRect();
    if (video.duration) video.currentTime = ((event.clientX - rect.left) / rect.width) * end;
  };
}

// ------------------------------------------------------------------ wiring

document.addEventListener("DOMContentLoaded", () => {
  const drop = $("drop");
  $("file").addEventListener("change", (event) => choose(event.target.files[0]));
  for (const name of ["dragenter", "dragover"]) {
    drop.addEventListener(name, (event) => { event.preventDefault(); drop.classList.add("over"); });
  }
  for (const name of ["dragleave", "drop"]) {
    drop.addEventListener(name, (event) => { event.preventDefault(); drop.classList.remove("over"); });
  }
  drop.addEventListener("drop", (event) => choose(event.dataTransfer.files[0]));
  $("video").addEventListener("timeupdate", () => { if (timeline) drawRibbon(); });
  window.addEventListener("resize", () => { if (timeline) drawRibbon(); });
  loadInfo();
});
