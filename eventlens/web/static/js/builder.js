// The insight builder: a plain "model" of the form <-> the query JSON the API takes, and the
// form itself. The URL holds the query JSON, so fromQuery(toQuery(m)) must give m back.

import { cohortBreakdownField, cohortFilterRow, fromCohortBreakdown, toCohortBreakdown } from "./cohorts.js";
import { clear, field, h, select } from "./dom.js";
import { defaultPaths, fromPathsFilter, pathsFieldset, toPathsQuery } from "./paths.js";

export const KINDS = [
  ["TrendsQuery", "Trends"],
  ["FunnelsQuery", "Funnel"],
  ["RetentionQuery", "Retention"],
  ["StickinessQuery", "Stickiness"],
  ["LifecycleQuery", "Lifecycle"],
  ["PathsQuery", "Paths"],
];
// PostHog's funnel views: steps, the time-to-convert histogram, conversion by entry interval.
const FUNNEL_VIEWS = [["steps", "Steps"], ["time_to_convert", "Time to convert"], ["trends", "Conversion over time"]];
const MATHS = [
  ["total", "Total count"], ["dau", "Unique persons"], ["weekly_active", "Weekly active"],
  ["monthly_active", "Monthly active"], ["first_time_for_user", "First time for person"],
  ["sum", "Sum of property"], ["avg", "Average of property"], ["min", "Min of property"],
  ["max", "Max of property"], ["median", "Median of property"], ["p75", "75th percentile"],
  ["p90", "90th percentile"], ["p95", "95th percentile"], ["p99", "99th percentile"],
  ["avg_count_per_actor", "Average per person"], ["min_count_per_actor", "Min per person"],
  ["max_count_per_actor", "Max per person"], ["median_count_per_actor", "Median per person"],
];
const PROPERTY_MATHS = new Set(["sum", "avg", "min", "max", "median", "p75", "p90", "p95", "p99"]);
export const OPERATORS = [
  ["exact", "equals"], ["is_not", "does not equal"], ["icontains", "contains"],
  ["not_icontains", "does not contain"], ["regex", "matches regex"], ["not_regex", "does not match regex"],
  ["gt", ">"], ["gte", "≥"], ["lt", "<"], ["lte", "≤"], ["is_set", "is set"], ["is_not_set", "is not set"],
  ["is_date_before", "date before"], ["is_date_after", "date after"], ["is_date_exact", "date is"],
];
const NO_VALUE = new Set(["is_set", "is_not_set"]);
const NUMERIC = new Set(["gt", "gte", "lt", "lte"]);
const LISTS = new Set(["exact", "is_not"]);
export const DATE_PRESETS = [
  ["-24h", "Last 24 hours"], ["dStart", "Today"], ["-7d", "Last 7 days"], ["-14d", "Last 14 days"],
  ["-30d", "Last 30 days"], ["-90d", "Last 90 days"], ["mStart", "This month"],
  ["-1mStart", "Since last month"], ["yStart", "This year"], ["all", "All time"], ["custom", "Custom dates"],
];
const INTERVALS = [["hour", "Hour"], ["day", "Day"], ["week", "Week"], ["month", "Month"]];
const PERIOD_CHAR = { Hour: "h", Day: "d", Week: "w", Month: "m" };
// Trends chart types: PostHog's trendsFilter.display values (docs/semantics.md "Displays").
export const DISPLAYS = [
  ["ActionsLineGraph", "Line"], ["ActionsBar", "Bar"], ["ActionsStackedBar", "Stacked bar"],
  ["ActionsAreaGraph", "Area"], ["ActionsLineGraphCumulative", "Cumulative line"],
  ["BoldNumber", "Number"], ["ActionsTable", "Table"], ["ActionsPie", "Pie"], ["ActionsBarValue", "Bar (total)"],
];

/** Retention's date presets, as PostHog's retention date picker offers them: "Last N <periods>"
 * is `-N<h|d|w|m>` in the period's unit. */
export function retentionPresets(period) {
  const c = PERIOD_CHAR[period] || "d";
  const word = `${(period || "Day").toLowerCase()}s`;
  return [...[7, 14, 30, 90].map((n) => [`-${n}${c}`, `Last ${n} ${word}`]), ["yStart", "Year to date"], ["custom", "Custom dates"]];
}

