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
  const name = s.breakdown_value === undefined ? base : `${base} · ${s.breakdown_label ?? breakdownLabel(s.breakdown_value)}`;
  return s.compare_label === "previous" ? `${name} (previous)` : name;
}

// A compared row takes its current row's colour, lighter, so the pair reads as one series.
function trendColors(results) {
  const seen = { current: 0, previous: 0 };
  return results.map((r) => {
    const previous = r.compare_label === "previous";
    const c = PALETTE[seen[previous ? "previous" : "current"]++ % PALETTE.length];
    return previous ? `${c}88` : c;
  });
}

const LIFECYCLE_COLORS = { new: "#059669", returning: "#1d4ed8", resurrecting: "#d97706", dormant: "#dc2626" };

/** A bucket label for an axis: PostHog's "19-Nov-2026 13:00" shortened to "19 Nov 13:00" (the
 * year is in the table; an axis has little room). Other labels are kept. */
export function axisLabel(label) {
  const m = /^(\d{1,2})-([A-Za-z]{3})-\d{4}(.*)$/.exec(String(label));
  return m ? `${m[1]} ${m[2]}${m[3]}` : String(label);
}

/** Does the query's range end in the future (so its last bucket is still filling)? No
 * `date_to`, or one that is today or later, means the last bucket holds "now". */
export function endsNow(query) {
  const to = query.dateRange?.date_to;
  if (!to) return true;
  const m = /^(\d{4}-\d{2}-\d{2})/.exec(String(to));
  if (!m) return /^(dStart|mStart|yStart|wStart|now)$/.test(String(to)) || /^\+/.test(String(to));
  const today = new Date();
  const iso = `${today.getFullYear()}-${String(today.getMonth() + 1).padStart(2, "0")}-${String(today.getDate()).padStart(2, "0")}`;
  return m[1] >= iso;
}

const INCOMPLETE_DASH = [6, 5];

// -- trends: uPlot lines ---------------------------------------------------------------------

const liveCharts = new Set();
window.addEventListener("resize", () => {
  for (const { chart, wrap, height } of liveCharts) {
    if (!wrap.isConnected) liveCharts.delete(chart);
    else chart.setSize({ width: Math.max(wrap.clientWidth, 200), height });
  }
});

// Integer increments for count axes (a count of 1 must not be split into 0.2 steps).
const INT_INCRS = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6, 2e6, 5e6, 1e7, 1e8, 1e9];

/**
 * Lines for `series` over `labels`. `partial`: the last bucket is still filling, so its
 * segment is dashed (as PostHog draws the incomplete period); `integers`: the values are
 * counts, so the y axis steps by whole numbers. The drawn y ticks are in `data-y-ticks`.
 */
