// scalexd web page: sign in with a token, browse the reference catalog, upload a sample and
// map it (upload progress, job progress), explore the result (map, labels, QC, downloads) and
// manage one's datasets and jobs. Plain browser JavaScript, no build step; the plot is
// web/plot.js. Every request goes to the API of the server that served the page with the
// user's bearer token in the Authorization header (kept in localStorage, never put in a URL
// sent to the server: a token given in the fragment, #token=..., is stored and removed).
//
// Where the API grows, the page follows without a change: routes are looked up in the
// server's own OpenAPI document (/v1/jobs/{id}/results/qc, /v1/references/{name}/umap),
// label rows' mapping_score and an "Unknown" label are used when present, job options
// (k, Unknown thresholds) come from GET /v1/options.
//
// For tests and scripts the page reports what it shows: <body data-state> is loading,
// need-token, ready, uploading, running, plotted, not-found or error; once plotted it carries
// data-points, data-reference-points, data-query-points and data-job; document.title ends
// with "N points".
"use strict";

const TOKEN_KEY = "scalexd.token";
const JOB_KEY = "scalexd.job";
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
  "#bcbd22", "#17becf", "#393b79", "#ad494a", "#637939", "#7b4173", "#3182bd", "#e6550d",
  "#31a354", "#756bb1", "#636363", "#fd8d3c", "#74c476"];
const REF_GREY = "#c8c8c8";
const FINISHED = new Set(["COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED"]);
const MAX_REF_POINTS = 50000; // the reference overlay is sampled above this; the query never

const $ = (id) => document.getElementById(id);
const el = (tag, props, ...kids) => {
  const e = Object.assign(document.createElement(tag), props || {});
  e.append(...kids.filter((k) => k !== null && k !== undefined));
  return e;
};
const S = { // the page's state
  token: localStorage.getItem(TOKEN_KEY) || "",
  me: null, refs: [], jobs: [], options: [], paths: new Set(),
  xhr: null, poll: 0, pollJob: null, result: null, plot: null,
};

function say(text, isError) {
  $("message").textContent = text || "";
  $("message").className = isError ? "error" : "";
  $("message").setAttribute("role", isError ? "alert" : "status");
}
function setState(s) { document.body.dataset.state = s; }

// A problem+json body as the text a user reads: the title and the detail (what to do next).
function problemText(status, statusText, body) {
  try {
    const p = JSON.parse(body);
    if (p.detail) return (p.title ? p.title + ": " : "") + p.detail;
  } catch (e) { /* not JSON */ }
  return status + " " + (statusText || "request failed");
}

// fetch with the token; throws an Error carrying the problem's detail on 4xx/5xx
async function api(path, opts) {
  const o = Object.assign({ headers: {} }, opts || {});
  if (S.token) o.headers.Authorization = "Bearer " + S.token;
  const r = await fetch(path, o);
  if (!r.ok) {
    const err = new Error(problemText(r.status, r.statusText, await r.text()));
    err.status = r.status;
    throw err;
  }
  return r;
}
const apiJSON = async (path, opts) => (await api(path, opts)).json();

// every page of a listing: GET path?page_size=..., following next_page_token
async function pages(path, key, limit) {
  let out = [], tok = null;
  do {
    const sep = path.includes("?") ? "&" : "?";
    const d = await apiJSON(path + sep + (tok !== null ? "page_token=" + encodeURIComponent(tok) : ""));
    out = out.concat(d[key] || []);
    tok = d.next_page_token;
  } while (tok !== null && tok !== undefined && out.length < (limit || Infinity));
  return out;
}

// ---------------------------------------------------------------- start, sign-in, tabs

