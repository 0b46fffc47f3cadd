// The report site's behaviour, in plain JavaScript (no library to fetch): sortable tables, the
// epoch slider of an experiment's page, and the compare page.
"use strict";

// Sortable tables: a click on a header sorts by that column (numbers by data-v, else the text).
function sortTable(table, column, descending) {
  const body = table.tBodies[0];
  const rows = [...body.rows];
  const key = row => {
    const cell = row.cells[column];
    const v = cell.dataset.v;
    return v !== undefined && v !== "" && !isNaN(+v) ? +v : cell.innerText.trim().toLowerCase();
  };
  rows.sort((a, b) => {
    const x = key(a), y = key(b);
    const order = typeof x === typeof y ? (x < y ? -1 : x > y ? 1 : 0) : (typeof x === "number" ? -1 : 1);
    return descending ? -order : order;
  });
  rows.forEach(row => body.appendChild(row));
  [...table.tHead.rows[0].cells].forEach((th, i) => {
    th.classList.toggle("asc", i === column && !descending);
    th.classList.toggle("desc", i === column && descending);
  });
}
document.querySelectorAll("table.sortable").forEach(table => {
  [...table.tHead.rows[0].cells].forEach((th, i) => th.addEventListener("click", () => {
    const numeric = table.tBodies[0].rows.length && table.tBodies[0].rows[0].cells[i].dataset.v !== undefined;
    // Numbers start best first (descending), text A to Z; a second click reverses.
    const descending = th.classList.contains("desc") || th.classList.contains("asc")
      ? th.classList.contains("asc") : numeric;
    sortTable(table, i, descending);
  }));
});

// A frame strip: all of an experiment's snapshots stacked top to bottom in one PNG, shown one at a
// time through a window of one frame's height.
function showFrame(img, index, height) {
  img.style.marginTop = `${-index * height}px`;
  img.dataset.frame = index;
}

// Play, pause and step buttons driving a range input.
function wireControls(box, range, onChange) {
  let timer = null;
  const play = box.querySelector('[data-act="play"]');
  const stop = () => { clearInterval(timer); timer = null; play.textContent = "▶ play"; };
  const go = value => { range.value = value; onChange(+range.value); };
  play.addEventListener("click", () => {
    if (timer) return stop();
    if (+range.value >= +range.max) go(range.min);
    play.textContent = "⏸ pause";
    timer = setInterval(() => (+range.value >= +range.max ? stop() : go(+range.value + 1)), 350);
  });
  box.querySelector('[data-act="step"]').addEventListener("click", () => { stop(); go(Math.min(+range.max, +range.value + 1)); });
  box.querySelector('[data-act="back"]').addEventListener("click", () => { stop(); go(Math.max(+range.min, +range.value - 1)); });
  range.addEventListener("input", () => { stop(); onChange(+range.value); });
  onChange(+range.value);
}

document.querySelectorAll(".player").forEach(player => {
  const epochs = JSON.parse(player.dataset.epochs), val = JSON.parse(player.dataset.val);
  const img = player.querySelector(".frame img"), label = player.querySelector(".label");
  wireControls(player, player.querySelector("input[type=range]"), i => {
    showFrame(img, i, +player.dataset.height);
    label.textContent = `epoch ${epochs[i]} (snapshot ${i + 1} of ${epochs.length}), validation accuracy ${val[i] === null ? "n/a" : val[i].toFixed(3)}`;
  });
});

