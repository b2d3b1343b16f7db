// Cohorts: the list, one cohort (its persons; a static one takes a CSV of distinct ids), the
// editor of a dynamic cohort (person property conditions and "did / did not do X at least N
// times in the last D days", in AND/OR groups), and the builder's cohort filter and breakdown.

import { api, apiText, describeError } from "./api.js";
import { append, clear, field, fmtNumber, h, select } from "./dom.js";
import { pagedPersons } from "./persons.js";

const OPERATORS_SHORT = { exact: "=", is_not: "≠", icontains: "contains", not_icontains: "does not contain", regex: "matches", gt: ">", gte: "≥", lt: "<", lte: "≤", is_set: "is set", is_not_set: "is not set" };

function conditionJson(c) {
  if (c.kind === "person") {
    const out = { type: "person", key: c.key.trim(), operator: c.operator };
    if (c.operator !== "is_set" && c.operator !== "is_not_set") {
      const text = String(c.value).trim();
      out.value = ["gt", "gte", "lt", "lte"].includes(c.operator) && text !== "" && !Number.isNaN(Number(text)) ? Number(text) : text;
    }
    return out;
  }
  const base = { type: "behavioral", key: c.event.trim(), event_type: "events", time_value: Number(c.days), time_interval: c.interval };
  if (c.did === "did_not") return { ...base, value: "performed_event", negation: true };
  return { ...base, value: "performed_event_multiple", operator: c.operator, operator_value: Number(c.times), negation: false };
}

/** The POST /cohorts body of the dynamic-cohort editor's model. */
export function cohortJson(m) {
  return {
    name: m.name.trim(),
    description: m.description.trim(),
    is_static: false,
    filters: { properties: { type: m.type, values: m.groups.map((g) => ({ type: g.type, values: g.values.map(conditionJson) })) } },
  };
}

// -- in the builder --------------------------------------------------------------------------

// The list listCohorts read last (the current project's: every page reads it afresh): the
// builder's pickers use it when the form was drawn before the catalog arrived.
let lastList = null;

function cohortOptions(cohorts) {
  return (cohorts || []).map((c) => [String(c.id), `${c.name} (#${c.id})`]);
}

/** A filter row `{type: "cohort", operator: in|not_in, value: <cohort id>}` of the builder. */
export function cohortFilterRow(f, i, { cohorts = lastList, bind, remove, redraw, attrs = { "data-filter": i }, badge = `Filter ${i + 1}` }) {
  if (f.operator !== "in" && f.operator !== "not_in") f.operator = "in";
  const options = cohortOptions(cohorts);
  if (!options.some(([id]) => id === String(f.value))) f.value = options[0]?.[0] ?? (Number(f.value) > 0 ? String(f.value) : "");
  if (f.value && !options.some(([id]) => id === String(f.value))) options.push([String(f.value), `Cohort #${f.value}`]);
  const back = (v) => {
    f.type = v;
    f.operator = "exact";
    f.key = "";
    f.value = "";
    redraw();
  };
  return h(
    "div",
    { class: "row filter-row", ...attrs },
    h("span", { class: "badge" }, badge),
    field("Of", bind(select({}, [["event", "event"], ["person", "person"], ["cohort", "cohort"]], "cohort"), (v) => v !== "cohort" && back(v))),
    field("Person", bind(select({}, [["in", "is in"], ["not_in", "is not in"]], f.operator), (v) => (f.operator = v))),
    options.length
      ? field("Cohort", bind(select({}, options, f.value), (v) => (f.value = v)))
      : h("p", { class: "muted" }, "No cohorts yet: make one on the Cohorts page."),
    h("button", { type: "button", class: "icon", "aria-label": `Remove ${badge.toLowerCase()}`, onclick: remove }, "✕"),
  );
}

/** The breakdown model for a `breakdown_type: cohort` filter. */
export function fromCohortBreakdown(b) {
  const ids = (Array.isArray(b.breakdown) ? b.breakdown : [b.breakdown]).filter((v) => v !== null && v !== undefined && v !== "");
  return { key: "", type: "cohort", limit: b.breakdown_limit || 25, cohorts: ids.map(Number) };
}

