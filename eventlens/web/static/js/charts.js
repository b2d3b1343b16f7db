// Result views: trends as uPlot lines, lifecycle and stickiness as SVG bars, funnels as bars
// with conversion and times, retention as a shaded cohort table; each with its numbers table
// (downloadable as CSV).

import uPlot from "/static/vendor/uplot-1.6.32/uPlot.esm.js";
import { clear, fmtDuration, fmtNumber, fmtPercent, h, svg } from "./dom.js";
import { funnelSelection, pointSelection, retentionSelection, tableSelection } from "./drill.js";
import { pathsView } from "./paths.js";

export const PALETTE = [
  "#1d4ed8", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d",
  "#475569", "#ea580c", "#4f46e5", "#0d9488",
];
const NULL_VALUE = "$$_posthog_breakdown_null_$$";
const OTHER_VALUE = "$$_posthog_breakdown_other_$$";

/** A breakdown value in words: the null and "other" buckets get names people can read. */
export function breakdownLabel(value) {
  if (value === NULL_VALUE) return "(not set)";
  if (value === OTHER_VALUE) return "Other values";
  return String(value);
}

function seriesName(s) {
  const base = s.label ?? s.name ?? "series";
  return s.breakdown_value === undefined ? base : `${base} · ${s.breakdown_label ?? breakdownLabel(s.breakdown_value)}`;
}

const LIFECYCLE_COLORS = { new: "#059669", returning: "#1d4ed8", resurrecting: "#d97706", dormant: "#dc2626" };

// -- trends: uPlot lines ---------------------------------------------------------------------

const liveCharts = new Set();
window.addEventListener("resize", () => {
  for (const { chart, wrap, height } of liveCharts) {
    if (!wrap.isConnected) liveCharts.delete(chart);
    else chart.setSize({ width: Math.max(wrap.clientWidth, 200), height });
  }
});

function lineChart(wrap, labels, series, height, onPick) {
  const xs = labels.map((_, i) => i);
  const opts = {
    width: Math.max(wrap.clientWidth, 200),
    height,
    scales: {
      // Half a bucket of room on each side so the first and last labels are not cut.
      x: { time: false, range: (u, min, max) => [min - 0.5, max + 0.5] },
      // Counts read best from zero.
      y: { range: (u, min, max) => [Math.min(0, min), max > 0 ? max * 1.08 : 1] },
    },
    series: [
      { label: "Period", value: (u, v) => (v === null || v === undefined ? "" : labels[v] ?? "") },
      ...series.map((s) => ({
        label: s.name,
        stroke: s.color,
        width: 2,
        points: { show: labels.length <= 40 },
        value: (u, v) => (v === null || v === undefined ? "–" : fmtNumber(v)),
      })),
    ],
    axes: [
      {
        values: (u, splits) => splits.map((i) => (Number.isInteger(i) ? labels[i] ?? "" : "")),
        space: 80,
        incrs: [1, 2, 3, 4, 5, 7, 10, 14, 15, 20, 30, 50, 100, 200, 500, 1000],
      },
      { values: (u, splits) => splits.map((v) => fmtNumber(v)), size: 60 },
    ],
    legend: { live: true },
  };
  const chart = new uPlot(opts, [xs, ...series.map((s) => s.data)], wrap);
  liveCharts.add({ chart, wrap, height });
  if (onPick) pickOnClick(chart, series, onPick);
  return chart;
}

// A click on the plot picks the point under the cursor: its bucket, and the series whose value
// there is nearest to the pointer.
function pickOnClick(chart, series, onPick) {
  chart.over.classList.add("pick");
  chart.over.addEventListener("click", () => {
    const i = chart.cursor.idx;
    if (i === null || i === undefined || !series.length) return;
    const y = chart.posToVal(chart.cursor.top, "y");
    let best = 0;
    series.forEach((s, j) => {
      if (Math.abs((s.data[i] ?? Infinity) - y) < Math.abs((series[best].data[i] ?? Infinity) - y)) best = j;
    });
    onPick(best, i);
  });
}

// -- bars: small SVG chart (grouped or stacked, negatives below zero) ------------------------