// The compare page: the experiments named in ?e=, their frames at one epoch, their curves.
const Compare = {
  colours: ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf"],
  max: 6,

  chosen() {
    const value = new URLSearchParams(location.search).get("e");
    return (value ? value.split(",") : []).filter(k => k in window.SITE_DATA).slice(0, this.max);
  },

  start() {
    const boxes = [...document.querySelectorAll('#picker input[name="e"]')];
    const chosen = this.chosen();
    boxes.forEach(box => {
      box.checked = chosen.includes(box.value);
      box.addEventListener("change", () => {
        let keys = boxes.filter(b => b.checked).map(b => b.value);
        if (keys.length > this.max) { box.checked = false; keys = keys.filter(k => k !== box.value); }
        const url = new URL(location.href);
        if (keys.length) url.searchParams.set("e", keys.join(",")); else url.searchParams.delete("e");
        history.replaceState(null, "", url.search ? `?${url.searchParams.toString().replace(/%2C/g, ",")}` : location.pathname);
        this.draw(keys);
      });
    });
    this.draw(chosen);
  },

  // The last snapshot of an experiment at or before `epoch`.
  frameAt(data, epoch) {
    let index = 0;
    data.epochs.forEach((e, i) => { if (e <= epoch) index = i; });
    return index;
  },

  draw(keys) {
    document.getElementById("count").textContent = keys.length;
    document.getElementById("empty").hidden = keys.length > 0;
    const panels = document.getElementById("panels");
    panels.replaceChildren();
    const data = keys.map(k => window.SITE_DATA[k]);
    const epochs = [...new Set(data.flatMap(d => d.epochs))].sort((a, b) => a - b);
    data.forEach((d, i) => {
      const panel = document.createElement("div");
      panel.className = "panel";
      panel.dataset.key = d.key;
      panel.innerHTML = `<h3><span class="swatch" style="background:${this.colours[i]}"></span><a href="experiments/${d.key}.html">${d.key}</a></h3>
        <div class="frame" style="width:${d.frame_width}px;height:${d.frame_height}px"><img src="${d.frames}" alt="${d.key}" width="${d.frame_width}"></div>
        <div class="score">${d.architecture}<br>test accuracy ${d.test_accuracy.toFixed(3)} (mean over seeds) · ${d.status}</div>`;
      panels.appendChild(panel);
    });
    const range = document.getElementById("epoch"), label = document.getElementById("epoch-label");
    range.max = Math.max(0, epochs.length - 1);
    range.value = range.max;
    this.charts(data, null);
    const box = document.getElementById("compare-controls");
    const fresh = box.cloneNode(true);  // drop the listeners of the previous choice
    box.replaceWith(fresh);
    if (!data.length) return;
    wireControls(fresh, fresh.querySelector("input[type=range]"), i => {
      const epoch = epochs[i];
      fresh.querySelector(".label").textContent = `epoch ${epoch}`;
      data.forEach((d, j) => showFrame(panels.children[j].querySelector("img"), this.frameAt(d, epoch), d.frame_height));
      this.charts(data, epoch);
    });
  },

  // Mean curves over seeds as SVG line charts, one line per experiment, the slider's epoch marked.
  charts(data, epoch) {
    const holder = document.getElementById("charts");
    holder.replaceChildren();
    for (const [name, title] of [["val_accuracy", "validation accuracy"], ["val_loss", "validation loss"], ["loss", "training loss"]]) {
      const series = data.filter(d => d.curves[name]).map((d, i) => ({d, ys: d.curves[name], colour: this.colours[data.indexOf(d)]}));
      if (!series.length) continue;
      holder.appendChild(this.chart(title, series, epoch));
    }
  },

  chart(title, series, epoch) {
    const W = 420, H = 240, L = 48, R = 10, T = 26, B = 30;
    const xs = series.flatMap(s => s.d.curves.epoch), ys = series.flatMap(s => s.ys).filter(v => v !== null);
    const x0 = Math.min(...xs), x1 = Math.max(...xs);
    let y0 = Math.min(...ys), y1 = Math.max(...ys);
    if (y1 === y0) { y1 += 0.5; y0 -= 0.5; }
    const sx = x => L + (x - x0) / (x1 - x0 || 1) * (W - L - R), sy = y => T + (y1 - y) / (y1 - y0) * (H - T - B);
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("width", W); svg.setAttribute("height", H); svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    const add = (tag, attrs, text) => {
      const el = document.createElementNS(ns, tag);
      Object.entries(attrs).forEach(([k, v]) => el.setAttribute(k, v));
      if (text !== undefined) el.textContent = text;
      svg.appendChild(el);
      return el;
    };
    add("text", {x: L, y: 16, "font-size": 13, "font-weight": 600}, `${title} (mean over seeds) vs epoch`);
    add("line", {x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#999"});
    add("line", {x1: L, y1: T, x2: L, y2: H - B, stroke: "#999"});
    for (const v of [y0, (y0 + y1) / 2, y1]) add("text", {x: L - 4, y: sy(v) + 4, "font-size": 11, "text-anchor": "end"}, v.toFixed(2));
    for (const v of [x0, Math.round((x0 + x1) / 2), x1]) add("text", {x: sx(v), y: H - B + 14, "font-size": 11, "text-anchor": "middle"}, v);
    for (const s of series) {
      const points = s.d.curves.epoch.map((e, i) => s.ys[i] === null ? null : `${sx(e).toFixed(1)},${sy(s.ys[i]).toFixed(1)}`).filter(p => p);
      add("polyline", {points: points.join(" "), fill: "none", stroke: s.colour, "stroke-width": 1.6, class: "curve"});
    }
    if (epoch !== null) add("line", {x1: sx(epoch), y1: T, x2: sx(epoch), y2: H - B, stroke: "#333", "stroke-dasharray": "3 3", class: "now"});
    return svg;
  },
};