function startOf(d, period) {
  const x = new Date(d);
  if (period !== "Hour") x.setHours(0, 0, 0, 0);
  else x.setMinutes(0, 0, 0);
  if (period === "Month") x.setDate(1);
  return x;
}

function periodIndex(d, period) {
  const x = startOf(d, period);
  if (period === "Month") return x.getFullYear() * 12 + x.getMonth();
  if (period === "Hour") return Math.round(x.getTime() / 36e5);
  // Local calendar days (DST-safe: counted on UTC midnights of the same calendar date).
  const day = Math.round(Date.UTC(x.getFullYear(), x.getMonth(), x.getDate()) / 864e5);
  // Weeks start on Sunday here; only the difference between two indexes is used.
  return period === "Week" ? Math.floor((day + 4) / 7) : day;
}

function resolveDate(value, now) {
  const text = String(value || "");
  let m = /^-(\d+)([hdwmqy])$/.exec(text);
  if (m) {
    const n = Number(m[1]);
    const d = new Date(now);
    if (m[2] === "h") d.setHours(d.getHours() - n);
    else if (m[2] === "d") d.setDate(d.getDate() - n);
    else if (m[2] === "w") d.setDate(d.getDate() - 7 * n);
    else if (m[2] === "m") d.setMonth(d.getMonth() - n);
    else if (m[2] === "q") d.setMonth(d.getMonth() - 3 * n);
    else d.setFullYear(d.getFullYear() - n);
    return d;
  }
  m = /^(-\d+)?([dwmy])Start$/.exec(text);
  if (m) {
    const d = new Date(now);
    const n = m[1] ? -Number(m[1]) : 0;
    d.setHours(0, 0, 0, 0);
    if (m[2] === "d") d.setDate(d.getDate() - n);
    else if (m[2] === "w") d.setDate(d.getDate() - d.getDay() - 7 * n);
    else if (m[2] === "m") d.setMonth(d.getMonth() - n, 1);
    else d.setFullYear(d.getFullYear() - n, 0, 1);
    return d;
  }
  m = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2}))?/.exec(text);
  if (m) return new Date(+m[1], +m[2] - 1, +m[3], +(m[4] || 0), +(m[5] || 0));
  return null;
}

/**
 * How many retention cohorts the date range holds: EventLens's API takes the last
 * `totalIntervals` periods ending with the one holding `date_to` (docs/semantics.md), so the
 * builder sends the range's period count to get one cohort per period of the range, as
 * PostHog's retention UI shows for the same date range. null when the range is open-ended
 * ("all") or not understood.
 */
export function retentionIntervals(dateFrom, dateTo, period, now = new Date()) {
  const from = resolveDate(dateFrom, now);
  const to = dateTo ? resolveDate(dateTo, now) : now;
  if (!from || !to) return null;
  const n = periodIndex(to, period) - periodIndex(from, period) + 1;
  return Math.min(Math.max(n, 1), 1000);
}
const UNITS = ["second", "minute", "hour", "day", "week", "month"];

export function defaultModel() {
  return {
    kind: "TrendsQuery",
    series: [{ event: "$pageview", math: "total", math_property: "", filters: [] }],
    formula: "",
    display: "ActionsLineGraph",
    compare: false,
    filterMatch: "AND",
    // More filter groups after the first (m.filters / m.filterMatch), each with its own AND/OR;
    // the groups are joined by groupsMatch (PostHog's property groups).
    groups: [],
    groupsMatch: "AND",
    exclusions: [],
    interval: "day",
    date_from: "-7d",
    date_to: "",
    filters: [],
    breakdown: { key: "", type: "event", limit: 25 },
    funnel: { window: 14, unit: "day", order: "ordered", view: "steps" },
    retention: { target: "$pageview", returning: "$pageview", period: "Day", total: 8, type: "retention_recurring", curve: false },
    paths: defaultPaths(),
  };
}

function filterValue(f) {
  if (NO_VALUE.has(f.operator)) return undefined;
  const text = f.value.trim();
  if (NUMERIC.has(f.operator) && text !== "" && !Number.isNaN(Number(text))) return Number(text);
  if (LISTS.has(f.operator) && text.includes(",")) return text.split(",").map((v) => v.trim());
  return text;
}

