// Paths: the PathsQuery part of the builder's model and form, and the result drawn as a small
// SVG Sankey (a column per step, node height and edge width proportional to persons, the
// persons whose path ends at a node shown as its drop-off). Clicking a node, an edge or a
// drop-off opens its persons (the selector lives in the query's own pathsFilter keys).

import { field, fmtDuration, fmtNumber, h, svg } from "./dom.js";

export const EVENT_TYPES = [
  ["$pageview", "Page views"],
  ["$screen", "Screen views"],
  ["custom_event", "Custom events"],
];

export function defaultPaths() {
  return {
    types: ["$pageview"],
    start: "",
    end: "",
    stepLimit: 5,
    edgeLimit: 50,
    minEdge: "",
    maxEdge: "",
    exclude: "",
    groupings: "",
    cleaning: [],
  };
}

const splitList = (text) => text.split(",").map((v) => v.trim()).filter(Boolean);

/** Turn the builder's common query parts `q` (kind, dates, filters) into the PathsQuery of `p`. */
export function toPathsQuery(q, p) {
  delete q.series;
  delete q.interval;
  const f = {
    includeEventTypes: p.types.length ? [...p.types] : ["$pageview"],
    stepLimit: Number(p.stepLimit) || 5,
    edgeLimit: Number(p.edgeLimit) || 50,
  };
  if (p.start.trim()) f.startPoint = p.start.trim();
  if (p.end.trim()) f.endPoint = p.end.trim();
  if (String(p.minEdge).trim() !== "") f.minEdgeWeight = Number(p.minEdge);
  if (String(p.maxEdge).trim() !== "") f.maxEdgeWeight = Number(p.maxEdge);
  const exclude = splitList(p.exclude);
  if (exclude.length) f.excludeEvents = exclude;
  const groupings = splitList(p.groupings);
  if (groupings.length) f.pathGroupings = groupings;
  const cleaning = p.cleaning.filter((c) => c.regex.trim());
  if (cleaning.length) {
    f.localPathCleaningFilters = cleaning.map((c) => ({ alias: c.alias, regex: c.regex }));
    f.pathReplacements = true;
  }
  q.pathsFilter = f;
  return q;
}

/** The paths part of the model for a PathsQuery's `pathsFilter` (missing parts take defaults). */
export function fromPathsFilter(f) {
  const p = defaultPaths();
  if (!f || typeof f !== "object") return p;
  if (Array.isArray(f.includeEventTypes) && f.includeEventTypes.length) p.types = f.includeEventTypes.map(String);
  p.start = f.startPoint || "";
  p.end = f.endPoint || "";
  p.stepLimit = f.stepLimit || 5;
  p.edgeLimit = f.edgeLimit || 50;
  p.minEdge = f.minEdgeWeight ?? "";
  p.maxEdge = f.maxEdgeWeight ?? "";
  p.exclude = (f.excludeEvents || []).join(", ");
  p.groupings = (f.pathGroupings || []).join(", ");
  p.cleaning = (f.localPathCleaningFilters || []).map((c) => ({ alias: c.alias || "", regex: c.regex || "" }));
  return p;
}

/** The builder's fieldset of paths controls; `bind(input, set)` wires an input to the model,
 * `redraw()` re-renders the form (rows added or removed). */
export function pathsFieldset(p, { bind, redraw }) {
  const types = h("div", { class: "row", role: "group", "aria-label": "Event types" });
  for (const [value, label] of EVENT_TYPES) {
    const box = h("input", { type: "checkbox", value, checked: p.types.includes(value) });
    box.addEventListener("change", () => {
      p.types = EVENT_TYPES.map(([v]) => v).filter((v) => (v === value ? box.checked : p.types.includes(v)));
    });
    types.append(h("label", { class: "check" }, box, ` ${label}`));
  }
  const text = (label, key, attrs = {}) =>
    field(label, bind(h("input", { type: "text", value: p[key], autocomplete: "off", spellcheck: "false", ...attrs }), (v) => (p[key] = v)));
  const num = (label, key, attrs = {}) =>
    field(label, bind(h("input", { type: "number", value: p[key], ...attrs }), (v) => (p[key] = v)), "narrow");
  const cleaning = h("div", { class: "cleaning" });
  p.cleaning.forEach((c, i) => {
    cleaning.append(
      h("div", { class: "row", "data-cleaning": i },
        field(`Rule ${i + 1} regex`, bind(h("input", { type: "text", value: c.regex, autocomplete: "off", spellcheck: "false", placeholder: "/product/\\d+" }), (v) => (c.regex = v))),
        field("Alias", bind(h("input", { type: "text", value: c.alias, autocomplete: "off", spellcheck: "false", placeholder: "/product/:id" }), (v) => (c.alias = v))),
        h("button", { type: "button", class: "icon", "aria-label": `Remove cleaning rule ${i + 1}`, onclick: () => { p.cleaning.splice(i, 1); redraw(); } }, "✕"),
      ),
    );
  });
  return h(
    "fieldset",
    { class: "paths-controls" },
    h("legend", null, "Paths"),
    types,
    h("div", { class: "row" }, text("Start point", "start", { placeholder: "any", list: "dl-events" }), text("End point", "end", { placeholder: "any", list: "dl-events" })),
    h("div", { class: "row" },
      num("Steps", "stepLimit", { min: 2, max: 20 }),
      num("Max edges", "edgeLimit", { min: 1, max: 1000 }),
      num("Min persons per edge", "minEdge", { min: 0 }),
      num("Max persons per edge", "maxEdge", { min: 0 }),
    ),
    text("Exclude events (a, b)", "exclude"),
    text("Group paths (wildcards, e.g. /product/*)", "groupings"),
    h("p", { class: "muted small" }, "Cleaning rules replace what a regex matches with an alias, before grouping."),
    cleaning,
    h("button", { type: "button", class: "secondary", onclick: () => { p.cleaning.push({ alias: "", regex: "" }); redraw(); } }, "+ Add cleaning rule"),
  );
}