function niceStep(span) {
  const raw = span / 5 || 1;
  const p = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 2.5, 5, 10].map((m) => m * p).find((s) => s >= raw);
}

function barChart(wrap, categories, series, { stacked, height, onPick }) {
  const W = 800;
  const H = height;
  const pad = { l: 64, r: 12, t: 12, b: 44 };
  let lo = 0;
  let hi = 0;
  categories.forEach((_, i) => {
    let pos = 0;
    let neg = 0;
    for (const s of series) {
      const v = s.data[i] || 0;
      if (stacked) {
        if (v >= 0) pos += v;
        else neg += v;
      } else {
        pos = Math.max(pos, v);
        neg = Math.min(neg, v);
      }
    }
    hi = Math.max(hi, pos);
    lo = Math.min(lo, neg);
  });
  const step = niceStep(hi - lo);
  hi = Math.ceil(hi / step) * step || step;
  lo = Math.floor(lo / step) * step;
  const y = (v) => pad.t + ((hi - v) / (hi - lo)) * (H - pad.t - pad.b);
  const slot = (W - pad.l - pad.r) / Math.max(categories.length, 1);
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "bars", role: "img" });
  root.append(svg("title", null, "Bar chart (numbers in the table below)"));
  for (let t = lo; t <= hi + step / 2; t += step) {
    root.append(
      svg("line", { x1: pad.l, x2: W - pad.r, y1: y(t), y2: y(t), class: t === 0 ? "zero" : "grid" }),
      svg("text", { x: pad.l - 6, y: y(t) + 4, "text-anchor": "end", class: "tick" }, fmtNumber(t)),
    );
  }
  const every = Math.ceil(categories.length / 12);
  categories.forEach((cat, i) => {
    const x0 = pad.l + i * slot;
    let pos = 0;
    let neg = 0;
    series.forEach((s, j) => {
      const v = s.data[i] || 0;
      let from = 0;
      let to = v;
      let x = x0 + slot * 0.15;
      let w = slot * 0.7;
      if (stacked) {
        from = v >= 0 ? pos : neg;
        to = from + v;
        if (v >= 0) pos = to;
        else neg = to;
      } else {
        w = (slot * 0.8) / series.length;
        x = x0 + slot * 0.1 + j * w;
      }
      const rect = svg("rect", {
        x,
        y: Math.min(y(from), y(to)),
        width: Math.max(w - 1, 1),
        height: Math.abs(y(from) - y(to)),
        fill: s.color,
      });
      rect.append(svg("title", null, `${cat} · ${s.name}: ${fmtNumber(v)}`));
      if (onPick) {
        rect.classList.add("pick");
        rect.dataset.series = String(j);
        rect.dataset.index = String(i);
        rect.addEventListener("click", () => onPick(j, i));
      }
      root.append(rect);
    });
    if (i % every === 0) {
      root.append(
        svg("text", { x: x0 + slot / 2, y: H - pad.b + 16, "text-anchor": "middle", class: "tick" }, cat),
      );
    }
  });
  wrap.append(root, legend(series));
}

function legend(series) {
  return h(
    "ul",
    { class: "legend" },
    series.map((s) => {
      const swatch = h("span", { class: "swatch", "aria-hidden": "true" });
      swatch.style.background = s.color;
      return h("li", null, swatch, s.name);
    }),
  );
}

// -- funnels ---------------------------------------------------------------------------------

function funnelGroups(results) {
  if (results.length && Array.isArray(results[0])) {
    return results.map((steps) => ({ title: steps[0]?.breakdown_label ?? breakdownLabel(steps[0]?.breakdown_value), steps }));
  }
  return [{ title: null, steps: results }];
}