function lineChart(wrap, labels, series, height, { partial = false, integers = false, area = false, onPick = null } = {}) {
  const xs = labels.map((_, i) => i);
  const last = labels.length - 1;
  const dashLast = partial && last >= 1;
  const linear = uPlot.paths.linear();
  // Every segment but the last one solid; the last one is drawn dashed by the draw hook.
  const solidPaths = (u, sidx, i0, i1) => linear(u, sidx, i0, Math.min(i1, last - 1));
  const drawDashed = (u) => {
    const ctx = u.ctx;
    ctx.save();
    ctx.beginPath();
    ctx.rect(u.bbox.left, u.bbox.top, u.bbox.width, u.bbox.height);
    ctx.clip();
    ctx.setLineDash(INCOMPLETE_DASH);
    u.series.forEach((s, i) => {
      if (i === 0 || !s.show || series[i - 1].complete) return;
      const ys = u.data[i];
      if (ys[last - 1] == null || ys[last] == null) return;
      ctx.beginPath();
      ctx.strokeStyle = s._stroke || s.stroke;
      ctx.lineWidth = 2 * devicePixelRatio;
      ctx.moveTo(u.valToPos(last - 1, "x", true), u.valToPos(ys[last - 1], "y", true));
      ctx.lineTo(u.valToPos(last, "x", true), u.valToPos(ys[last], "y", true));
      ctx.stroke();
    });
    ctx.setLineDash([]);
    ctx.restore();
  };
  const opts = {
    width: Math.max(wrap.clientWidth, 200),
    height,
    scales: {
      // Half a bucket of room on each side so the first and last labels are not cut.
      x: { time: false, range: (u, min, max) => [min - 0.5, max + 0.5] },
      // Counts read best from zero.
      y: { range: (u, min, max) => [Math.min(0, min), max > 0 ? (integers ? Math.max(max * 1.08, 1) : max * 1.08) : 1] },
    },
    series: [
      { label: "Period", value: (u, v) => (v === null || v === undefined ? "" : labels[v] ?? "") },
      ...series.map((s) => ({
        label: s.name,
        stroke: s.color,
        width: 2,
        points: { show: labels.length <= 40 },
        paths: dashLast && !s.complete ? solidPaths : undefined,
        fill: area ? `${s.color}33` : undefined,
        value: (u, v) => (v === null || v === undefined ? "–" : fmtNumber(v)),
      })),
    ],
    axes: [
      {
        values: (u, splits) => splits.map((i) => (Number.isInteger(i) ? axisLabel(labels[i] ?? "") : "")),
        space: 80,
        incrs: [1, 2, 3, 4, 5, 7, 10, 14, 15, 20, 30, 50, 100, 200, 500, 1000],
      },
      {
        values: (u, splits) => {
          wrap.dataset.yTicks = splits.join(",");
          return splits.map((v) => fmtNumber(v));
        },
        size: 60,
        incrs: integers ? INT_INCRS : undefined,
      },
    ],
    legend: { live: true },
    hooks: dashLast ? { draw: [drawDashed] } : {},
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

function niceStep(span, integers) {
  const raw = span / 5 || 1;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * p).find((s) => s >= raw);
  return integers ? Math.max(1, Math.round(step)) : step;
}

const liveBars = new Set();
window.addEventListener("resize", () => {
  for (const entry of liveBars) {
    if (!entry.wrap.isConnected) liveBars.delete(entry);
    else entry.draw();
  }
});

// Bars are drawn at the wrap's real pixel width (not a scaled viewBox), so the 12 px labels
// stay 12 px on a narrow dashboard tile; a label is kept only where it has room.
function barChart(wrap, categories, series, opts) {
  const box = h("div", { class: "bars-box" });
  wrap.append(box, legend(series));
  const draw = () => clear(box).append(barSvg(Math.max(box.clientWidth || wrap.clientWidth, 280), categories, series, opts));
  draw();
  liveBars.add({ wrap, draw });
}

const TICK_CHAR_PX = 7; // 12 px system-ui digits and letters are about 6.5 px wide

function barSvg(W, categories, series, { stacked, height, integers = true, onPick = null }) {
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
  const step = niceStep(hi - lo, integers);
  hi = Math.ceil(hi / step) * step || step;
  lo = Math.floor(lo / step) * step;
  const y = (v) => pad.t + ((hi - v) / (hi - lo)) * (H - pad.t - pad.b);
  const slot = (W - pad.l - pad.r) / Math.max(categories.length, 1);
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, class: "bars", role: "img" });
  root.append(svg("title", null, "Bar chart (numbers in the table below)"));
  for (let t = lo; t <= hi + step / 2; t += step) {
    root.append(
      svg("line", { x1: pad.l, x2: W - pad.r, y1: y(t), y2: y(t), class: t === 0 ? "zero" : "grid" }),
      svg("text", { x: pad.l - 6, y: y(t) + 4, "text-anchor": "end", class: "tick" }, fmtNumber(t)),
    );
  }
  const names = categories.map(axisLabel);
  const widest = Math.max(1, ...names.map((n) => n.length)) * TICK_CHAR_PX + 12;
  const every = Math.max(1, Math.ceil(widest / slot));
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
        svg("text", { x: x0 + slot / 2, y: H - pad.b + 16, "text-anchor": "middle", class: "tick xtick" }, names[i]),
      );
    }
  });
  return root;
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
        stats.push(`average ${fmtDuration(s.average_conversion_time)}`);
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

/** A cohort's start ("2026-11-26T00:00:00-05:00") as "Thu 26 Nov" (with the hour for hourly
 * cohorts); the date is already in the project's timezone, so it is read as written. */