function hashParams() {
  const h = new URLSearchParams(location.hash.replace(/^#/, ""));
  if (h.get("token")) {
    S.token = h.get("token");
    localStorage.setItem(TOKEN_KEY, S.token);
    h.delete("token");
    const rest = h.toString().replace(/=$/, "");
    history.replaceState(null, "", location.pathname + location.search + (rest ? "#" + rest : ""));
  }
  return h;
}

async function start() {
  hashParams();
  if (!S.token) {
    setState("need-token");
    say("Sign in: paste an API token (scalexd token create --user NAME prints one).");
    $("token").focus();
    return;
  }
  try {
    S.me = await apiJSON("/v1/me");
  } catch (e) {
    setState("need-token");
    say(e.status === 401 ? "The token was not accepted: paste another one." : e.message, true);
    return;
  }
  say("");
  $("sign-in").hidden = true;
  $("who").textContent = "signed in as " + S.me.user + (S.me.admin ? " (admin: sees all data)" : "");
  try {
    const spec = await apiJSON("/v1/openapi.json");
    for (const p of Object.keys(spec.paths || {})) S.paths.add(p);
    const o = await apiJSON("/v1/options");
    S.options = Array.isArray(o) ? o : (o.options || []);
  } catch (e) { /* the page works without them: fewer options shown */ }
  fillOptions();
  setState("ready");
  await loadMyData(); // first: a reference's thumbnail may come from one of the user's jobs
  await loadRefs();
  route();
}

// #job=ID opens a job; #references, #map, #mydata a tab; nothing: the remembered job, if any
function route() {
  const h = new URLSearchParams(location.hash.replace(/^#/, ""));
  const job = h.get("job");
  if (job) { showJob(job); return; }
  const tab = location.hash.replace(/^#/, "");
  if (["references", "map", "mydata"].includes(tab)) { showTab(tab); return; }
  const last = localStorage.getItem(JOB_KEY);
  if (last) { location.hash = "job=" + encodeURIComponent(last); return; }
  showTab("references");
}

function showTab(name) {
  for (const s of document.querySelectorAll("[data-tab-panel]")) s.hidden = s.dataset.tabPanel !== name;
  for (const a of document.querySelectorAll("nav a"))
    if (a.dataset.tab === name) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  if (name === "mydata") loadMyData();
  if (name === "references" && S.me) loadRefs(); // thumbnails from jobs finished since
}

// ---------------------------------------------------------------- references

async function loadRefs() {
  try {
    S.refs = (await apiJSON("/v1/references")).references || [];
  } catch (e) {
    say(e.message, true);
    return;
  }
  const box = $("ref-cards"), sel = $("ref-select");
  box.replaceChildren();
  sel.replaceChildren();
  if (!S.refs.length) box.append(el("p", { textContent: "No references yet: an administrator registers one (POST /v1/references)." }));
  for (const r of S.refs) {
    const thumb = el("canvas", { width: 160, height: 120, className: "thumb" });
    thumb.setAttribute("role", "img");
    thumb.setAttribute("aria-label", "map of reference " + r.name);
    const facts = [["Species", r.species], ["Tissue", r.tissue], ["Cells", r.cells], ["Genes", r.genes],
      ["Label columns", (r.label_columns || []).join(", ")], ["Model", r.model_version || r.version]];
    const dl = el("dl");
    for (const [k, v] of facts)
      if (v !== undefined && v !== null && v !== "") dl.append(el("dt", { textContent: k }), el("dd", { textContent: String(v) }));
    const btn = el("button", { type: "button", textContent: "Map a sample onto " + r.name });
    btn.addEventListener("click", () => { sel.value = r.name; fillLabels(); location.hash = "map"; });
    const card = el("article", { className: "card" }, thumb,
      el("div", null, el("h3", { textContent: r.name }), el("p", { textContent: r.description || "" }), dl, btn));
    card.dataset.reference = r.name;
    box.append(card);
    sel.append(el("option", { value: r.name, textContent: r.name }));
    refThumb(r, thumb);
  }
  fillLabels();
}

// The reference's map, small: from the reference's own UMAP route when the server has one,
// else from a finished mapping onto it that the user can read (its reference cells).
async function refThumb(r, cv) {
  let cells = null;
  try {
    if (S.paths.has("/v1/references/{name}/umap")) {
      cells = (await apiJSON("/v1/references/" + encodeURIComponent(r.name) + "/umap?page_size=20000")).cells;
    } else {
      // asked now, not from the My data list: a job may have finished since it was read
      const done = (await apiJSON("/v1/jobs?state=COMPLETE&page_size=100")).jobs || [];
      const j = done.find((x) => x.reference === r.name);
      if (j) cells = (await apiJSON("/v1/jobs/" + j.id + "/results/umap?set=reference&sample=20000&page_size=20000")).cells;
    }
  } catch (e) { cells = null; }
  const c = cv.getContext("2d");
  c.fillStyle = "#f4f4f4";
  c.fillRect(0, 0, cv.width, cv.height);
  if (!cells || !cells.length) {
    c.fillStyle = "#555";
    c.font = "12px system-ui, sans-serif";
    c.fillText("map shown after", 12, 56);
    c.fillText("the first mapping", 12, 72);
    cv.dataset.points = "0";
    return;
  }
  const keys = [...new Set(cells.map((p) => p.label || ""))].sort();
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (const p of cells) { x0 = Math.min(x0, p.x); x1 = Math.max(x1, p.x); y0 = Math.min(y0, p.y); y1 = Math.max(y1, p.y); }
  const s = Math.min((cv.width - 8) / Math.max(x1 - x0, 1e-9), (cv.height - 8) / Math.max(y1 - y0, 1e-9));
  for (const p of cells) {
    c.fillStyle = keys.length > 1 ? PALETTE[keys.indexOf(p.label || "") % PALETTE.length] : "#666";
    c.fillRect(4 + (p.x - x0) * s, cv.height - 4 - (p.y - y0) * s, 2, 2);
  }
  cv.dataset.points = String(cells.length);
}

function fillLabels() {
  const r = S.refs.find((x) => x.name === $("ref-select").value);
  const sel = $("label-select");
  sel.replaceChildren();
  for (const c of (r && r.label_columns) || []) sel.append(el("option", { value: c, textContent: c }));
  if (!sel.options.length) sel.append(el("option", { value: "", textContent: "(none: map without labels)" }));
}

// The options of a project job a user should see: k and the Unknown thresholds, when the
// server has them (names from GET /v1/options).
function fillOptions() {
  const box = $("options");
  box.replaceChildren();
  const want = (o) => (o.jobs || ["project"]).includes("project") &&
    (o.name === "k" || o.name === "min_features" || /unknown|threshold|min_confidence|min_mapping/i.test(o.name));
  for (const o of S.options.filter(want)) {
    const id = "opt-" + o.name;
    const inp = el("input", { id, name: o.name, type: "number", step: o.type === "integer" ? "1" : "any" });
    if (o.default !== undefined && o.default !== null) inp.placeholder = String(o.default);
    if (o.min !== undefined) inp.min = o.min;
    if (o.max !== undefined) inp.max = o.max;
    inp.dataset.type = o.type || "";
    const help = el("span", { className: "hint", id: id + "-help", textContent: o.help || "" });
    inp.setAttribute("aria-describedby", help.id);
    box.append(el("div", { className: "option" }, el("label", { htmlFor: id, textContent: o.name }), inp, help));
  }
}

// ---------------------------------------------------------------- upload and map

function chosenFiles(files) {
  S.files = [...files];
  $("file-name").textContent = S.files.length ? "Selected: " + S.files.map((f) => f.name + " (" + size(f.size) + ")").join(", ") : "";
}
const size = (b) => b > 1e9 ? (b / 1e9).toFixed(1) + " GB" : b > 1e6 ? (b / 1e6).toFixed(1) + " MB" : Math.ceil(b / 1e3) + " kB";

// POST /v1/datasets with upload progress; resolves to the stored dataset, rejects with the
// API's problem text (or "canceled").
function uploadDataset(files) {
  return new Promise((resolve, reject) => {
    const x = new XMLHttpRequest();
    S.xhr = x;
    x.open("POST", "/v1/datasets?name=" + encodeURIComponent(files[0].name));
    x.setRequestHeader("Authorization", "Bearer " + S.token);
    let body = files[0];
    if (files.length > 1) { // an mtx folder's files: one multipart body
      body = new FormData();
      files.forEach((f, i) => body.append("file" + i, f, f.name));
    } else {
      x.setRequestHeader("Content-Type", "application/octet-stream");
    }
    x.upload.onprogress = (e) => {
      if (!e.lengthComputable) return;
      $("upload-progress").value = e.loaded / e.total;
      $("upload-text").textContent = Math.round(100 * e.loaded / e.total) + "% of " + size(e.total) +
        (e.loaded >= e.total ? ": checking the file ..." : "");
    };
    x.onload = () => {
      S.xhr = null;
      if (x.status >= 200 && x.status < 300) resolve(JSON.parse(x.responseText));
      else reject(new Error(problemText(x.status, x.statusText, x.responseText)));
    };
    x.onerror = () => { S.xhr = null; reject(new Error("the upload failed: the server could not be reached")); };
    x.onabort = () => { S.xhr = null; reject(new Error("Upload canceled.")); };
    x.send(body);
  });
}

async function startMapping(e) {
  e.preventDefault();
  $("map-error").textContent = "";
  if (!S.files || !S.files.length) { $("map-error").textContent = "Choose a file first."; return; }
  const ref = $("ref-select").value;
  if (!ref) { $("map-error").textContent = "Choose a reference first."; return; }
  const options = {};
  if ($("label-select").value) options.label = $("label-select").value;
  for (const inp of $("options").querySelectorAll("input")) {
    if (inp.value === "") continue;
    options[inp.name] = inp.dataset.type === "integer" ? parseInt(inp.value, 10) : parseFloat(inp.value);
  }
  $("map-start").disabled = true;
  $("upload-box").hidden = false;
  $("upload-progress").value = 0;
  $("upload-text").textContent = "";
  setState("uploading");
  try {
    const ds = await uploadDataset(S.files);
    $("upload-text").textContent = "stored: " + ds.n_obs + " cells, " + ds.n_vars + " genes";
    const job = await apiJSON("/v1/jobs", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ type: "project", datasets: [ds.id], reference: ref, options }),
    });
    localStorage.setItem(JOB_KEY, job.id); // remembered at once: the user may leave now
    location.hash = "job=" + encodeURIComponent(job.id);
  } catch (err) {
    $("map-error").textContent = err.message;
    setState("error");
  } finally {
    $("map-start").disabled = false;
    $("upload-box").hidden = true;
  }
}

// ---------------------------------------------------------------- a job: progress, then result

async function showJob(id) {
  clearTimeout(S.poll);
  S.pollJob = id;
  let job;
  try {
    job = await apiJSON("/v1/jobs/" + encodeURIComponent(id));
  } catch (e) {
    if (S.pollJob !== id) return;
    showTab("map");
    $("job-box").hidden = true;
    if (localStorage.getItem(JOB_KEY) === id) localStorage.removeItem(JOB_KEY);
    $("map-error").textContent = e.status === 404 ? "Job " + id + ": not found. " + e.message : e.message;
    say(e.status === 404 ? "Job " + id + " not found." : e.message, true);
    setState(e.status === 404 ? "not-found" : "error");
    return;
  }
  if (S.pollJob !== id) return;
  localStorage.setItem(JOB_KEY, id);
  if (job.state === "COMPLETE") { await showResult(job); return; }
  showTab("map");
  $("map-error").textContent = "";
  $("job-box").hidden = false;
  $("job-title").textContent = "Job " + id + " (" + job.type + (job.reference ? " onto " + job.reference : "") + ")";
  $("job-progress").value = job.progress || 0;
  $("job-cancel").hidden = FINISHED.has(job.state);
  $("job-cancel").onclick = () => cancelJob(id);
  if (FINISHED.has(job.state)) {
    $("job-text").textContent = job.state;
    $("map-error").textContent = "Job " + id + " ended " + job.state + (job.error ? ": " + (job.error.detail || job.error.message || "") : ".");
    setState("error");
    return;
  }
  setState("running");
  $("job-text").textContent = job.state + (job.stage ? ", " + job.stage : "") + ": " +
    Math.round(100 * (job.progress || 0)) + "%" + eta(id, job.progress || 0);
  S.poll = setTimeout(() => showJob(id), 1000);
}

// time left from the progress rate seen by this page (first sighting -> now)
function eta(id, p) {
  const now = Date.now();
  if (!S.etaStart || S.etaStart.id !== id) S.etaStart = { id, t: now, p };
  const dt = (now - S.etaStart.t) / 1000, dp = p - S.etaStart.p;
  if (dp <= 0.01 || dt < 2) return "";
  const left = Math.round(dt * (1 - p) / dp);
  return ", about " + (left >= 90 ? Math.round(left / 60) + " min" : left + " s") + " left";
}

async function cancelJob(id) {
  try {
    await api("/v1/jobs/" + encodeURIComponent(id) + "/cancel", { method: "POST" });
    say("Cancel requested for job " + id + ".");
  } catch (e) { say(e.message, true); }
  loadMyData();
}

// the UMAP rows of the job (pages of at most 200,000): every query cell, and a uniform
// sample of at most MAX_REF_POINTS reference cells (the server's: the first rows of the
// reference's shuffled layout table, so a million-cell reference costs 50,000 points)
async function umapCells(id) {
  return pages("/v1/jobs/" + id + "/results/umap?page_size=200000&sample=" + MAX_REF_POINTS, "cells");
}

async function showResult(job) {
  const id = job.id;
  say("Loading the result of job " + id + " ...");
  let cells, labels = [], res = { files: [], summary: null }, qc = null;
  try {
    cells = await umapCells(id);
    res = await apiJSON("/v1/jobs/" + id + "/results");
  } catch (e) { say(e.message, true); setState("error"); return; }
  try {
    labels = (await apiJSON("/v1/jobs/" + id + "/results/labels")).labels || [];
  } catch (e) { /* an integrate job, or one mapped without a label column */ }
  if (S.paths.has("/v1/jobs/{id}/results/qc")) {
    try { qc = await apiJSON("/v1/jobs/" + id + "/results/qc"); } catch (e) { qc = null; }
  }
  if (!qc && res.summary) qc = res.summary.qc || null;
  if (S.pollJob !== id) return;
  S.result = { id, job, cells, labels: new Map(labels.map((l) => [l.cell, l])), summary: res.summary, qc };
  showTab("result");
  $("plot-title").textContent = "Job " + id + " (" + job.type + (job.reference ? " onto " + job.reference : "") + ")";
  colourChoices();
  drawResult();
  labelTable();
  qcBlock(qc, res.summary, S.result);
  downloads(id, res.files || []);
  const nref = cells.filter((c) => c.set === "reference").length;
  const b = document.body.dataset;
  b.points = String(cells.length);
  b.referencePoints = String(nref);
  b.queryPoints = String(cells.length - nref);
  b.job = id;
  setState("plotted");
  document.title = "scalexd: job " + id + ": " + cells.length + " points";
  say(cells.length + " cells: " + nref + " reference (grey), " + (cells.length - nref) + " query.");
}

// colour choices the data supports: label always; confidence, mapping score, Unknown if there
function colourChoices() {
  const rows = [...S.result.labels.values()];
  const sel = $("colour-by"), was = sel.value;
  const have = [["label", "transferred label"]];
  if (rows.some((l) => typeof l.confidence === "number")) have.push(["confidence", "confidence"]);
  if (rows.some((l) => typeof l.mapping_score === "number")) have.push(["mapping_score", "mapping score"]);
  if (rows.some((l) => l.label === "Unknown")) have.push(["unknown", "Unknown or not"]);
  sel.replaceChildren(...have.map(([v, t]) => el("option", { value: v, textContent: t })));
  if (have.some(([v]) => v === was)) sel.value = was;
}

function queryKey(c) {
  const l = S.result.labels.get(c.cell);
  if (l) return l.label;
  return c.label || c.batch || "query";
}

// score 0 -> red, 1 -> blue (both readable on white and on each other for most eyes)
function ramp(v) {
  const t = Math.max(0, Math.min(1, v));
  return "rgb(" + Math.round(215 * (1 - t) + 33 * t) + "," + Math.round(48 * (1 - t) + 102 * t) + "," +
    Math.round(39 * (1 - t) + 172 * t) + ")";
}

// point arrays for the plot from S.result and the colour choice; the reference is sampled
// to MAX_REF_POINTS by a fixed stride, every query cell is kept
function plotData() {
  const R = S.result, mode = $("colour-by").value;
  const refIdx = [], qIdx = [];
  R.cells.forEach((c, i) => (c.set === "reference" ? refIdx : qIdx).push(i));
  const stride = Math.max(1, refIdx.length / MAX_REF_POINTS);
  const keep = [];
  for (let k = 0; k < refIdx.length; k += stride) keep.push(refIdx[Math.floor(k)]);
  const idx = keep.concat(qIdx), n = idx.length;
  const d = { x: new Float32Array(n), y: new Float32Array(n), colour: new Uint16Array(n),
    layer: new Uint8Array(n), palette: [REF_GREY], cellIndex: idx };
  const keys = [...new Set(qIdx.map((i) => queryKey(R.cells[i])))].sort();
  R.keys = keys;
  const cat = mode === "label" || mode === "unknown";
  if (mode === "label") keys.forEach((k, i) => d.palette.push(k === "Unknown" ? "#222" : PALETTE[i % PALETTE.length]));
  else if (mode === "unknown") d.palette.push("#2166ac", "#d6604d");
  else for (let s = 0; s <= 20; s++) d.palette.push(ramp(s / 20));
  const missing = d.palette.length;
  if (!cat) d.palette.push("#000"); // a query cell without the score
  idx.forEach((ci, k) => {
    const c = R.cells[ci];
    d.x[k] = c.x; d.y[k] = c.y;
    if (c.set === "reference") return;
    d.layer[k] = 1;
    const l = R.labels.get(c.cell);
    if (mode === "label") d.colour[k] = 1 + keys.indexOf(queryKey(c));
    else if (mode === "unknown") d.colour[k] = queryKey(c) === "Unknown" ? 2 : 1;
    else {
      const v = l ? l[mode] : undefined;
      d.colour[k] = typeof v === "number" ? 1 + Math.round(20 * Math.max(0, Math.min(1, v))) : missing;
    }
  });
  if (R.highlight !== undefined) {
    d.dim = new Uint8Array(n);
    idx.forEach((ci, k) => { if (d.layer[k] && queryKey(R.cells[ci]) !== R.highlight) d.dim[k] = 1; });
  }
  return d;
}

function drawResult() {
  if (!S.plot) S.plot = new SxScatter($("plot"), { onHover: hover });
  const d = plotData();
  S.plotData = d;
  S.plot.view = null;
  S.plot.setData(d);
  legend();
}

function redrawColours() { // same view, new colours or highlight
  const d = plotData();
  S.plotData = d;
  S.plot.setData(d);
  legend();
}

function legend() {
  const ul = $("legend"), mode = $("colour-by").value, d = S.plotData;
  ul.replaceChildren();
  const item = (col, text) => ul.append(el("li", null, el("span", { className: "swatch", style: "background:" + col }), text));
  item(REF_GREY, "reference");
  if (mode === "label") S.result.keys.forEach((k, i) => item(d.palette[i + 1], k));
  else if (mode === "unknown") { item(d.palette[1], "assigned a label"); item(d.palette[2], "Unknown"); }
  else for (const t of [1, 0.75, 0.5, 0.25, 0]) item(ramp(t), (mode === "confidence" ? "confidence " : "mapping score ") + t);
}

function hover(k, cx, cy) {
  const tip = $("tooltip");
  if (k < 0 || !S.plotData) { tip.hidden = true; return; }
  const c = S.result.cells[S.plotData.cellIndex[k]], l = S.result.labels.get(c.cell) || {};
  const f = (v) => (typeof v === "number" ? v.toFixed(3) : "n/a");
  tip.textContent = "";
  tip.append(el("strong", { textContent: c.cell }), el("br"), "label: " + queryKey(c), el("br"),
    "confidence: " + f(l.confidence));
  if (l.mapping_score !== undefined) tip.append(el("br"), "mapping score: " + f(l.mapping_score));
  const wrap = $("plot-wrap").getBoundingClientRect();
  tip.style.left = (cx - wrap.left + 12) + "px";
  tip.style.top = (cy - wrap.top + 12) + "px";
  tip.hidden = false;
}

// cells and mean confidence per label (from the QC report when it has them: same numbers,
// computed where the data is), a row highlights the label's cells
function labelTable() {
  const R = S.result, per = new Map();
  for (const c of R.cells) {
    if (c.set === "reference") continue;
    const k = queryKey(c), l = R.labels.get(c.cell);
    const e = per.get(k) || { cells: 0, conf: 0, nconf: 0 };
    e.cells++;
    if (l && typeof l.confidence === "number") { e.conf += l.confidence; e.nconf++; }
    per.set(k, e);
  }
  const tb = $("label-table").querySelector("tbody");
  tb.replaceChildren();
  let total = 0;
  for (const [k, e] of [...per.entries()].sort((a, b) => b[1].cells - a[1].cells)) {
    total += e.cells;
    const btn = el("button", { type: "button", className: "link", textContent: k });
    btn.setAttribute("aria-pressed", String(R.highlight === k));
    btn.addEventListener("click", () => {
      R.highlight = R.highlight === k ? undefined : k;
      for (const b of tb.querySelectorAll("button")) b.setAttribute("aria-pressed", String(R.highlight === b.textContent));
      for (const tr of tb.rows) tr.classList.toggle("selected", tr.dataset.label === R.highlight);
      redrawColours();
    });
    const tr = el("tr", null, el("th", { scope: "row" }, btn), el("td", { className: "num", textContent: String(e.cells) }),
      el("td", { className: "num", textContent: e.nconf ? (e.conf / e.nconf).toFixed(3) : "n/a" }));
    tr.dataset.label = k;
    tr.dataset.cells = String(e.cells);
    tb.append(tr);
  }
  $("label-total").textContent = String(total);
}

// The QC summary: contract "qc" (genes, cells, mapping_score, unknown_fraction, warnings)
// when the server writes it, else what result.json says about genes.
function qcBlock(qc, summary, R) {
  const dl = $("qc"), ul = $("qc-warnings");
  dl.replaceChildren();
  ul.replaceChildren();
  const row = (key, name, value) => {
    if (value === undefined || value === null || value === "") return;
    const dd = el("dd", { textContent: String(value) });
    dd.dataset.key = key;
    dl.append(el("dt", { textContent: name }), dd);
  };
  const g = (qc && qc.genes) || genesFromSummary(summary || {}, R);
  if (g && g.matched !== undefined) {
    row("genes_matched", "Genes matched", g.matched + (g.reference ? " of the reference's " + g.reference : "") +
      (g.query ? " (query has " + g.query + ")" : ""));
    dl.dataset.genesMatched = String(g.matched);
    if (g.by_rule) row("by_rule", "Matched by", Object.entries(g.by_rule).filter((e) => e[1]).map((e) => e[0] + " " + e[1]).join(", "));
    if (g.ambiguous && g.ambiguous.length) row("ambiguous", "Ambiguous genes", g.ambiguous.join(", "));
  }
  const nq = R.cells.filter((c) => c.set !== "reference").length;
  const cells = (qc && qc.cells) || { query: nq };
  row("cells", "Query cells", cells.query + (cells.mapped !== undefined ? " (" + cells.mapped + " mapped)" : ""));
  if (qc && qc.batches && qc.batches.length) row("batches", "Batches", qc.batches.join(", "));
  if (qc && qc.mapping_score) row("mapping_score", "Mapping score", "mean " + Number(qc.mapping_score.mean).toFixed(3) +
    (qc.mapping_score.quantiles ? ", median " + Number(qc.mapping_score.quantiles["50"]).toFixed(3) : ""));
  if (qc && typeof qc.unknown_fraction === "number") row("unknown", "Unknown", (100 * qc.unknown_fraction).toFixed(1) + "% of cells");
  const m = (summary && summary.metrics) || {};
  if (typeof m.accuracy === "number") // the query had the label column itself: agreement
    row("accuracy", "Agreement with the query's own labels", "accuracy " + m.accuracy.toFixed(3) +
      (typeof m.macro_f1 === "number" ? ", macro F1 " + m.macro_f1.toFixed(3) : "") + " (" + m.n_scored + " cells)");
  for (const w of (qc && qc.warnings) || []) ul.append(el("li", { className: "warning", textContent: w.message || w.code }));
}

// genes matched from result.json when the server writes no QC report: metrics.genes_present
// (the reference's genes found in the query), against the reference's and the query's counts
function genesFromSummary(s, R) {
  const m = s.metrics || {};
  const matched = m.genes_matched !== undefined ? m.genes_matched : m.genes_present;
  if (matched === undefined) return null;
  const ref = S.refs.find((r) => r.name === R.job.reference);
  return { matched, reference: ref ? ref.genes : undefined };
}

function downloads(id, files) {
  const ul = $("downloads");
  ul.replaceChildren();
  for (const f of files) {
    const b = el("button", { type: "button", className: "link", textContent: f.name + " (" + size(f.size_bytes || 0) + ")" });
    b.dataset.file = f.name;
    b.addEventListener("click", () => download(f.href, id + "_" + f.name));
    ul.append(el("li", null, b));
  }
}

// results need the bearer token, so a plain link cannot fetch them: fetch, then save
async function download(href, name) {
  say("Downloading " + name + " ...");
  try {
    const blob = await (await api(href)).blob();
    const a = el("a", { href: URL.createObjectURL(blob), download: name });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 60000);
    say("Saved " + name + ".");
  } catch (err) { say(err.message, true); }
}

// ---------------------------------------------------------------- my data

async function loadMyData() {
  if (!S.me) return;
  let jobs, ds;
  try {
    [jobs, ds] = await Promise.all([pages("/v1/jobs?page_size=100", "jobs", 1000),
      pages("/v1/datasets?page_size=100", "datasets", 1000)]);
  } catch (e) { say(e.message, true); return; }
  S.jobs = jobs;
  const act = (text, fn) => { const b = el("button", { type: "button", textContent: text }); b.addEventListener("click", fn); return b; };
  const tb = $("jobs").querySelector("tbody");
  tb.replaceChildren();
  for (const j of jobs) {
    const p = el("progress", { max: 1, value: j.progress || 0 });
    p.setAttribute("aria-label", "progress of job " + j.id);
    const open = el("a", { href: "#job=" + encodeURIComponent(j.id), textContent: j.id });
    const acts = el("td");
    if (!FINISHED.has(j.state)) acts.append(act("Cancel", () => cancelJob(j.id)));
    else acts.append(act("Delete", () => del("/v1/jobs/" + j.id, "job " + j.id)));
    const state = el("td", { className: "state-" + j.state, textContent: j.state });
    if (j.error) state.title = j.error.detail || "";
    const tr = el("tr", null, el("td", { className: "id" }, open), el("td", { textContent: j.type + (j.reference ? " → " + j.reference : "") }),
      state, el("td", null, p, " " + Math.round(100 * (j.progress || 0)) + "%" + (j.stage ? " " + j.stage : "")),
      el("td", { textContent: j.created ? new Date(j.created).toLocaleString() : "" }), el("td", { textContent: j.owner || "" }), acts);
    tr.dataset.job = j.id;
    tb.append(tr);
  }
  const tbd = $("datasets").querySelector("tbody");
  tbd.replaceChildren();
  for (const d of ds) {
    const tr = el("tr", null, el("td", { className: "id", textContent: d.id }), el("td", { textContent: d.name || "" }),
      el("td", { className: "num", textContent: String(d.n_obs) }), el("td", { className: "num", textContent: String(d.n_vars) }),
      el("td", { textContent: d.created ? new Date(d.created).toLocaleString() : "" }), el("td", { textContent: d.owner || "" }),
      el("td", null, act("Delete", () => del("/v1/datasets/" + d.id, "dataset " + d.id))));
    tr.dataset.dataset = d.id;
    tbd.append(tr);
  }
  $("mydata-section").dataset.count = String(jobs.length);
  clearTimeout(S.myPoll);
  if (jobs.some((j) => !FINISHED.has(j.state))) S.myPoll = setTimeout(loadMyData, 3000);
}

async function del(path, what) {
  if (!confirm("Delete " + what + "? This cannot be undone.")) return;
  try {
    await api(path, { method: "DELETE" });
    say("Deleted " + what + ".");
  } catch (e) { say(e.message, true); }
  loadMyData();
}

// ---------------------------------------------------------------- measurement hook

// Frame times of the plot with n synthetic points (half reference, half query, 12 labels):
// pan and zoom steps, one per animation frame, then one full redraw. For tests; changes
// nothing on the server.
window.sxBenchPlot = async function (n) {
  showTab("result");
  const cv = $("plot"), p = new SxScatter(cv, {});
  const d = { x: new Float32Array(n), y: new Float32Array(n), colour: new Uint16Array(n),
    layer: new Uint8Array(n), palette: [REF_GREY].concat(PALETTE.slice(0, 12)) };
  let seed = 7;
  const rnd = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
  for (let i = 0; i < n; i++) {
    const c = Math.floor(rnd() * 12), a = c / 12 * 2 * Math.PI;
    const r = 2.5 * Math.sqrt(-2 * Math.log(rnd() + 1e-12)), t = 2 * Math.PI * rnd(); // a Gaussian blob
    d.x[i] = 10 * Math.cos(a) + r * Math.cos(t); d.y[i] = 10 * Math.sin(a) + r * Math.sin(t);
    d.layer[i] = i % 2; d.colour[i] = d.layer[i] ? 1 + c : 0;
  }
  const t0 = performance.now();
  p.setData(d);
  const full = performance.now() - t0;
  const times = [];
  let last = performance.now();
  for (let f = 0; f < 60; f++) {
    await new Promise((res) => requestAnimationFrame(() => {
      if (f % 2) p.panBy(7, 3); else p.zoomAt(cv.width / 2, cv.height / 2, 0.97);
      p.blit();
      const now = performance.now();
      times.push(now - last);
      last = now;
      res();
    }));
  }
  clearTimeout(p.settle);
  const t1 = performance.now();
  p.render();
  const redraw = performance.now() - t1;
  times.sort((a, b) => a - b);
  return { points: n, drawn_query: p.drawnQuery, first_render_ms: full, redraw_ms: redraw,
    median_frame_ms: times[times.length >> 1], p95_frame_ms: times[Math.floor(times.length * 0.95)] };
};

// ---------------------------------------------------------------- wiring

$("token-form").addEventListener("submit", (e) => {
  e.preventDefault();
  S.token = $("token").value.trim();
  localStorage.setItem(TOKEN_KEY, S.token);
  $("token").value = "";
  start();
});
$("forget").addEventListener("click", () => {
  localStorage.removeItem(TOKEN_KEY);
  localStorage.removeItem(JOB_KEY);
  location.hash = "";
  location.reload();
});
$("refresh").addEventListener("click", loadMyData);
$("ref-select").addEventListener("change", fillLabels);
$("map-form").addEventListener("submit", startMapping);
$("file-input").addEventListener("change", (e) => chosenFiles(e.target.files));
$("upload-cancel").addEventListener("click", () => { if (S.xhr) S.xhr.abort(); });
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); chosenFiles(e.dataTransfer.files); });
$("colour-by").addEventListener("change", () => { if (S.result) redrawColours(); });
$("reset-zoom").addEventListener("click", () => { if (S.plot) S.plot.resetView(); });
window.addEventListener("hashchange", () => { if (S.me) route(); });
start();