function toFilters(filters) {
  return filters
    .filter((f) => f.key.trim() || (f.type === "cohort" && f.value))
    .map((f) => {
      if (f.type === "cohort") return { key: "id", type: "cohort", operator: f.operator === "not_in" ? "not_in" : "in", value: Number(f.value) };
      const out = { key: f.key.trim(), operator: f.operator, type: f.type };
      const value = filterValue(f);
      if (value !== undefined) out.value = value;
      return out;
    });
}

function fromFilters(list) {
  return (list || [])
    .filter((f) => f && f.key !== undefined)
    .map((f) => ({
      key: f.key,
      type: f.type || "event",
      operator: f.operator || "exact",
      value: Array.isArray(f.value) ? f.value.join(", ") : f.value === undefined || f.value === null ? "" : String(f.value),
    }));
}

/** The query JSON for the form model. */
export function toQuery(m) {
  const q = { kind: m.kind };
  const node = (s) => {
    const n = { kind: "EventsNode", event: s.event };
    const own = toFilters(s.filters || []);
    if (own.length) n.properties = own;
    if (m.kind === "TrendsQuery" && s.math && s.math !== "total") n.math = s.math;
    if (m.kind === "TrendsQuery" && PROPERTY_MATHS.has(s.math)) n.math_property = s.math_property;
    return n;
  };
  if (m.kind === "RetentionQuery") {
    q.retentionFilter = {
      targetEntity: { id: m.retention.target, type: "events" },
      returningEntity: { id: m.retention.returning, type: "events" },
      period: m.retention.period,
      totalIntervals: retentionIntervals(m.date_from, m.date_to, m.retention.period) ?? (Number(m.retention.total) || 8),
      retentionType: m.retention.type,
    };
    // PostHog's retention "display": a presentation field the API accepts and ignores.
    if (m.retention.curve) q.retentionFilter.display = "ActionsLineGraph";
  } else {
    const series = m.kind === "LifecycleQuery" ? m.series.slice(0, 1) : m.series;
    q.series = series.map(node);
  }
  // A funnel is bucketed by time only in its trends view (conversion by entry interval).
  if (m.kind !== "RetentionQuery" && (m.kind !== "FunnelsQuery" || m.funnel.view === "trends")) q.interval = m.interval;
  q.dateRange = { date_from: m.date_from };
  if (m.date_to) q.dateRange.date_to = m.date_to;
  const props = toFilters(m.filters);
  const groups = [{ type: m.filterMatch, values: props }, ...(m.groups || []).map((g) => ({ type: g.match, values: toFilters(g.filters) }))]
    .filter((g) => g.values.length);
  if (groups.length > 1) q.properties = { type: m.groupsMatch === "OR" ? "OR" : "AND", values: groups };
  // "Match any" is PostHog's OR group inside the top-level AND group.
  else if (groups.length && groups[0].type === "OR") q.properties = { type: "AND", values: groups };
  else if (groups.length) q.properties = groups[0].values;
  if ((m.kind === "TrendsQuery" || m.kind === "FunnelsQuery") && m.breakdown.type === "cohort") {
    const bf = toCohortBreakdown(m.breakdown);
    if (bf) q.breakdownFilter = bf;
  } else if ((m.kind === "TrendsQuery" || m.kind === "FunnelsQuery") && m.breakdown.key.trim()) {
    q.breakdownFilter = {
      breakdown: m.breakdown.key.trim(),
      breakdown_type: m.breakdown.type,
      breakdown_limit: Number(m.breakdown.limit) || 25,
    };
  }
  if (m.kind === "TrendsQuery" && m.series.length > 1 && m.formula.trim()) {
    q.trendsFilter = { formula: m.formula.trim() };
  }
  if (m.kind === "TrendsQuery" && m.display && m.display !== "ActionsLineGraph") {
    q.trendsFilter = { ...(q.trendsFilter || {}), display: m.display };
  }
  if ((m.kind === "TrendsQuery" || m.kind === "StickinessQuery") && m.compare && m.date_from !== "all") {
    q.compareFilter = { compare: true };
  }
  if (m.kind === "FunnelsQuery") {
    q.funnelsFilter = {
      funnelWindowInterval: Number(m.funnel.window) || 14,
      funnelWindowIntervalUnit: m.funnel.unit,
      funnelOrderType: m.funnel.order,
    };
    if (m.funnel.view && m.funnel.view !== "steps") q.funnelsFilter.funnelVizType = m.funnel.view;
    const exclusions = (m.exclusions || []).filter((x) => x.event.trim());
    if (exclusions.length && m.funnel.order !== "unordered") {
      q.funnelsFilter.exclusions = exclusions.map((x) => ({ kind: "EventsNode", event: x.event.trim(), funnelFromStep: Number(x.from), funnelToStep: Number(x.to) }));
    }
  }
  if (m.kind === "PathsQuery") return toPathsQuery(q, m.paths);
  return q;
}

