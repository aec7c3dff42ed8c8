// scalexd web page: a scatter plot of many points on a Canvas2D, no library.
//
// Why this shape: 100k+ points are drawn once into an offscreen buffer (one fillRect per
// point, grouped by colour so the fill style changes a few dozen times, not per point).
// During a pan or zoom the page only repaints that buffer moved and scaled (one drawImage
// per animation frame); the buffer is redrawn at the new view once the gesture pauses.
// Hover looks points up in a grid built once, so a mouse move costs a few cells, not a scan.
//
// new SxScatter(canvas, {onHover(i|-1, clientX, clientY)}); .setData({x, y, colour, layer,
// palette, dim}) with x, y Float32Array, colour Uint16Array (index into palette), layer
// Uint8Array (0 drawn first: the grey reference; 1 on top: the query), dim optional Uint8Array
// (1 = faded); .resetView(); .render() redraws the buffer now; .drawnQuery counts layer-1
// points drawn by the last render.
"use strict";

class SxScatter {
  constructor(canvas, opts) {
    this.cv = canvas;
    this.ctx = canvas.getContext("2d");
    this.buf = document.createElement("canvas");
    this.opts = opts || {};
    this.data = null;
    this.view = null; // data-space rectangle shown: {x0, x1, y0, y1}
    this.bufView = null; // the view the buffer was drawn at
    this.frame = 0;
    this.settle = 0;
    this.drawnQuery = 0;
    this.lastRenderMs = 0;
    this.bind();
  }

  setData(d) {
    this.data = d;
    this.order = this.sortByColour(d);
    this.grid = this.buildGrid(d);
    if (!this.view) this.resetView(false);
    this.render();
  }

  // draw order: layer 0 then 1, within a layer grouped by colour (one fillStyle per group);
  // a counting sort: linear in the points, stable
  sortByColour(d) {
    const n = d.x.length, K = d.palette.length + 2;
    const count = new Uint32Array(2 * K + 1);
    for (let i = 0; i < n; i++) count[d.layer[i] * K + d.colour[i] + 1]++;
    for (let k = 1; k <= 2 * K; k++) count[k] += count[k - 1];
    const idx = new Uint32Array(n);
    for (let i = 0; i < n; i++) idx[count[d.layer[i] * K + d.colour[i]]++] = i;
    return idx;
  }

  resetView(draw) { // draw unless false
    const d = this.data;
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (let i = 0; d && i < d.x.length; i++) {
      if (d.x[i] < x0) x0 = d.x[i];
      if (d.x[i] > x1) x1 = d.x[i];
      if (d.y[i] < y0) y0 = d.y[i];
      if (d.y[i] > y1) y1 = d.y[i];
    }
    if (!isFinite(x0)) { x0 = y0 = 0; x1 = y1 = 1; }
    const pad = 0.04 * Math.max(x1 - x0, y1 - y0, 1e-9);
    this.view = { x0: x0 - pad, x1: x1 + pad, y0: y0 - pad, y1: y1 + pad };
    this.extent = Object.assign({}, this.view);
    if (this.data && draw !== false) this.render();
  }

  // data -> canvas pixels for view v: uniform scale, centred
  xf(v) {
    const W = this.cv.width, H = this.cv.height;
    const s = Math.min(W / (v.x1 - v.x0), H / (v.y1 - v.y0));
    const cx = (v.x0 + v.x1) / 2, cy = (v.y0 + v.y1) / 2;
    return { s, ox: W / 2 - cx * s, oy: H / 2 + cy * s };
  }

  // Redraw the offscreen buffer at the current view and show it.
  render() {
    const t0 = performance.now();
    const d = this.data, W = this.cv.width, H = this.cv.height;
    if (this.buf.width !== W || this.buf.height !== H) { this.buf.width = W; this.buf.height = H; }
    const b = this.buf.getContext("2d");
    b.clearRect(0, 0, W, H);
    if (!d) return;
    const { s, ox, oy } = this.xf(this.view);
    const n = d.x.length;
    const big = n > 20000;
    const size = [big ? 2 : 3, big ? 3 : 5]; // the query slightly larger than the reference
    let cur = -1, drawn = 0;
    for (let pass = 0; pass < 2; pass++) { // pass 0: normal points, pass 1: highlighted on top
      for (let k = 0; k < n; k++) {
        const i = this.order[k];
        const faded = d.dim ? d.dim[i] : 0;
        if ((pass === 0) !== (faded === 1 || d.layer[i] === 0 || !d.dim)) continue;
        const key = faded && d.layer[i] ? -2 : d.colour[i];
        if (key !== cur) {
          cur = key;
          b.fillStyle = key === -2 ? "#e2e2e2" : d.palette[key];
        }
        const z = size[d.layer[i]];
        const px = d.x[i] * s + ox, py = oy - d.y[i] * s;
        if (d.layer[i]) drawn++; // counted even when outside the view: it is in the plot
        if (px < -z || py < -z || px > W + z || py > H + z) continue;
        b.fillRect(px - z / 2, py - z / 2, z, z);
      }
    }
    this.drawnQuery = drawn;
    this.cv.dataset.drawnQuery = String(drawn);
    this.bufView = Object.assign({}, this.view);
    this.lastRenderMs = performance.now() - t0;
    this.blit();
  }

  // Show the buffer transformed from the view it was drawn at to the current one.
  blit() {
    const W = this.cv.width, H = this.cv.height, c = this.ctx;
    const a = this.xf(this.bufView), v = this.xf(this.view);
    const k = v.s / a.s;
    c.setTransform(1, 0, 0, 1, 0, 0);
    c.clearRect(0, 0, W, H);
    c.setTransform(k, 0, 0, k, v.ox - a.ox * k, v.oy - a.oy * k);
    c.drawImage(this.buf, 0, 0);
    c.setTransform(1, 0, 0, 1, 0, 0);
  }