// -- the Sankey ------------------------------------------------------------------------------

/** Node name without its step prefix ("2_/pricing" -> step 2, "/pricing"). */
export function parseNode(key) {
  const m = /^(\d+)_(.*)$/s.exec(String(key));
  return m ? { step: Number(m[1]), name: m[2] } : { step: 1, name: String(key) };
}

/** Nodes and edges of a paths result: per node the persons in, out, its value (the sum of its
 * edges in, or out at step 1: a person reaching it twice by two ways counts twice) and drop-off
 * (persons whose path ends there: the edges' `target_dropoffs`, else in minus out). */
export function pathsGraph(edges) {
  const nodes = new Map();
  const node = (key) => {
    if (!nodes.has(key)) nodes.set(key, { key, ...parseNode(key), in: 0, out: 0, edgesIn: [], edgesOut: [] });
    return nodes.get(key);
  };
  const list = edges.map((e) => ({ ...e, s: node(e.source), t: node(e.target) }));
  for (const e of list) {
    e.s.out += e.value;
    e.s.edgesOut.push(e);
    e.t.in += e.value;
    e.t.edgesIn.push(e);
    // The server's count of persons whose path ends at the target, when it sends it.
    if (Number.isFinite(e.target_dropoffs)) e.t.served = e.target_dropoffs;
  }
  for (const n of nodes.values()) {
    n.value = Math.max(n.in, n.out);
    n.dropoff = n.served ?? (n.in > n.out ? n.in - n.out : 0);
  }
  return { nodes: [...nodes.values()], edges: list };
}