/** The form model for a query JSON (unknown parts take defaults). */
export function fromQuery(q) {
  const m = defaultModel();
  if (!q || typeof q !== "object") return m;
  if (KINDS.some(([k]) => k === q.kind)) m.kind = q.kind;
  if (Array.isArray(q.series) && q.series.length) {
    m.series = q.series.map((s) => ({ event: s.event || "", math: s.math || "total", math_property: s.math_property || "", filters: fromFilters(Array.isArray(s.properties) ? s.properties : []) }));
  }
  if (q.interval) m.interval = q.interval;
  if (q.trendsFilter?.formula) m.formula = String(q.trendsFilter.formula);
  if (q.dateRange) {
    m.date_from = q.dateRange.date_from || "-7d";
    m.date_to = q.dateRange.date_to || "";
  }
  const p = q.properties;
  if (p && !Array.isArray(p) && p.type && Array.isArray(p.values) && p.values.length && p.values.every((v) => Array.isArray(v?.values))) {
    // PostHog's groups, as the form makes them: a top-level AND/OR of groups of filters.
    const [first, ...rest] = p.values;
    m.groupsMatch = p.type === "OR" ? "OR" : "AND";
    m.filterMatch = first.type === "OR" ? "OR" : "AND";
    m.filters = fromFilters(first.values);
    m.groups = rest.map((g) => ({ match: g.type === "OR" ? "OR" : "AND", filters: fromFilters(g.values) }));
  } else if (p && !Array.isArray(p) && p.type) {
    m.filterMatch = p.type === "OR" ? "OR" : "AND";
    m.filters = fromFilters(p.values);
  } else m.filters = fromFilters(p);
  if (q.trendsFilter?.display) m.display = String(q.trendsFilter.display);
  if (q.compareFilter?.compare === true) m.compare = true;
  m.exclusions = (q.funnelsFilter?.exclusions || []).map((x) => ({ event: x.event || "", from: x.funnelFromStep ?? 0, to: x.funnelToStep ?? 1 }));
  const b = q.breakdownFilter;
  if (b && b.breakdown_type === "cohort") m.breakdown = fromCohortBreakdown(b);
  else if (b && b.breakdown) m.breakdown = { key: String(b.breakdown), type: b.breakdown_type || "event", limit: b.breakdown_limit || 25 };
  if (q.pathsFilter) m.paths = fromPathsFilter(q.pathsFilter);
  const f = q.funnelsFilter;
  if (f) m.funnel = { window: f.funnelWindowInterval || 14, unit: f.funnelWindowIntervalUnit || "day", order: f.funnelOrderType || "ordered", view: f.funnelVizType || "steps" };
  const r = q.retentionFilter;
  if (r) {
    m.retention = {
      target: r.targetEntity?.id || "$pageview",
      returning: r.returningEntity?.id || "$pageview",
      period: r.period || "Day",
      total: r.totalIntervals || 8,
      type: r.retentionType || "retention_recurring",
      curve: r.display === "ActionsLineGraph",
    };
  }
  return m;
}

/** Switching kind keeps what carries over (events, dates, filters). */
export function switchKind(m, kind) {
  m.kind = kind;
  if (kind === "FunnelsQuery" && m.series.length < 2) {
    m.series.push({ event: m.series[0]?.event === "signup" ? "$pageview" : "signup", math: "total", math_property: "", filters: [] });
  }
  if (kind === "RetentionQuery" && m.series[0]?.event) m.retention.target = m.series[0].event;
  if (kind === "RetentionQuery" && !/^\d{4}-/.test(m.date_from) && !isPreset(m.date_from, retentionPresets(m.retention.period))) {
    // Retention's presets are "Last N <periods>"; an open range ("all") has no cohort count.
    const rel = /^-(\d+)[hdwm]$/.exec(m.date_from);
    m.date_from = `-${rel ? rel[1] : 7}${PERIOD_CHAR[m.retention.period] || "d"}`;
  }
  return m;
}