/** The breakdownFilter of a cohort breakdown model, or null when no cohort is picked. */
export function toCohortBreakdown(b) {
  const ids = b.cohorts || [];
  return ids.length ? { breakdown_type: "cohort", breakdown: [...ids] } : null;
}

/** The breakdown fieldset when breaking down by cohorts: a checkbox per cohort ("All users" is 0). */
export function cohortBreakdownField(b, { cohorts = lastList, bind, redraw }) {
  if (!Array.isArray(b.cohorts)) b.cohorts = [];
  const boxes = h("div", { class: "row cohort-picks", role: "group", "aria-label": "Cohorts" });
  for (const [id, label] of [[0, "All users"], ...(cohorts || []).map((c) => [c.id, c.name])]) {
    const box = h("input", { type: "checkbox", value: id, checked: b.cohorts.includes(Number(id)) });
    box.addEventListener("change", () => {
      b.cohorts = b.cohorts.filter((x) => x !== Number(id));
      if (box.checked) b.cohorts.push(Number(id));
    });
    boxes.append(h("label", { class: "check" }, box, ` ${label}`));
  }
  return h(
    "fieldset",
    null,
    h("legend", null, "Breakdown"),
    h("div", { class: "row" }, field("Of", bind(select({}, [["event", "event"], ["person", "person"], ["cohort", "cohort"]], "cohort"), (v) => {
      if (v === "cohort") return;
      b.type = v;
      redraw();
    }))),
    boxes,
  );
}

/** A cohort breakdown value (a cohort id) in words: the cohort's name. */
export function cohortLabel(value, cohorts) {
  if (Number(value) === 0) return "All users";
  return (cohorts || []).find((c) => String(c.id) === String(value))?.name ?? `Cohort #${value}`;
}

// -- pages -----------------------------------------------------------------------------------

function errorBox(err) {
  return h("div", { class: "error", role: "alert" }, describeError(err));
}

export async function cohortsPage(main, { project, onAuthError, canSave = true }) {
  const tbody = h("tbody");
  clear(main).append(
    h("div", { class: "title-row" },
      h("h1", null, "Cohorts"),
      canSave ? h("div", { class: "row" },
        h("a", { class: "button primary", href: `#/p/${project.id}/cohorts/new`, id: "new-cohort" }, "New cohort"),
        h("a", { class: "button secondary", href: `#/p/${project.id}/cohorts/new?static=1`, id: "new-static-cohort" }, "Upload a CSV")) : null),
    h("section", { class: "card table-scroll" },
      h("table", { class: "grid-table cohorts" },
        h("thead", null, h("tr", null, ["Name", "Type", "Persons", "Description"].map((c) => h("th", { scope: "col" }, c)))),
        tbody,
      ),
    ),
  );
  try {
    const res = await api("GET", `/api/projects/${project.id}/cohorts`);
    const list = Array.isArray(res) ? res : res.results || [];
    if (!list.length) tbody.append(h("tr", null, h("td", { colspan: 4, class: "muted" }, "No cohorts yet.")));
    for (const c of list) {
      tbody.append(
        h("tr", { "data-cohort": c.id },
          h("th", { scope: "row" }, h("a", { href: `#/p/${project.id}/cohorts/${c.id}` }, c.name)),
          h("td", null, c.is_static ? "static" : "dynamic"),
          h("td", { class: "num" }, fmtNumber(c.count)),
          h("td", null, c.description || ""),
        ),
      );
    }
  } catch (err) {
    if (err.status === 401) return onAuthError(err);
    main.append(errorBox(err));
  }
}

/** The cohorts of a project (for the builder's pickers); [] when they cannot be read. */
export async function listCohorts(projectId) {
  try {
    const res = await api("GET", `/api/projects/${projectId}/cohorts`);
    lastList = Array.isArray(res) ? res : res.results || [];
  } catch {
    lastList = [];
  }
  return lastList;
}

// What the upload on the "new static cohort" page said, shown on the cohort's page it opens.
const NOTE = "eventlens.uploadNote";

function uploadNote(res) {
  const unknown = res.unknown ? `; ${fmtNumber(res.unknown)} unknown distinct id${res.unknown === 1 ? "" : "s"} (e.g. ${(res.sample_unknown || []).slice(0, 3).join(", ")})` : "; no unknown distinct ids";
  return `Added ${fmtNumber(res.added)} person${res.added === 1 ? "" : "s"}${unknown}.`;
}