function funnelView(wrap, results, compact, pick) {
  const groups = funnelGroups(results);
  for (const g of groups.slice(0, compact ? 3 : 10)) {
    const box = h("div", { class: "funnel" }, g.title ? h("h4", null, g.title) : null);
    g.steps.forEach((s, i) => {
      const bar = h("div", { class: "fbar" });
      bar.style.width = `${Math.max(s.conversion_from_first * 100, 0.5)}%`;
      if (pick) {
        bar.classList.add("pick");
        bar.setAttribute("role", "button");
        bar.tabIndex = 0;
        bar.setAttribute("aria-label", `Persons at step ${i + 1}`);
        const open = () => pick(funnelSelection(g.steps, i, false));
        bar.addEventListener("click", open);
        bar.addEventListener("keydown", (e) => (e.key === "Enter" || e.key === " ") && (e.preventDefault(), open()));
      }
      const stats = [
        `${fmtNumber(s.count)} persons`,
        `${fmtPercent(s.conversion_from_first)} of step 1`,
      ];
      if (i > 0) {
        stats.push(`${fmtPercent(s.conversion_from_previous)} from previous`);
        stats.push(`median ${fmtDuration(s.median_conversion_time)}`);
      }
      box.append(
        h(
          "div",
          { class: "fstep" },
          h("div", { class: "fname" }, `${i + 1}. ${s.custom_name || s.name}`),
          h("div", { class: "ftrack" }, bar),
          h("div", { class: "fstats" }, stats.join(" · "),
            pick && i > 0 ? h("button", { type: "button", class: "link dropped", onclick: () => pick(funnelSelection(g.steps, i, true)) }, `${fmtNumber(g.steps[i - 1].count - s.count)} dropped off`) : null),
        ),
      );
    });
    wrap.append(box);
  }
  if (groups.length > (compact ? 3 : 10)) {
    wrap.append(h("p", { class: "muted" }, `${groups.length} breakdown values: all in the table below.`));
  }
}

// -- retention -------------------------------------------------------------------------------

function retentionTable(results, pick) {
  const periods = Math.max(0, ...results.map((r) => r.values.length));
  const word = (results[0]?.label || "Period 0").replace(/\s*\d+$/, "");
  const head = h(
    "tr",
    null,
    h("th", { scope: "col" }, "Cohort"),
    h("th", { scope: "col" }, "Persons"),
    Array.from({ length: periods }, (_, k) => h("th", { scope: "col" }, `${word} ${k}`)),
  );
  const rows = results.map((r) => {
    const size = r.values[0]?.count || 0;
    return h(
      "tr",
      null,
      h("th", { scope: "row" }, r.date),
      h("td", { class: "num" }, fmtNumber(size)),
      Array.from({ length: periods }, (_, k) => {
        const cell = r.values[k];
        if (!cell) return h("td", { class: "na" }, "");
        const share = size ? cell.count / size : 0;
        const td = h("td", { class: "num shade", title: `${fmtNumber(cell.count)} persons` }, fmtPercent(share));
        td.style.backgroundColor = `rgba(29, 78, 216, ${(0.08 + share * 0.8).toFixed(3)})`;
        if (share > 0.5) td.classList.add("dark");
        if (pick) {
          td.classList.add("pick");
          td.tabIndex = 0;
          td.addEventListener("click", () => pick(retentionSelection(r, k)));
          td.addEventListener("keydown", (e) => e.key === "Enter" && pick(retentionSelection(r, k)));
        }
        return td;
      }),
    );
  });
  return h("div", { class: "table-scroll" }, h("table", { class: "retention" }, h("thead", null, head), h("tbody", null, rows)));
}

// -- numbers tables --------------------------------------------------------------------------

/** The numbers of a result as {headers, rows} (what the table shows and the CSV holds). */
export function numbers(kind, results) {
  if (kind === "FunnelsQuery") {
    const headers = ["breakdown", "step", "event", "persons", "conversion from first", "conversion from previous", "average time (s)", "median time (s)"];
    const rows = [];
    for (const g of funnelGroups(results)) {
      g.steps.forEach((s, i) =>
        rows.push([g.title ?? "", i + 1, s.custom_name || s.name, s.count, s.conversion_from_first, s.conversion_from_previous, s.average_conversion_time ?? "", s.median_conversion_time ?? ""]),
      );
    }
    return { headers, rows, percent: new Set([4, 5]) };
  }
  if (kind === "RetentionQuery") {
    const periods = Math.max(0, ...results.map((r) => r.values.length));
    const headers = ["cohort", ...Array.from({ length: periods }, (_, k) => `period ${k}`)];
    return { headers, rows: results.map((r) => [r.date, ...r.values.map((v) => v.count)]) };
  }
  const labels = results[0]?.labels || [];
  return {
    headers: ["series", ...labels, "total"],
    rows: results.map((s) => [seriesName(s), ...s.data, s.count]),
  };
}