export function cohortLabel(iso, period) {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2}))?/.exec(String(iso));
  if (!m) return String(iso);
  const d = new Date(Date.UTC(+m[1], +m[2] - 1, +m[3]));
  const opts = { timeZone: "UTC", day: "numeric", month: "short" };
  if (period === "Month") Object.assign(opts, { day: undefined, year: "numeric" });
  else if (period !== "Hour") opts.weekday = "short";
  const text = new Intl.DateTimeFormat("en-GB", opts).format(d);
  return period === "Hour" ? `${text} ${m[4]}:${m[5]}` : text;
}

function retentionTable(results, period, ongoing = false, pick = null) {
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
      h("th", { scope: "row", title: r.date }, cohortLabel(r.date, period)),
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
  return h("div", { class: "table-scroll" }, h("table", { class: "retention" }, h("thead", null, head), h("tbody", null, rows, meanRow(results, periods, ongoing))));
}

// The mean of each period's share over the cohorts that reached it (cohorts of size 0 left
// out so they do not pull it down), as PostHog's retention table shows under the cohorts.
// `ongoing`: the range ends now, so each row's last cell is the period still filling; PostHog
// leaves such cells out of the mean, and so does this.
export function retentionMeans(results, ongoing = false) {
  const periods = Math.max(0, ...results.map((r) => r.values.length));
  return Array.from({ length: periods }, (_, k) => {
    const reached = (r) => r.values[k] && (!ongoing || k < r.values.length - 1 || k === 0);
    const shares = results.filter((r) => reached(r) && r.values[0]?.count > 0).map((r) => r.values[k].count / r.values[0].count);
    return shares.length ? shares.reduce((a, b) => a + b, 0) / shares.length : null;
  });
}

function meanRow(results, periods, ongoing) {
  const means = retentionMeans(results, ongoing);
  const total = results.reduce((a, r) => a + (r.values[0]?.count || 0), 0);
  return h("tr", { class: "mean" },
    h("th", { scope: "row" }, "Mean"),
    h("td", { class: "num" }, fmtNumber(total)),
    Array.from({ length: periods }, (_, k) => h("td", { class: "num" }, means[k] === null ? "" : fmtPercent(means[k]))));
}

// -- numbers tables --------------------------------------------------------------------------

