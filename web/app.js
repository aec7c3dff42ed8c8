// scalexd web page: token -> jobs table -> UMAP of a finished projection. Plain browser
// JavaScript, no build step. Every request goes to the API of the server that served the
// page, with the user's bearer token (kept in localStorage, never put in a URL sent to the
// server: a token given in the fragment, #token=..., is stored and removed from the address).
//
// For tests and scripts the page reports what it drew: <body data-state="plotted"
// data-points="N" data-reference-points="R" data-query-points="Q"> and document.title.
"use strict";

const TOKEN_KEY = "scalexd.token";
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
  "#bcbd22", "#17becf", "#393b79", "#ad494a", "#637939", "#7b4173", "#3182bd", "#e6550d",
  "#31a354", "#756bb1", "#636363", "#fd8d3c", "#74c476"];
const FINISHED = new Set(["COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED"]);

const $ = (id) => document.getElementById(id);
let token = localStorage.getItem(TOKEN_KEY) || "";
let refreshTimer = null;
let plot = null; // {cells, labels, view, colourBy}

function say(text, isError) {
  $("message").textContent = text || "";
  $("message").className = isError ? "error" : "";
}

// fetch with the token; throws an Error carrying the problem+json detail on 4xx/5xx
async function api(path, opts) {
  const o = Object.assign({ headers: {} }, opts || {});
  if (token) o.headers["Authorization"] = "Bearer " + token;
  const r = await fetch(path, o);
  if (!r.ok) {
    let detail = r.status + " " + r.statusText;
    try {
      const p = await r.json();
      if (p.detail) detail = p.title + ": " + p.detail;
    } catch (e) { /* not JSON */ }
    const err = new Error(detail);
    err.status = r.status;
    throw err;
  }
  return r;
}