  // A view change: repaint the buffer moved at the next frame, redraw it once things settle.
  changed() {
    if (!this.frame) {
      this.frame = requestAnimationFrame(() => {
        this.frame = 0;
        this.blit();
      });
    }
    clearTimeout(this.settle);
    this.settle = setTimeout(() => this.render(), 150);
  }

  zoomAt(px, py, f) { // f > 1 zooms out, around canvas pixel (px, py)
    const v = this.view, t = this.xf(v);
    const mx = (px - t.ox) / t.s, my = (t.oy - py) / t.s;
    this.view = { x0: mx + (v.x0 - mx) * f, x1: mx + (v.x1 - mx) * f,
      y0: my + (v.y0 - my) * f, y1: my + (v.y1 - my) * f };
    this.changed();
  }

  panBy(dxPx, dyPx) {
    const v = this.view, s = this.xf(v).s;
    const dx = dxPx / s, dy = dyPx / s;
    this.view = { x0: v.x0 - dx, x1: v.x1 - dx, y0: v.y0 + dy, y1: v.y1 + dy };
    this.changed();
  }

  // canvas pixel of a mouse event (the canvas may be scaled by CSS)
  pixel(e) {
    const r = this.cv.getBoundingClientRect();
    return [(e.clientX - r.left) * this.cv.width / r.width,
      (e.clientY - r.top) * this.cv.height / r.height];
  }

  // grid over the data extent: cell -> point indices of layer 1 (only the query is hovered)
  buildGrid(d) {
    const G = 128;
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (let i = 0; i < d.x.length; i++) {
      x0 = Math.min(x0, d.x[i]); x1 = Math.max(x1, d.x[i]);
      y0 = Math.min(y0, d.y[i]); y1 = Math.max(y1, d.y[i]);
    }
    const cells = new Map();
    const g = { G, x0, y0, sx: G / Math.max(x1 - x0, 1e-9), sy: G / Math.max(y1 - y0, 1e-9), cells };
    for (let i = 0; i < d.x.length; i++) {
      if (!d.layer[i]) continue;
      const key = this.cellOf(g, d.x[i], d.y[i]);
      let a = cells.get(key);
      if (!a) cells.set(key, (a = []));
      a.push(i);
    }
    return g;
  }

  cellOf(g, x, y) {
    const cx = Math.max(0, Math.min(g.G - 1, Math.floor((x - g.x0) * g.sx)));
    const cy = Math.max(0, Math.min(g.G - 1, Math.floor((y - g.y0) * g.sy)));
    return cy * g.G + cx;
  }

  // the query point nearest canvas pixel (px, py) within 8 px, or -1
  nearest(px, py) {
    const d = this.data, g = this.grid;
    if (!d || !g) return -1;
    const t = this.xf(this.view), R = 8;
    const mx = (px - t.ox) / t.s, my = (t.oy - py) / t.s, r = R / t.s;
    const c0 = this.cellOf(g, mx - r, my - r), c1 = this.cellOf(g, mx + r, my + r);
    let best = -1, bd = R * R;
    for (let cy = Math.floor(c0 / g.G); cy <= Math.floor(c1 / g.G); cy++) {
      for (let cx = c0 % g.G; cx <= c1 % g.G; cx++) {
        for (const i of g.cells.get(cy * g.G + cx) || []) {
          const dx = (d.x[i] * t.s + t.ox) - px, dy = (t.oy - d.y[i] * t.s) - py;
          if (dx * dx + dy * dy <= bd) { bd = dx * dx + dy * dy; best = i; }
        }
      }
    }
    return best;
  }

  bind() {
    const cv = this.cv;
    cv.addEventListener("wheel", (e) => {
      if (!this.data) return;
      e.preventDefault();
      const [px, py] = this.pixel(e);
      this.zoomAt(px, py, Math.exp(e.deltaY * 0.0015));
    }, { passive: false });
    let drag = null;
    cv.addEventListener("mousedown", (e) => { drag = [e.clientX, e.clientY]; cv.classList.add("dragging"); });
    window.addEventListener("mouseup", () => { drag = null; cv.classList.remove("dragging"); });
    window.addEventListener("mousemove", (e) => {
      if (!this.data) return;
      if (drag) {
        const r = cv.getBoundingClientRect(), k = cv.width / r.width;
        this.panBy((e.clientX - drag[0]) * k, (e.clientY - drag[1]) * k);
        drag = [e.clientX, e.clientY];
        return;
      }
      if (e.target !== cv || !this.opts.onHover) return;
      const [px, py] = this.pixel(e);
      this.opts.onHover(this.nearest(px, py), e.clientX, e.clientY);
    });
    cv.addEventListener("mouseleave", () => { if (this.opts.onHover) this.opts.onHover(-1); });
    // keyboard: arrows pan, + and - zoom, 0 resets (the canvas is focusable)
    cv.addEventListener("keydown", (e) => {
      if (!this.data) return;
      const step = 40, W = cv.width, H = cv.height;
      const act = { ArrowLeft: () => this.panBy(step, 0), ArrowRight: () => this.panBy(-step, 0),
        ArrowUp: () => this.panBy(0, step), ArrowDown: () => this.panBy(0, -step),
        "+": () => this.zoomAt(W / 2, H / 2, 0.8), "=": () => this.zoomAt(W / 2, H / 2, 0.8),
        "-": () => this.zoomAt(W / 2, H / 2, 1.25), "0": () => this.resetView() }[e.key];
      if (act) { e.preventDefault(); act(); }
    });
  }
}
window.SxScatter = SxScatter;