/** The numbers of a result as {headers, rows} (what the table shows and the CSV holds). */
export function numbers(kind, results) {
  if (kind === "FunnelsQuery") {
    // Seconds in the CSV (a number a spreadsheet can use), durations in words on the page.
    const headers = ["breakdown", "step", "event", "persons", "conversion from first", "conversion from previous", "average time (s)", "median time (s)"];
    const rows = [];
    for (const g of funnelGroups(results)) {
      g.steps.forEach((s, i) =>
        rows.push([g.title ?? "", i + 1, s.custom_name || s.name, s.count, s.conversion_from_first, s.conversion_from_previous, s.average_conversion_time ?? "", s.median_conversion_time ?? ""]),
      );
    }
    const shown = [...headers.slice(0, 4), "from first", "from previous", "average time", "median time"];
    return { headers, shown, rows, percent: new Set([4, 5]), duration: new Set([6, 7]) };
  }
  if (kind === "RetentionQuery") {
    const periods = Math.max(0, ...results.map((r) => r.values.length));
    const headers = ["cohort", ...Array.from({ length: periods }, (_, k) => `period ${k}`)];
    return { headers, rows: results.map((r) => [r.date, ...r.values.map((v) => v.count)]) };
  }
  if (results.length && results.every((r) => r.aggregated_value !== undefined)) {
    return { headers: ["series", "value"], rows: results.map((s) => [seriesName(s), s.aggregated_value]) };
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
  const fmt = (v, col) => (typeof v !== "number" ? v : data.percent?.has(col) ? fmtPercent(v) : data.duration?.has(col) ? fmtDuration(v) : fmtNumber(v));
  const table = h(
    "table",
    { class: "numbers" },
    h("thead", null, h("tr", null, (data.shown || data.headers).map((c) => h("th", { scope: "col" }, String(c))))),
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

// -- trends' "total value" displays (one aggregated_value per row) ------------------------------

function boldNumber(wrap, rows, colors) {
  wrap.append(h("div", { class: "bold-numbers" }, rows.map((r, i) => {
    const box = h("div", { class: "bold-number" }, h("div", { class: "big" }, fmtNumber(r.aggregated_value)), h("div", { class: "muted" }, seriesName(r)));
    box.firstChild.style.color = colors[i];
    return box;
  })));
}

function valueBars(wrap, rows, colors) {
  const max = Math.max(1e-9, ...rows.map((r) => Math.abs(r.aggregated_value || 0)));
  wrap.append(h("div", { class: "value-bars" }, rows.map((r, i) => {
    const bar = h("div", { class: "fbar" });
    bar.style.width = `${Math.max((Math.abs(r.aggregated_value || 0) / max) * 100, 0.5)}%`;
    bar.style.background = colors[i];
    return h("div", { class: "fstep" }, h("div", { class: "fname" }, seriesName(r)), h("div", { class: "ftrack" }, bar), h("div", { class: "fstats" }, fmtNumber(r.aggregated_value)));
  })));
}

function pieChart(wrap, rows, colors) {
  const total = rows.reduce((a, r) => a + Math.max(r.aggregated_value || 0, 0), 0);
  const R = 100;
  const root = svg("svg", { viewBox: "-110 -110 220 220", class: "pie", role: "img" });
  root.append(svg("title", null, "Pie chart (numbers in the table below)"));
  let angle = -Math.PI / 2;
  rows.forEach((r, i) => {
    const share = total ? Math.max(r.aggregated_value || 0, 0) / total : 0;
    if (share <= 0) return;
    const next = angle + share * 2 * Math.PI;
    const large = share > 0.5 ? 1 : 0;
    const [x0, y0, x1, y1] = [R * Math.cos(angle), R * Math.sin(angle), R * Math.cos(next), R * Math.sin(next)];
    const d = share >= 0.9999 ? `M ${-R} 0 A ${R} ${R} 0 1 1 ${R} 0 A ${R} ${R} 0 1 1 ${-R} 0 Z` : `M 0 0 L ${x0} ${y0} A ${R} ${R} 0 ${large} 1 ${x1} ${y1} Z`;
    const slice = svg("path", { d, fill: colors[i] });
    slice.append(svg("title", null, `${seriesName(r)}: ${fmtNumber(r.aggregated_value)} (${fmtPercent(share)})`));
    root.append(slice);
    angle = next;
  });
  wrap.append(h("div", { class: "pie-box" }, root), legend(rows.map((r, i) => ({ name: `${seriesName(r)}: ${fmtNumber(r.aggregated_value)}`, color: colors[i] }))));
}

// Maths whose values are whole counts (the y axis then steps by integers).
const COUNT_MATHS = new Set([undefined, null, "total", "dau", "weekly_active", "monthly_active", "unique_session", "first_time_for_user", "min_count_per_actor", "max_count_per_actor"]);

/** Are all of a trends query's values counts (whole numbers)? */
export function countsOnly(query) {
  if (query.trendsFilter?.formula) return false;
  return (query.series || []).every((s) => COUNT_MATHS.has(s.math));
}

/** The stickiness buckets up to the last one anybody reached: "active 31 days" columns of
 * zeros after the data stop say nothing (the numbers table keeps them all). */
export function trimStickiness(labels, series) {
  let end = 0;
  for (const s of series) s.data.forEach((v, i) => { if (v) end = Math.max(end, i + 1); });
  end = Math.max(end, 1);
  return { labels: labels.slice(0, end), series: series.map((s) => ({ ...s, data: s.data.slice(0, end) })) };
}

function intervalWord(query) {
  return { hour: "hour", day: "day", week: "week", month: "month" }[query.interval || "day"] || "period";
}

/** Draw `response` (the query API's answer to `query`) into `el`; `compact` for dashboard tiles. */
function funnelViz(query) {
  return query.funnelsFilter?.funnelVizType || "steps";
}

export function renderResult(el, query, response, { compact = false, tall = false, onPersons = null } = {}) {
  clear(el);
  const kind = query.kind;
  const results = response.results || [];
  // `onPersons(selection)`: the persons behind a clicked number (drill.js); off on tiles.
  // A formula's values are no set of persons: nothing to open.
  const pick = compact || query.trendsFilter?.formula ? null : onPersons;
  const pointPick = pick && ((rows) => (j, i) => pick(pointSelection(kind, rows[j], j, i)));
  const chart = h("div", { class: compact ? "chart compact" : "chart" });
  el.append(chart);
  const height = compact ? (tall ? 420 : 220) : 320;
  const display = query.trendsFilter?.display || "ActionsLineGraph";
  if (kind === "TrendsQuery" && results.length && results.every((r) => r.aggregated_value !== undefined)) {
    const colors = trendColors(results);
    if (display === "BoldNumber") boldNumber(chart, results, colors);
    else if (display === "ActionsPie") pieChart(chart, results, colors);
    else if (display === "ActionsTable") chart.classList.add("table-only");
    else valueBars(chart, results, colors);
  } else if (kind === "TrendsQuery") {
    const labels = results[0]?.labels || [];
    const colors = trendColors(results);
    // A compared (previous) period has ended: only the current rows have an incomplete bucket.
    const series = results.map((s, i) => ({ name: seriesName(s), data: s.data, color: colors[i], complete: s.compare_label === "previous" }));
    const bars = ["ActionsBar", "ActionsUnstackedBar", "ActionsStackedBar"].includes(display);
    const partial = endsNow(query) && labels.length > 1 && !bars;
    const onPick = pointPick && pointPick(results);
    if (bars) barChart(chart, labels, series, { stacked: display === "ActionsStackedBar", height, integers: countsOnly(query), onPick });
    else lineChart(chart, labels, series, height, { partial, integers: countsOnly(query), area: display === "ActionsAreaGraph", onPick });
    if (partial) el.append(h("p", { class: "chart-note muted" }, `The last ${intervalWord(query)} is incomplete (dashed): it is still filling.`));
  } else if (kind === "LifecycleQuery") {
    const series = results.map((s) => ({ name: s.status, data: s.data, color: LIFECYCLE_COLORS[s.status] || "#475569" }));
    barChart(chart, results[0]?.labels || [], series, { stacked: true, height, onPick: pointPick && pointPick(results) });
  } else if (kind === "StickinessQuery") {
    const series = results.map((s, i) => ({ name: seriesName(s), data: s.data, color: PALETTE[i % PALETTE.length] }));
    const trimmed = trimStickiness(results[0]?.labels || [], series);
    barChart(chart, trimmed.labels, trimmed.series, { stacked: false, height, onPick: pointPick && pointPick(results) });
  } else if (kind === "FunnelsQuery" && funnelViz(query) === "time_to_convert") {
    // Bins of persons by the time they took (PostHog's histogram); no per-bin persons yet.
    const bins = response.results?.bins || [];
    barChart(chart, bins.map(([start]) => fmtDuration(start)), [{ name: "Persons", data: bins.map(([, n]) => n), color: PALETTE[0] }], { stacked: false, height });
    const avg = response.results?.average_conversion_time;
    el.append(h("p", { class: "chart-note muted" }, avg === null || avg === undefined ? "Nobody converted." : `Average time to convert: ${fmtDuration(avg)}`));
    return;
  } else if (kind === "FunnelsQuery" && funnelViz(query) === "trends") {
    const row = results[0] || {};
    lineChart(chart, row.labels || [], [{ name: "Conversion rate (%)", data: row.data || [], color: PALETTE[0] }], height);
    return;
  } else if (kind === "FunnelsQuery") {
    funnelView(chart, results, compact, pick);
  } else if (kind === "RetentionQuery") {
    const period = query.retentionFilter?.period || "Day";
    if (query.retentionFilter?.display === "ActionsLineGraph") {
      // The curve: the mean share of a cohort still coming back k periods later.
      const means = retentionMeans(results, endsNow(query));
      const curve = h("div", { class: "retention-curve" });
      chart.append(curve);
      lineChart(curve, means.map((_, k) => `${period} ${k}`), [{ name: "Mean retention (%)", data: means.map((v) => (v === null ? null : Math.round(v * 1000) / 10)), color: PALETTE[0] }], height);
    }
    chart.append(retentionTable(results, period, endsNow(query), pick));
  } else if (kind === "PathsQuery") {
    pathsView(chart, query, response, { compact, onPersons: pick });
    return;
  }
  if (compact && display === "ActionsTable" && kind === "TrendsQuery") {
    el.append(numbersTable(kind, results, "trends.csv"));
  } else if (!compact && kind !== "RetentionQuery") {
    el.append(numbersTable(kind, results, `${kind.replace("Query", "").toLowerCase()}.csv`, pick));
  } else if (!compact) {
    const box = numbersTable(kind, results, "retention.csv", pick);
    box.open = false;
    el.append(box);
  }
}