// -- the form --------------------------------------------------------------------------------

function isPreset(value, presets = DATE_PRESETS) {
  return presets.some(([v]) => v === value && v !== "custom");
}

/**
 * Render the builder for model `m` into `el`. `onChange()` after every edit; the form redraws
 * itself on structural edits (kind, rows added or removed). `catalog` feeds the autocomplete.
 */
export function renderBuilder(el, m, { catalog, timezone, onSubmit, onKind }) {
  const redraw = () => renderBuilder(el, m, { catalog, timezone, onSubmit, onKind });
  clear(el);
  const lists = h(
    "div",
    { hidden: true },
    h("datalist", { id: "dl-events" }, (catalog?.events || []).map((e) => h("option", { value: e.name }))),
    h("datalist", { id: "dl-event-props" }, (catalog?.event_properties || []).map((k) => h("option", { value: k }))),
    h("datalist", { id: "dl-person-props" }, (catalog?.person_properties || []).map((k) => h("option", { value: k }))),
  );
  const form = h("form", { class: "builder", novalidate: true, "aria-label": "Insight query" });
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    onSubmit();
  });
  const bind = (input, set) => {
    input.addEventListener("input", () => set(input.value));
    input.addEventListener("change", () => set(input.value));
    return input;
  };
  const eventInput = (label, value, set) =>
    field(label, bind(h("input", { type: "text", list: "dl-events", value, required: true, autocomplete: "off", spellcheck: "false" }), set));

  // Rows of property filters (the query's, or one series' own), each editable in place.
  const filterRows = (box, list, attrs, badge) => {
    list.forEach((f, i) => {
      if (f.type === "cohort") {
        box.append(cohortFilterRow(f, i, { cohorts: catalog?.cohorts, bind, redraw, attrs: attrs(i), badge: badge(i), remove: () => { list.splice(i, 1); redraw(); } }));
        return;
      }
      const valueInput = bind(h("input", { type: "text", value: f.value, autocomplete: "off", placeholder: LISTS.has(f.operator) ? "value (a, b for several)" : "value" }), (v) => (f.value = v));
      const valueField = field("Value", valueInput);
      valueField.hidden = NO_VALUE.has(f.operator);
      const keyInput = bind(h("input", { type: "text", value: f.key, list: f.type === "person" ? "dl-person-props" : "dl-event-props", autocomplete: "off", spellcheck: "false" }), (v) => (f.key = v));
      box.append(
        h("div", { class: "row filter-row", ...attrs(i) },
          h("span", { class: "badge" }, badge(i)),
          field("Property", keyInput),
          field("Of", bind(select({}, [["event", "event"], ["person", "person"], ["cohort", "cohort"]], f.type), (v) => {
            f.type = v;
            if (v === "cohort") return redraw();
            keyInput.setAttribute("list", v === "person" ? "dl-person-props" : "dl-event-props");
          })),
          field("Operator", bind(select({}, OPERATORS, f.operator), (v) => {
            f.operator = v;
            valueField.hidden = NO_VALUE.has(v);
          })),
          valueField,
          h("button", { type: "button", class: "icon", "aria-label": `Remove ${badge(i).toLowerCase()}`, onclick: () => { list.splice(i, 1); redraw(); } }, "✕"),
        ),
      );
    });
  };

  const kindBar = h("div", { class: "kinds", role: "group", "aria-label": "Insight type" });
  for (const [kind, label] of KINDS) {
    kindBar.append(
      h("button", {
        type: "button",
        class: "kind",
        "aria-pressed": String(m.kind === kind),
        onclick: () => {
          if (m.kind === kind) return;
          switchKind(m, kind);
          redraw();
          if (onKind) onKind(kind);
        },
      }, label),
    );
  }
  form.append(kindBar);

  // Series / steps / retention events.
  if (m.kind === "PathsQuery") {
    form.append(pathsFieldset(m.paths, { bind, redraw }));
  } else if (m.kind === "RetentionQuery") {
    const r = m.retention;
    form.append(
      h("fieldset", null, h("legend", null, "Cohorts"),
        eventInput("Start event", r.target, (v) => (r.target = v)),
        eventInput("Returning event", r.returning, (v) => (r.returning = v)),
        field("Period", bind(select({}, [["Hour", "Hour"], ["Day", "Day"], ["Week", "Week"], ["Month", "Month"]], r.period), (v) => {
          if (v === r.period) return;
          // "Last 30 days" becomes "Last 30 weeks": the presets are in the period's unit.
          const rel = /^-(\d+)[hdwm]$/.exec(m.date_from);
          if (rel) m.date_from = `-${rel[1]}${PERIOD_CHAR[v]}`;
          r.period = v;
          redraw();
        })),
        field("Type", bind(select({}, [["retention_recurring", "Recurring"], ["retention_first_time", "First time"]], r.type), (v) => (r.type = v))),
        field("Show", bind(select({ id: "retention-show" }, [["table", "Table"], ["curve", "Curve and table"]], r.curve ? "curve" : "table"), (v) => (r.curve = v === "curve"))),
      ),
    );
  } else {
    const funnel = m.kind === "FunnelsQuery";
    const max = m.kind === "LifecycleQuery" ? 1 : funnel ? 20 : 26;
    const fs = h("fieldset", null, h("legend", null, funnel ? "Steps" : m.kind === "LifecycleQuery" ? "Event" : "Series"));
    m.series.slice(0, max).forEach((s, i) => {
      const row = h("div", { class: "row series-row", "data-series": i });
      row.append(eventInput(funnel ? `Step ${i + 1}` : `Event ${max > 1 ? String.fromCharCode(65 + i) : ""}`.trim(), s.event, (v) => (s.event = v)));
      if (m.kind === "TrendsQuery") {
        const prop = field("Property", bind(h("input", { type: "text", list: "dl-event-props", value: s.math_property, autocomplete: "off" }), (v) => (s.math_property = v)));
        prop.hidden = !PROPERTY_MATHS.has(s.math);
        const mathSel = bind(select({}, MATHS, s.math), (v) => {
          s.math = v;
          prop.hidden = !PROPERTY_MATHS.has(v);
        });
        row.append(field("Measure", mathSel), prop);
      }
      const minRows = funnel ? 2 : 1;
      const noun = funnel ? "Step" : "Series";
      s.filters = s.filters || [];
      row.append(h("button", { type: "button", class: "secondary small", "aria-label": `Add filter on ${noun.toLowerCase()} #${i + 1}`, onclick: () => { s.filters.push({ key: "", type: "event", operator: "exact", value: "" }); redraw(); } }, "+ filter"));
      if (m.series.length > minRows) {
        row.append(h("button", { type: "button", class: "icon", "aria-label": `Remove ${funnel ? "step" : "series"} ${i + 1}`, onclick: () => { m.series.splice(i, 1); redraw(); } }, "✕"));
      }
      fs.append(row);
      if (s.filters.length) {
        const own = h("div", { class: "series-filters" });
        filterRows(own, s.filters, (k) => ({ "data-series-filter": `${i}-${k}` }), (k) => `${noun} ${i + 1} filter ${k + 1}`);
        fs.append(own);
      }
    });
    if (m.series.length < max) {
      fs.append(h("button", { type: "button", class: "secondary", onclick: () => { m.series.push({ event: "", math: "total", math_property: "", filters: [] }); redraw(); } }, funnel ? "+ Add step" : "+ Add series"));
    }
    if (m.kind === "TrendsQuery" && m.series.length > 1) {
      fs.append(field("Formula (optional, e.g. A/B*100)", bind(h("input", { type: "text", value: m.formula, autocomplete: "off", spellcheck: "false" }), (v) => (m.formula = v))));
    }
    if (funnel) {
      const f = m.funnel;
      fs.append(
        h("div", { class: "row" },
          field("Window", bind(h("input", { type: "number", min: 1, value: f.window }), (v) => (f.window = v))),
          field("Unit", bind(select({}, UNITS, f.unit), (v) => (f.unit = v))),
          field("Order", bind(select({}, [["ordered", "Sequential"], ["strict", "Strict"], ["unordered", "Any order"]], f.order), (v) => { f.order = v; redraw(); })),
          field("View", bind(select({ id: "funnel-view" }, FUNNEL_VIEWS, f.view || "steps"), (v) => { f.view = v; redraw(); })),
        ),
      );
      // Exclusions: PostHog refuses them in an unordered funnel, so does the form.
      if (f.order !== "unordered") {
        const steps = m.series.map((_, k) => [k, `step ${k + 1}`]);
        const ex = h("fieldset", { class: "exclusions" }, h("legend", null, "Exclusions"));
        m.exclusions.forEach((x, k) => {
          ex.append(h("div", { class: "row exclusion-row", "data-exclusion": k },
            eventInput(`Exclusion ${k + 1} event`, x.event, (v) => (x.event = v)),
            field("After", bind(select({}, steps.slice(0, -1), x.from), (v) => (x.from = Number(v)))),
            field("Before", bind(select({}, steps.slice(1), x.to), (v) => (x.to = Number(v)))),
            h("button", { type: "button", class: "icon", "aria-label": `Remove exclusion ${k + 1}`, onclick: () => { m.exclusions.splice(k, 1); redraw(); } }, "✕"),
          ));
        });
        ex.append(h("button", { type: "button", class: "secondary", onclick: () => { m.exclusions.push({ event: "", from: 0, to: m.series.length - 1 }); redraw(); } }, "+ Add exclusion"));
        fs.append(ex);
      }
    }
    form.append(fs);
  }

  // Filters.
  const filters = h("fieldset", null, h("legend", null, "Filters"));
  if (m.filters.length > 1) {
    filters.append(field("Match", bind(select({}, [["AND", "all filters (AND)"], ["OR", "any filter (OR)"]], m.filterMatch), (v) => (m.filterMatch = v))));
  }
  filterRows(filters, m.filters, (i) => ({ "data-filter": i }), (i) => `Filter ${i + 1}`);
  filters.append(h("button", { type: "button", class: "secondary", onclick: () => { m.filters.push({ key: "", type: "event", operator: "exact", value: "" }); redraw(); } }, "+ Add filter"));
  // Further filter groups: each its own AND/OR over its filters, the groups joined by one AND/OR.
  if (m.groups.length) {
    filters.append(field("Join groups", bind(select({}, [["AND", "all groups (AND)"], ["OR", "any group (OR)"]], m.groupsMatch), (v) => (m.groupsMatch = v))));
  }
  m.groups.forEach((g, k) => {
    const n = k + 2;
    const box = h("fieldset", { class: "filter-group", "data-group": k }, h("legend", null, `Filter group ${n}`));
    box.append(field(`Group ${n} match`, bind(select({}, [["AND", "all filters (AND)"], ["OR", "any filter (OR)"]], g.match), (v) => (g.match = v))));
    filterRows(box, g.filters, (i) => ({ "data-group-filter": `${k}-${i}` }), (i) => `Group ${n} filter ${i + 1}`);
    box.append(
      h("button", { type: "button", class: "secondary", onclick: () => { g.filters.push({ key: "", type: "event", operator: "exact", value: "" }); redraw(); } }, `+ Add to group ${n}`),
      h("button", { type: "button", class: "secondary", onclick: () => { m.groups.splice(k, 1); redraw(); } }, `Delete group ${n}`),
    );
    filters.append(box);
  });
  filters.append(h("button", { type: "button", class: "secondary", onclick: () => { m.groups.push({ match: "AND", filters: [{ key: "", type: "event", operator: "exact", value: "" }] }); redraw(); } }, "+ New filter group"));
  form.append(filters);

  // Breakdown.
  if ((m.kind === "TrendsQuery" || m.kind === "FunnelsQuery") && m.breakdown.type === "cohort") {
    form.append(cohortBreakdownField(m.breakdown, { cohorts: catalog?.cohorts, bind, redraw }));
  } else if (m.kind === "TrendsQuery" || m.kind === "FunnelsQuery") {
    const b = m.breakdown;
    const keyInput = bind(h("input", { type: "text", value: b.key, list: b.type === "person" ? "dl-person-props" : "dl-event-props", autocomplete: "off", spellcheck: "false", placeholder: "none" }), (v) => (b.key = v));
    form.append(
      h("fieldset", null, h("legend", null, "Breakdown"),
        h("div", { class: "row" },
          field("By property", keyInput),
          field("Of", bind(select({}, [["event", "event"], ["person", "person"], ["cohort", "cohort"]], b.type), (v) => {
            b.type = v;
            if (v === "cohort") return redraw();
            keyInput.setAttribute("list", v === "person" ? "dl-person-props" : "dl-event-props");
          })),
          field("Top", bind(h("input", { type: "number", min: 1, max: 10000, value: b.limit }), (v) => (b.limit = v)), "narrow"),
        ),
      ),
    );
  }

  // Dates and interval.
  const retention = m.kind === "RetentionQuery";
  const presets = retention ? retentionPresets(m.retention.period) : DATE_PRESETS;
  const custom = !isPreset(m.date_from, presets);
  const fromInput = bind(h("input", { type: "date", value: custom ? m.date_from.slice(0, 10) : "" }), (v) => (m.date_from = v));
  const toInput = bind(h("input", { type: "date", value: m.date_to.slice(0, 10) }), (v) => (m.date_to = v));
  const customBox = h("div", { class: "row" }, field("From", fromInput), field("To", toInput));
  customBox.hidden = !custom;
  const cohortsNote = h("p", { class: "muted cohorts-note", "aria-live": "polite" });
  const showCohorts = () => {
    const n = retentionIntervals(m.date_from, m.date_to, m.retention.period);
    const word = m.retention.period;
    cohortsNote.textContent = n ? `${n} cohort${n === 1 ? "" : "s"}, one per ${word.toLowerCase()} of the range (${word} 0 to ${word} ${n - 1})` : "";
  };
  const preset = bind(select({}, presets, custom ? "custom" : m.date_from), (v) => {
    customBox.hidden = v !== "custom";
    if (v === "custom") {
      m.date_from = fromInput.value || new Date(Date.now() - 7 * 864e5).toISOString().slice(0, 10);
      fromInput.value = m.date_from;
    } else {
      m.date_from = v;
      m.date_to = "";
      toInput.value = "";
    }
    showCohorts();
  });
  for (const input of [fromInput, toInput]) input.addEventListener("change", showCohorts);
  const when = h("fieldset", null, h("legend", null, "When"), h("div", { class: "row" }, field("Date range", preset)));
  if (m.kind !== "RetentionQuery" && m.kind !== "PathsQuery" && (m.kind !== "FunnelsQuery" || m.funnel.view === "trends")) {
    when.querySelector(".row").append(field("Interval", bind(select({}, INTERVALS, m.interval), (v) => (m.interval = v))));
  }
  if (m.kind === "TrendsQuery") {
    when.querySelector(".row").append(field("Chart", bind(select({ id: "chart-type" }, DISPLAYS, m.display), (v) => (m.display = v))));
  }
  if (m.kind === "TrendsQuery" || m.kind === "StickinessQuery") {
    const box = h("input", { type: "checkbox", id: "compare", checked: m.compare });
    box.addEventListener("change", () => (m.compare = box.checked));
    when.append(h("label", { class: "check", for: "compare" }, box, " Compare with the previous period"));
  }
  when.append(customBox);
  if (retention) {
    showCohorts();
    when.append(cohortsNote);
  }
  when.append(h("p", { class: "muted tz-note" }, `Dates and buckets in the project's timezone: ${timezone}`));
  form.append(when);
  form.append(h("div", { class: "actions" }, h("button", { type: "submit", class: "primary", id: "run" }, "Run query")));
  el.append(lists, form);
  return form;
}

/** Mark the builder row an error's field points at (and return it), for a visible cue. */
export function markError(formEl, fieldPath) {
  for (const el of formEl.querySelectorAll(".has-error")) el.classList.remove("has-error");
  if (!fieldPath) return null;
  const f = fieldPath.replace(/^query\./, "");
  let target = null;
  let mm = f.match(/^properties(?:\.values\[0\]\.values)?\[(\d+)\]/);
  if (mm) target = formEl.querySelector(`[data-filter="${mm[1]}"]`);
  // A later group's filter (the first group is values[0] when it has filters).
  mm = f.match(/^properties\.values\[([1-9]\d*)\]\.values\[(\d+)\]/);
  if (mm) target = formEl.querySelector(`[data-group-filter="${Number(mm[1]) - 1}-${mm[2]}"]`) || target;
  mm = f.match(/^series\[(\d+)\]/);
  if (mm) target = formEl.querySelector(`[data-series="${mm[1]}"]`);
  mm = f.match(/^series\[(\d+)\]\.properties\[(\d+)\]/);
  if (mm) target = formEl.querySelector(`[data-series-filter="${mm[1]}-${mm[2]}"]`) || target;
  if (target) target.classList.add("has-error");
  return target;
}