function hashParams() {
  const h = new URLSearchParams(location.hash.replace(/^#/, ""));
  if (h.get("token")) {
    token = h.get("token");
    localStorage.setItem(TOKEN_KEY, token);
    h.delete("token");
    const rest = h.toString();
    history.replaceState(null, "", location.pathname + location.search + (rest ? "#" + rest : ""));
  }
  return h;
}

async function start() {
  const h = hashParams();
  if (!token) {
    document.body.dataset.state = "need-token";
    say("Enter an API token (scalexd token create --user NAME prints one).");
    return;
  }
  try {
    const me = await (await api("/v1/me")).json();
    $("who").textContent = "signed in as " + me.user + (me.admin ? " (admin)" : "");
  } catch (e) {
    document.body.dataset.state = "need-token";
    say(e.status === 401 ? "The token was not accepted: enter another one." : e.message, true);
    return;
  }
  await loadJobs();
  const job = h.get("job");
  if (job) await showJob(job);
}

async function loadJobs() {
  clearTimeout(refreshTimer);
  let jobs = [];
  let pageToken = null;
  try {
    do {
      const q = "/v1/jobs?page_size=100" + (pageToken !== null ? "&page_token=" + pageToken : "");
      const d = await (await api(q)).json();
      jobs = jobs.concat(d.jobs);
      pageToken = d.next_page_token;
    } while (pageToken !== null && pageToken !== undefined && jobs.length < 1000);
  } catch (e) {
    say(e.message, true);
    return;
  }
  const tb = $("jobs").querySelector("tbody");
  tb.replaceChildren();
  for (const j of jobs) {
    const tr = document.createElement("tr");
    tr.dataset.job = j.id;
    const cells = [j.id, j.type + (j.reference ? " → " + j.reference : ""), j.state, null,
      j.created ? new Date(j.created).toLocaleString() : ""];
    cells.forEach((c, i) => {
      const td = document.createElement("td");
      if (i === 0) td.className = "id";
      if (i === 2) td.className = "state-" + j.state;
      if (i === 3) {
        const p = document.createElement("progress");
        p.max = 1;
        p.value = j.progress || 0;
        td.append(p, " " + Math.round(100 * (j.progress || 0)) + "%" + (j.stage ? " " + j.stage : ""));
      } else {
        td.textContent = c;
      }
      if (i === 2 && j.error) td.title = j.error.detail;
      tr.append(td);
    });
    tr.addEventListener("click", () => showJob(j.id));
    tb.append(tr);
  }
  $("jobs-section").dataset.count = String(jobs.length);
  if (document.body.dataset.state === "loading" || document.body.dataset.state === "need-token")
    document.body.dataset.state = "jobs";
  if (!jobs.length) say("No jobs yet: submit one with POST /v1/jobs or /v1/references/NAME/map.");
  // poll while something is still running (the API also offers ?wait= for single jobs)
  if (jobs.some((j) => !FINISHED.has(j.state))) refreshTimer = setTimeout(loadJobs, 3000);
}

async function showJob(id) {
  for (const tr of $("jobs").querySelectorAll("tbody tr"))
    tr.classList.toggle("selected", tr.dataset.job === id);
  let job;
  try {
    job = await (await api("/v1/jobs/" + encodeURIComponent(id))).json();
  } catch (e) {
    say(e.message, true);
    return;
  }
  history.replaceState(null, "", "#job=" + encodeURIComponent(id));
  if (job.state !== "COMPLETE") {
    $("plot-section").hidden = true;
    say("Job " + id + " is " + job.state + (job.error ? ": " + job.error.detail : "") + ".",
      !!job.error);
    return;
  }
  say("Loading the UMAP of job " + id + " ...");
  let cells = [];
  let pageToken = null;
  try {
    do { // page through the coordinates: at most 200,000 a page
      const q = "/v1/jobs/" + id + "/results/umap?page_size=200000" +
        (pageToken !== null ? "&page_token=" + pageToken : "");
      const d = await (await api(q)).json();
      cells = cells.concat(d.cells);
      pageToken = d.next_page_token;
    } while (pageToken !== null && pageToken !== undefined);
  } catch (e) {
    say(e.message, true);
    return;
  }
  const labels = new Map();
  try {
    const d = await (await api("/v1/jobs/" + id + "/results/labels")).json();
    for (const l of d.labels) labels.set(l.cell, l);
  } catch (e) {
    // integrate jobs have no transferred labels: colour by the UMAP table's label/batch
  }
  plot = { id, job, cells, labels, view: null, colourBy: $("colour-by").value };
  $("plot-title").textContent = "Job " + id + " (" + job.type +
    (job.reference ? " onto " + job.reference : "") + ")";
  $("plot-section").hidden = false;
  resetView();
  draw();
  const nref = cells.filter((c) => c.set === "reference").length;
  const b = document.body.dataset;
  b.points = String(cells.length);
  b.referencePoints = String(nref);
  b.queryPoints = String(cells.length - nref);
  b.job = id;
  b.state = "plotted";
  document.title = "scalexd: job " + id + ": " + cells.length + " points";
  say(cells.length + " cells: " + nref + " reference (grey), " + (cells.length - nref) + " query.");
}

function resetView() {
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (const c of plot.cells) {
    x0 = Math.min(x0, c.x); x1 = Math.max(x1, c.x);
    y0 = Math.min(y0, c.y); y1 = Math.max(y1, c.y);
  }
  if (!isFinite(x0)) { x0 = y0 = 0; x1 = y1 = 1; }
  const pad = 0.04 * Math.max(x1 - x0, y1 - y0, 1e-9);
  plot.view = { x0: x0 - pad, x1: x1 + pad, y0: y0 - pad, y1: y1 + pad };
}

function queryKey(c) {
  const l = plot.labels.get(c.cell);
  if (l) return l.label;
  return c.label || c.batch || "query";
}

// confidence 0 -> red, 1 -> blue
function confColour(v) {
  const t = Math.max(0, Math.min(1, v));
  const r = Math.round(215 * (1 - t) + 33 * t), g = Math.round(48 * (1 - t) + 102 * t),
    b = Math.round(39 * (1 - t) + 172 * t);
  return "rgb(" + r + "," + g + "," + b + ")";
}

function draw() {
  const cv = $("plot"), ctx = cv.getContext("2d");
  const v = plot.view, W = cv.width, H = cv.height;
  const s = Math.min(W / (v.x1 - v.x0), H / (v.y1 - v.y0));
  const cx = (v.x0 + v.x1) / 2, cy = (v.y0 + v.y1) / 2;
  const px = (x) => W / 2 + (x - cx) * s, py = (y) => H / 2 - (y - cy) * s;
  ctx.clearRect(0, 0, W, H);
  const r = plot.cells.length > 20000 ? 1.2 : 2.2;
  // reference first, in grey, so the query is drawn on top
  ctx.fillStyle = "#c8c8c8";
  for (const c of plot.cells) {
    if (c.set !== "reference") continue;
    ctx.beginPath();
    ctx.arc(px(c.x), py(c.y), r, 0, 2 * Math.PI);
    ctx.fill();
  }
  const byConf = $("colour-by").value === "confidence";
  const keys = [...new Set(plot.cells.filter((c) => c.set !== "reference").map(queryKey))].sort();
  const colour = new Map(keys.map((k, i) => [k, PALETTE[i % PALETTE.length]]));
  let drawn = 0;
  for (const c of plot.cells) {
    if (c.set === "reference") continue;
    const l = plot.labels.get(c.cell);
    ctx.fillStyle = byConf ? (l && l.confidence != null ? confColour(l.confidence) : "#000")
      : colour.get(queryKey(c));
    ctx.beginPath();
    ctx.arc(px(c.x), py(c.y), r + 0.8, 0, 2 * Math.PI);
    ctx.fill();
    drawn++;
  }
  cv.dataset.drawnQuery = String(drawn);
  legend(byConf, keys, colour);
}

function legend(byConf, keys, colour) {
  const ul = $("legend");
  ul.replaceChildren();
  const item = (col, text) => {
    const li = document.createElement("li");
    const sw = document.createElement("span");
    sw.className = "swatch";
    sw.style.background = col;
    li.append(sw, text);
    ul.append(li);
  };
  item("#c8c8c8", "reference");
  if (byConf) for (const t of [1, 0.75, 0.5, 0.25, 0]) item(confColour(t), "confidence " + t);
  else for (const k of keys) item(colour.get(k), k);
}

function setupPlot() {
  const cv = $("plot");
  cv.addEventListener("wheel", (e) => {
    if (!plot) return;
    e.preventDefault();
    const v = plot.view, rect = cv.getBoundingClientRect();
    const f = Math.exp(e.deltaY * 0.0015); // > 1 zooms out
    const s = Math.min(cv.width / (v.x1 - v.x0), cv.height / (v.y1 - v.y0));
    const cx = (v.x0 + v.x1) / 2, cy = (v.y0 + v.y1) / 2;
    const mx = cx + ((e.clientX - rect.left) * cv.width / rect.width - cv.width / 2) / s;
    const my = cy - ((e.clientY - rect.top) * cv.height / rect.height - cv.height / 2) / s;
    plot.view = { x0: mx + (v.x0 - mx) * f, x1: mx + (v.x1 - mx) * f,
      y0: my + (v.y0 - my) * f, y1: my + (v.y1 - my) * f };
    draw();
  }, { passive: false });
  let drag = null;
  cv.addEventListener("mousedown", (e) => { drag = { x: e.clientX, y: e.clientY }; });
  window.addEventListener("mouseup", () => { drag = null; });
  window.addEventListener("mousemove", (e) => {
    if (!drag || !plot) return;
    const v = plot.view;
    const s = Math.min(cv.width / (v.x1 - v.x0), cv.height / (v.y1 - v.y0));
    const dx = (e.clientX - drag.x) / s, dy = (e.clientY - drag.y) / s;
    plot.view = { x0: v.x0 - dx, x1: v.x1 - dx, y0: v.y0 + dy, y1: v.y1 + dy };
    drag = { x: e.clientX, y: e.clientY };
    draw();
  });
  $("reset-zoom").addEventListener("click", () => { if (plot) { resetView(); draw(); } });
  $("colour-by").addEventListener("change", () => { if (plot) draw(); });
  // the result needs the bearer token, so a plain link cannot fetch it: fetch, then save
  $("download").addEventListener("click", async (e) => {
    e.preventDefault();
    if (!plot) return;
    say("Downloading adata.h5ad ...");
    try {
      const blob = await (await api("/v1/jobs/" + plot.id + "/results/adata.h5ad")).blob();
      const a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = plot.id + "_adata.h5ad";
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 60000);
      say("");
    } catch (err) {
      say(err.message, true);
    }
  });
}

$("token-form").addEventListener("submit", (e) => {
  e.preventDefault();
  token = $("token").value.trim();
  localStorage.setItem(TOKEN_KEY, token);
  $("token").value = "";
  start();
});
$("forget").addEventListener("click", () => {
  localStorage.removeItem(TOKEN_KEY);
  token = "";
  location.reload();
});
$("refresh").addEventListener("click", loadJobs);
setupPlot();
start();