function uploadForm(project, cohortId, onDone, onAuthError) {
  const file = h("input", { type: "file", id: "cohort-csv", accept: ".csv,text/csv,text/plain" });
  const status = h("p", { class: "status-text upload-status", role: "status" });
  const button = h("button", { type: "submit", class: "secondary" }, "Upload");
  const form = h("form", { class: "row", "aria-label": "Upload distinct ids" }, field("CSV of distinct ids (one a line, optional header distinct_id)", file), button, status);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!file.files.length) {
      status.textContent = "Pick a CSV file first.";
      return;
    }
    button.disabled = true;
    try {
      const text = await file.files[0].text();
      const res = await apiText("POST", `/api/projects/${project.id}/cohorts/${cohortId}/upload`, text, "text/csv");
      status.textContent = uploadNote(res);
      onDone?.(res);
    } catch (err) {
      if (err.status === 401) return onAuthError(err);
      status.textContent = describeError(err);
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

function describeCondition(c) {
  if (c.type === "person") return `person ${c.key} ${OPERATORS_SHORT[c.operator] || c.operator} ${c.value ?? ""}`.trim();
  if (c.type === "behavioral") {
    const when = `in the last ${c.time_value} ${c.time_interval}${c.time_value === 1 ? "" : "s"}`;
    if (c.negation) return `did not do ${c.key} ${when}`;
    if (c.value === "performed_event") return `did ${c.key} ${when}`;
    return `did ${c.key} ${OPERATORS_SHORT[c.operator] || c.operator} ${c.operator_value} times ${when}`;
  }
  if (c.type === "cohort") return `in cohort #${c.value}`;
  return JSON.stringify(c);
}

function describeGroup(g) {
  if (!g || !Array.isArray(g.values)) return "";
  const parts = g.values.map((v) => (Array.isArray(v.values) ? `(${describeGroup(v)})` : describeCondition(v)));
  return parts.join(` ${g.type || "AND"} `);
}

export async function cohortPage(main, { project, cohortId, onAuthError, canSave = true }) {
  clear(main);
  let cohort;
  try {
    cohort = await api("GET", `/api/projects/${project.id}/cohorts/${cohortId}`);
  } catch (err) {
    if (err.status === 401) return onAuthError(err);
    main.append(h("h1", null, "Cohort"), errorBox(err));
    return;
  }
  const list = h("section", { class: "card", "aria-label": "Persons in the cohort" });
  const del = h("button", { type: "button", class: "secondary", id: "delete-cohort" }, "Delete cohort");
  const status = h("p", { class: "status-text", role: "status" }, sessionStorage.getItem(NOTE) || "");
  sessionStorage.removeItem(NOTE);
  del.addEventListener("click", async () => {
    try {
      await api("DELETE", `/api/projects/${project.id}/cohorts/${cohortId}`);
      location.hash = `#/p/${project.id}/cohorts`;
    } catch (err) {
      if (err.status === 401) return onAuthError(err);
      status.textContent = describeError(err);
    }
  });
  const breakdownLink = `#/p/${project.id}/insight?q=${encodeURIComponent(JSON.stringify({
    kind: "TrendsQuery",
    series: [{ kind: "EventsNode", event: "$pageview", math: "dau" }],
    interval: "day",
    dateRange: { date_from: "-14d" },
    properties: [{ type: "cohort", key: "id", value: cohort.id, operator: "in" }],
  }))}`;
  // dom.append, not Element.append: it skips the parts a static cohort only has.
  append(main, [
    h("p", null, h("a", { href: `#/p/${project.id}/cohorts` }, "← Cohorts")),
    h("div", { class: "title-row" }, h("h1", null, cohort.name), canSave ? del : null),
    h("section", { class: "card" },
      h("p", null, cohort.is_static ? "Static cohort: the persons uploaded or saved into it." : `Dynamic cohort: ${describeGroup(cohort.filters?.properties) || "every person"}.`),
      cohort.description ? h("p", { class: "muted" }, cohort.description) : null,
      h("p", null, h("a", { href: breakdownLink }, "Unique persons of this cohort in a trend")),
      status,
    ),
    cohort.is_static && canSave ? h("section", { class: "card" }, h("h2", null, "Add persons from a CSV"), uploadForm(project, cohortId, () => reload(), onAuthError)) : null,
    list,
  ]);
  const reload = pagedPersons(list, project.id, (offset) => api("GET", `/api/projects/${project.id}/cohorts/${cohortId}/persons?limit=50&offset=${offset}`), { onAuthError });
}

// -- the editor ------------------------------------------------------------------------------

const PERSON_OPS = [
  ["exact", "equals"], ["is_not", "does not equal"], ["icontains", "contains"], ["not_icontains", "does not contain"],
  ["regex", "matches regex"], ["gt", ">"], ["gte", "≥"], ["lt", "<"], ["lte", "≤"], ["is_set", "is set"], ["is_not_set", "is not set"],
];
const COUNT_OPS = [["gte", "at least"], ["lte", "at most"], ["exact", "exactly"]];
const INTERVALS = [["day", "days"], ["week", "weeks"], ["month", "months"]];

function newCondition(kind) {
  return kind === "behavioral"
    ? { kind, event: "$pageview", did: "did", operator: "gte", times: 1, days: 30, interval: "day" }
    : { kind: "person", key: "", operator: "exact", value: "" };
}

/** The dynamic-cohort editor's model: groups of conditions. */
export function defaultEditor() {
  return { name: "", description: "", type: "AND", groups: [{ type: "AND", values: [newCondition("person")] }] };
}

function conditionRow(c, gi, ci, { bind, redraw, removeRow }) {
  const row = h("div", { class: "row condition", "data-condition": `${gi}-${ci}` });
  const kindSel = bind(select({}, [["person", "Person property"], ["behavioral", "Behaviour"]], c.kind), (v) => {
    Object.assign(c, newCondition(v));
    redraw();
  });
  row.append(field(`Condition ${ci + 1}`, kindSel));
  if (c.kind === "person") {
    const valueField = field("Value", bind(h("input", { type: "text", value: c.value, autocomplete: "off" }), (v) => (c.value = v)));
    valueField.hidden = c.operator === "is_set" || c.operator === "is_not_set";
    row.append(
      field("Property", bind(h("input", { type: "text", value: c.key, list: "dl-person-props", autocomplete: "off", spellcheck: "false" }), (v) => (c.key = v))),
      field("Operator", bind(select({}, PERSON_OPS, c.operator), (v) => {
        c.operator = v;
        valueField.hidden = v === "is_set" || v === "is_not_set";
      })),
      valueField,
    );
  } else {
    const times = h("div", { class: "row times" },
      field("How often", bind(select({}, COUNT_OPS, c.operator), (v) => (c.operator = v))),
      field("Times", bind(h("input", { type: "number", min: 0, value: c.times }), (v) => (c.times = v)), "narrow"),
    );
    times.hidden = c.did !== "did";
    row.append(
      field("Person", bind(select({}, [["did", "did"], ["did_not", "did not do"]], c.did), (v) => {
        c.did = v;
        times.hidden = v !== "did";
      })),
      field("Event", bind(h("input", { type: "text", value: c.event, list: "dl-events", autocomplete: "off", spellcheck: "false" }), (v) => (c.event = v))),
      times,
      field("In the last", bind(h("input", { type: "number", min: 1, value: c.days }), (v) => (c.days = v)), "narrow"),
      field("Unit", bind(select({}, INTERVALS, c.interval), (v) => (c.interval = v))),
    );
  }
  row.append(h("button", { type: "button", class: "icon", "aria-label": `Remove condition ${ci + 1} of group ${gi + 1}`, onclick: removeRow }, "✕"));
  return row;
}

export function newCohortPage(main, { project, params, catalog, onAuthError }) {
  const staticMode = params.get("static") === "1";
  clear(main).append(h("p", null, h("a", { href: `#/p/${project.id}/cohorts` }, "← Cohorts")), h("h1", null, staticMode ? "New static cohort" : "New dynamic cohort"));
  const status = h("p", { class: "status-text", role: "status" });
  if (staticMode) {
    const name = h("input", { type: "text", id: "cohort-name", maxlength: 200, required: true });
    const file = h("input", { type: "file", id: "cohort-csv", accept: ".csv,text/csv,text/plain" });
    const form = h("form", { class: "card", "aria-label": "New static cohort" },
      field("Name", name),
      field("CSV of distinct ids (one a line, optional header distinct_id)", file),
      h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Create cohort")),
      status,
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        if (!name.value.trim()) throw new Error("give the cohort a name");
        if (!file.files.length) throw new Error("pick a CSV file");
        const text = await file.files[0].text();
        const cohort = await api("POST", `/api/projects/${project.id}/cohorts`, { name: name.value.trim(), description: "", is_static: true, person_ids: [] });
        const res = await apiText("POST", `/api/projects/${project.id}/cohorts/${cohort.id}/upload`, text, "text/csv");
        sessionStorage.setItem(NOTE, uploadNote(res));
        location.hash = `#/p/${project.id}/cohorts/${cohort.id}`;
      } catch (err) {
        if (err.status === 401) return onAuthError(err);
        status.textContent = err.status === undefined ? err.message : describeError(err);
      }
    });
    main.append(form);
    return;
  }
  const m = defaultEditor();
  const box = h("div");
  const lists = h("div", { hidden: true }, h("datalist", { id: "dl-events" }), h("datalist", { id: "dl-person-props" }));
  main.append(lists, box, status);
  catalog?.then((cat) => {
    if (!cat || !main.isConnected) return;
    lists.querySelector("#dl-events").append(...(cat.events || []).map((e) => h("option", { value: e.name })));
    lists.querySelector("#dl-person-props").append(...(cat.person_properties || []).map((k) => h("option", { value: k })));
  });
  const bind = (input, set) => {
    input.addEventListener("input", () => set(input.value));
    input.addEventListener("change", () => set(input.value));
    return input;
  };
  const draw = () => {
    const form = h("form", { class: "card cohort-editor", "aria-label": "New dynamic cohort", novalidate: true });
    form.append(
      h("div", { class: "row" },
        field("Name", bind(h("input", { type: "text", id: "cohort-name", value: m.name, maxlength: 200 }), (v) => (m.name = v))),
        field("Description", bind(h("input", { type: "text", value: m.description, maxlength: 1000 }), (v) => (m.description = v))),
      ),
      h("div", { class: "row" }, field("Persons who match", bind(select({ id: "groups-type" }, [["AND", "all groups (AND)"], ["OR", "any group (OR)"]], m.type), (v) => (m.type = v)))),
    );
    m.groups.forEach((g, gi) => {
      const fs = h("fieldset", { class: "cohort-group", "data-group": gi },
        h("legend", null, `Group ${gi + 1}`),
        h("div", { class: "row" },
          field("Match", bind(select({}, [["AND", "all conditions (AND)"], ["OR", "any condition (OR)"]], g.type), (v) => (g.type = v))),
          m.groups.length > 1 ? h("button", { type: "button", class: "icon", "aria-label": `Remove group ${gi + 1}`, onclick: () => { m.groups.splice(gi, 1); draw(); } }, "✕") : null,
        ),
      );
      g.values.forEach((c, ci) => fs.append(conditionRow(c, gi, ci, { bind, redraw: draw, removeRow: () => { g.values.splice(ci, 1); draw(); } })));
      fs.append(h("div", { class: "row" },
        h("button", { type: "button", class: "secondary", onclick: () => { g.values.push(newCondition("person")); draw(); } }, "+ Person property"),
        h("button", { type: "button", class: "secondary", onclick: () => { g.values.push(newCondition("behavioral")); draw(); } }, "+ Behaviour"),
      ));
      form.append(fs);
    });
    form.append(
      h("button", { type: "button", class: "secondary", onclick: () => { m.groups.push({ type: "AND", values: [newCondition("person")] }); draw(); } }, "+ Add group"),
      h("div", { class: "actions" }, h("button", { type: "submit", class: "primary", id: "save-cohort" }, "Create cohort")),
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        const cohort = await api("POST", `/api/projects/${project.id}/cohorts`, cohortJson(m));
        location.hash = `#/p/${project.id}/cohorts/${cohort.id}`;
      } catch (err) {
        if (err.status === 401) return onAuthError(err);
        status.textContent = describeError(err);
      }
    });
    clear(box).append(form);
  };
  draw();
}