/** What a node shows: a URL's path (with its query), so long origins do not crowd the chart. */
export function shortName(name) {
  if (!/^https?:\/\//.test(name)) return name;
  try {
    const u = new URL(name);
    return `${u.pathname}${u.search}${u.hash}`;
  } catch {
    return name;
  }
}

const NODE_W = 12;
const LABEL_W = 190;
const GAP = 14;

function layout(graph, width) {
  const steps = Math.max(1, ...graph.nodes.map((n) => n.step));
  const cols = Array.from({ length: steps }, () => []);
  for (const n of graph.nodes) cols[n.step - 1].push(n);
  for (const c of cols) c.sort((a, b) => b.value - a.value || a.name.localeCompare(b.name));
  const tallest = Math.max(1, ...cols.map((c) => c.length));
  const height = Math.max(260, Math.min(900, tallest * 44 + 40));
  const biggest = Math.max(1, ...cols.map((c) => c.reduce((s, n) => s + n.value, 0)));
  const k = (height - 30 - GAP * (tallest - 1)) / biggest;
  const pad = 10;
  const colW = steps > 1 ? (width - 2 * pad - NODE_W - LABEL_W) / (steps - 1) : 0;
  cols.forEach((c, i) => {
    let y = 20;
    for (const n of c) {
      n.x = pad + i * colW;
      n.y = y;
      n.h = Math.max(n.value * k, 2);
      y += n.h + GAP;
    }
  });
  for (const e of graph.edges) e.w = Math.max(e.value * k, 1);
  // Edges leave a node stacked in their target's order and enter in their source's order.
  for (const n of graph.nodes) {
    let off = 0;
    for (const e of [...n.edgesOut].sort((a, b) => a.t.y - b.t.y)) {
      e.y0 = n.y + off + e.w / 2;
      off += e.w;
    }
    off = 0;
    for (const e of [...n.edgesIn].sort((a, b) => a.s.y - b.s.y)) {
      e.y1 = n.y + off + e.w / 2;
      off += e.w;
    }
  }
  return { height, k };
}

const clip = (text) => (text.length > 28 ? `${text.slice(0, 27)}…` : text);

/**
 * Draw the paths `response` of `query` into `el`: the Sankey and its numbers table (edges,
 * each count a button opening its persons when `onPersons` is given).
 */
export function pathsView(el, query, response, { compact = false, onPersons = null } = {}) {
  const edges = (response.results || []).filter((e) => e && e.source !== undefined && e.target !== undefined);
  if (!edges.length) {
    el.append(h("p", { class: "muted" }, "No paths in this range (no persons with two or more matching events)."));
    return;
  }
  const graph = pathsGraph(edges);
  const width = 1100;
  const { height, k } = layout(graph, width);
  const withKey = (keys) => ({ ...query, pathsFilter: { ...query.pathsFilter, pathStartKey: null, pathEndKey: null, pathDropoffKey: null, ...keys } });
  const open = onPersons && ((sel) => onPersons({ ...sel, selector: {} }));
  // A node's number sums its edges in (a person who came in by two ways counts twice), so it is
  // no count of persons: the bar opens the persons who reached the node, without claiming that
  // number; edges and drop-offs are counts of persons, and their numbers open exactly those.
  const nodePick = (n) => open && open({ source: withKey({ pathEndKey: n.key }), title: `Reached ${n.name} (step ${n.step})` });
  const dropPick = (n) => open && open({ source: withKey({ pathDropoffKey: n.key }), title: `Dropped off after ${n.name} (step ${n.step})`, count: n.dropoff });
  const edgePick = (e) => open && open({ source: withKey({ pathStartKey: e.source, pathEndKey: e.target }), title: `${e.s.name} → ${e.t.name} (step ${e.s.step} to ${e.t.step})`, count: e.value });
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "sankey", role: "img" });
  root.append(svg("title", null, "Paths (numbers in the table below)"));
  for (const e of graph.edges) {
    const x0 = e.s.x + NODE_W;
    const x1 = e.t.x;
    const xm = (x0 + x1) / 2;
    const path = svg("path", { d: `M${x0},${e.y0} C${xm},${e.y0} ${xm},${e.y1} ${x1},${e.y1}`, class: "edge", "stroke-width": e.w.toFixed(2), "data-source": e.source, "data-target": e.target });
    path.append(svg("title", null, `${e.s.name} → ${e.t.name}: ${fmtNumber(e.value)} persons${e.average_conversion_time == null ? "" : ` · average ${fmtDuration(e.average_conversion_time / 1000)}`}`));
    if (open) path.addEventListener("click", () => edgePick(e));
    root.append(path);
  }
  for (const n of graph.nodes) {
    const g = svg("g", { class: "node", "data-node": n.key });
    const rect = svg("rect", { x: n.x, y: n.y, width: NODE_W, height: n.h, class: "node-bar" });
    rect.append(svg("title", null, `${n.name} (step ${n.step}): ${fmtNumber(n.value)} persons${n.dropoff ? `, ${fmtNumber(n.dropoff)} dropped off` : ""}`));
    if (open) rect.addEventListener("click", () => nodePick(n));
    g.append(rect);
    if (n.dropoff) {
      const dh = Math.max(n.dropoff * k, 2);
      const drop = svg("rect", { x: n.x + NODE_W, y: n.y + n.h - dh, width: 6, height: dh, class: "dropoff", "data-dropoff": n.key });
      drop.append(svg("title", null, `${fmtNumber(n.dropoff)} dropped off after ${n.name}`));
      if (open) drop.addEventListener("click", () => dropPick(n));
      g.append(drop);
    }
    const label = svg("text", { x: n.x + NODE_W + 10, y: n.y + Math.min(n.h / 2, 12) + 4, class: "node-label" }, `${clip(shortName(n.name))} · ${fmtNumber(n.value)}`);
    g.append(label);
    root.append(g);
  }
  el.append(h("div", { class: "sankey-box" }, root));
  if (compact) return;
  const count = (n, pick, cls) => (open && n > 0 ? h("button", { type: "button", class: `cell-pick ${cls}`, onclick: pick }, fmtNumber(n)) : fmtNumber(n));
  const table = h(
    "table",
    { class: "numbers paths-edges" },
    h("thead", null, h("tr", null, ["from", "to", "persons", "average time"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", null, graph.edges.map((e) =>
      h("tr", null,
        h("th", { scope: "row" }, e.source),
        h("td", null, e.target),
        h("td", { class: "num" }, count(e.value, () => edgePick(e), "edge-persons")),
        h("td", { class: "num" }, e.average_conversion_time == null ? "–" : fmtDuration(e.average_conversion_time / 1000)),
      ))),
  );
  const nodes = [...graph.nodes].sort((a, b) => a.step - b.step || b.value - a.value);
  const nodeTable = h(
    "table",
    { class: "numbers paths-nodes" },
    h("thead", null, h("tr", null, ["step", "node", "edges in (persons)", "dropped off"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", null, nodes.map((n) =>
      h("tr", null,
        h("td", { class: "num" }, String(n.step)),
        h("th", { scope: "row" }, n.name),
        h("td", { class: "num" }, fmtNumber(n.value)),
        h("td", { class: "num" }, count(n.dropoff, () => dropPick(n), "dropoff-persons")),
      ))),
  );
  el.append(
    h("details", { class: "numbers-box", open: true }, h("summary", null, "Edges"), h("div", { class: "table-scroll" }, table)),
    h("details", { class: "numbers-box" }, h("summary", null, "Nodes and drop-offs"), h("div", { class: "table-scroll" }, nodeTable)),
  );
}
