// Which persons a number of an insight stands for: the InsightActorsQuery selector of a trends
// point, a funnel step (converted or dropped off), a retention cell, a stickiness or lifecycle
// bar. charts.js calls `pick(...)` with one of these; views.js opens the persons modal.

import { breakdownLabel } from "./charts.js";

function seriesOf(row, fallback) {
  return Number.isInteger(row.series_index) ? row.series_index : row.action?.order ?? fallback;
}

function withBreakdown(sel, row) {
  if (row.breakdown_value !== undefined) sel.breakdown = row.breakdown_value;
  if (row.compare_label) sel.compare = row.compare_label;
  return sel;
}

function rowName(row) {
  const base = row.label ?? row.name ?? "series";
  return row.breakdown_value === undefined ? base : `${base} · ${row.breakdown_label ?? breakdownLabel(row.breakdown_value)}`;
}

/** Trends (and stickiness) point `i` of result row `row` (index `r` among the rows). */
export function pointSelection(kind, row, r, i) {
  const day = row.days?.[i];
  const sel = withBreakdown({ series: seriesOf(row, r), day }, row);
  if (kind === "LifecycleQuery") {
    sel.status = row.status;
    sel.series = 0;
  }
  return { selector: sel, title: `${rowName(row)} · ${row.labels?.[i] ?? day}`, count: Math.abs(row.data?.[i] ?? 0) };
}

/** Funnel step `i` (0-based) of a group of steps; `dropped` for the persons who left before it. */
export function funnelSelection(steps, i, dropped) {
  const step = steps[i];
  const sel = { funnelStep: dropped ? -(i + 1) : i + 1 };
  if (step.breakdown_value !== undefined) sel.funnelStepBreakdown = step.breakdown_value;
  const name = step.custom_name || step.name;
  const where = step.breakdown_value === undefined ? "" : ` · ${step.breakdown_label ?? breakdownLabel(step.breakdown_value)}`;
  const count = dropped ? (steps[i - 1]?.count ?? 0) - step.count : step.count;
  return {
    selector: sel,
    title: dropped ? `Dropped off before step ${i + 1} (${name})${where}` : `Step ${i + 1} (${name}) · converted${where}`,
    count,
  };
}

/** Retention cell: cohort row `row`, interval `k`. */
export function retentionSelection(row, k) {
  const sel = { day: row.date, interval: k };
  if (row.breakdown_value !== undefined) sel.breakdown = row.breakdown_value;
  return { selector: sel, title: `Cohort ${row.date} · ${row.values[k]?.label ?? `period ${k}`}`, count: row.values[k]?.count ?? 0 };
}

/** The selection behind cell (r, c) of the numbers table (charts.numbers), or null. */
export function tableSelection(kind, results, r, c) {
  if (kind === "FunnelsQuery") return null; // the bars carry the funnel's persons
  if (kind === "RetentionQuery") return c >= 1 ? retentionSelection(results[r], c - 1) : null;
  const row = results[r];
  if (!row || c < 1 || c > (row.data?.length ?? 0)) return null;
  return pointSelection(kind, row, r, c - 1);
}