// A numbers-table cell that opens its persons: the number as a button (same text).
function cellPick(pick, kind, results, r, c, text) {
  const sel = pick ? tableSelection(kind, results, r, c) : null;
  if (!sel) return text;
  return h("button", { type: "button", class: "cell-pick", title: "Show these persons", onclick: () => pick(sel) }, text);
}

function csvCell(v) {
  const t = String(v ?? "");
  return /[",\n\r]/.test(t) ? `"${t.replaceAll('"', '""')}"` : t;
}

export function toCsv({ headers, rows }) {
  return [headers, ...rows].map((r) => r.map(csvCell).join(",")).join("\r\n") + "\r\n";
}

function numbersTable(kind, results, filename, pick) {
  const data = numbers(kind, results);
  const fmt = (v, col) => (typeof v !== "number" ? v : data.percent?.has(col) ? fmtPercent(v) : fmtNumber(v));
  const table = h(
    "table",
    { class: "numbers" },
    h("thead", null, h("tr", null, data.headers.map((c) => h("th", { scope: "col" }, String(c))))),
    h(
      "tbody",
      null,
      data.rows.map((r, ri) => h("tr", null, r.map((v, i) => (i === 0 ? h("th", { scope: "row" }, String(v)) : h("td", { class: "num" }, cellPick(pick, kind, results, ri, i, fmt(v, i))))))),
    ),
  );
  const download = h("button", { type: "button", class: "secondary csv" }, "Download CSV");
  download.addEventListener("click", () => {
    const url = URL.createObjectURL(new Blob([toCsv(data)], { type: "text/csv" }));
    const a = h("a", { href: url, download: filename });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  });
  return h("details", { class: "numbers-box", open: true }, h("summary", null, "Numbers"), download, h("div", { class: "table-scroll" }, table));
}

// -- entry point -----------------------------------------------------------------------------

/** Draw `response` (the query API's answer to `query`) into `el`; `compact` for dashboard tiles. */
export function renderResult(el, query, response, { compact = false, onPersons = null } = {}) {
  clear(el);
  const kind = query.kind;
  const results = response.results || [];
  // `onPersons(selection)`: the persons behind a clicked number (drill.js); off on tiles.
  // A formula's values are no set of persons: nothing to open.
  const pick = compact || query.trendsFilter?.formula ? null : onPersons;
  const pointPick = pick && ((rows) => (j, i) => pick(pointSelection(kind, rows[j], j, i)));
  const chart = h("div", { class: "chart" });
  el.append(chart);
  const height = compact ? 220 : 320;
  if (kind === "TrendsQuery") {
    const labels = results[0]?.labels || [];
    lineChart(chart, labels, results.map((s, i) => ({ name: seriesName(s), data: s.data, color: PALETTE[i % PALETTE.length] })), height, pointPick && pointPick(results));
  } else if (kind === "LifecycleQuery") {
    const series = results.map((s) => ({ name: s.status, data: s.data, color: LIFECYCLE_COLORS[s.status] || "#475569" }));
    barChart(chart, results[0]?.labels || [], series, { stacked: true, height, onPick: pointPick && pointPick(results) });
  } else if (kind === "StickinessQuery") {
    const series = results.map((s, i) => ({ name: seriesName(s), data: s.data, color: PALETTE[i % PALETTE.length] }));
    barChart(chart, results[0]?.labels || [], series, { stacked: false, height, onPick: pointPick && pointPick(results) });
  } else if (kind === "FunnelsQuery") {
    funnelView(chart, results, compact, pick);
  } else if (kind === "RetentionQuery") {
    chart.append(retentionTable(results, pick));
  } else if (kind === "PathsQuery") {
    pathsView(chart, query, response, { compact, onPersons: pick });
    return;
  }
  if (!compact && kind !== "RetentionQuery") {
    el.append(numbersTable(kind, results, `${kind.replace("Query", "").toLowerCase()}.csv`, pick));
  } else if (!compact) {
    const box = numbersTable(kind, results, "retention.csv", pick);
    box.open = false;
    el.append(box);
  }
}
