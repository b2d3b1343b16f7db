// Persons: the modal listing the persons behind a number of an insight (ActorsQuery over an
// InsightActorsQuery), the persons list (search) and one person's page (properties, distinct
// ids, events newest first).

import { api, describeError } from "./api.js";
import { clear, field, fmtNumber, h } from "./dom.js";

const PAGE = 50;
// Saving a cohort needs every person id, not only the page shown: read them in big pages.
const SAVE_PAGE = 1000;

/** The ActorsQuery of one page of the persons behind `source` (an InsightActorsQuery, or null
 * for all the project's persons). */
export function actorsQuery(source, { offset = 0, limit = PAGE, search = null } = {}) {
  const q = { kind: "ActorsQuery", source, limit, offset };
  if (search) q.search = search;
  return q;
}

/** The person's name in words: the email if set, else the first distinct id. */
export function personName(p) {
  const props = p.properties || {};
  return String(props.email || props.$email || props.name || p.distinct_ids?.[0] || p.id);
}

function personLink(projectId, p) {
  return h("a", { href: `#/p/${projectId}/persons/${encodeURIComponent(p.id)}` }, personName(p));
}

function personsTable(projectId, rows) {
  return h(
    "table",
    { class: "persons grid-table" },
    h("thead", null, h("tr", null, ["Person", "Distinct ids", "Created", "Identified"].map((c) => h("th", { scope: "col" }, c)))),
    h(
      "tbody",
      null,
      rows.map(([p]) =>
        h(
          "tr",
          { "data-person": p.id },
          h("th", { scope: "row" }, personLink(projectId, p)),
          h("td", null, (p.distinct_ids || []).slice(0, 3).join(", ") + ((p.distinct_ids || []).length > 3 ? ", …" : "")),
          h("td", { class: "nowrap" }, p.created_at ? p.created_at.slice(0, 19).replace("T", " ") : "–"),
          h("td", null, p.is_identified ? "yes" : "no"),
        ),
      ),
    ),
  );
}

/**
 * A paged list of persons: `fetchPage(offset)` returns an actors response. Draws into `el`,
 * the total in `.persons-total`, Previous / Next buttons. Returns a reload function.
 */
export function pagedPersons(el, projectId, fetchPage, { onAuthError, onTotal } = {}) {
  let offset = 0;
  const total = h("p", { class: "persons-total", role: "status" });
  const body = h("div", { class: "table-scroll" });
  const prev = h("button", { type: "button", class: "secondary", disabled: true }, "Previous");
  const next = h("button", { type: "button", class: "secondary", disabled: true }, "Next");
  const where = h("span", { class: "muted page-where" });
  clear(el).append(total, body, h("div", { class: "row pager" }, prev, where, next));
  let seq = 0;
  const load = async () => {
    seq += 1;
    const mine = seq;
    prev.disabled = true;
    next.disabled = true;
    clear(body).append(h("p", { class: "muted" }, "Loading…"));
    try {
      const res = await fetchPage(offset);
      if (mine !== seq) return;
      total.textContent = `${fmtNumber(res.total)} person${res.total === 1 ? "" : "s"}`;
      total.dataset.total = String(res.total);
      onTotal?.(res.total);
      clear(body).append(res.results.length ? personsTable(projectId, res.results) : h("p", { class: "muted" }, "No persons."));
      where.textContent = res.results.length ? `${fmtNumber(offset + 1)}–${fmtNumber(offset + res.results.length)} of ${fmtNumber(res.total)}` : "";
      prev.disabled = offset === 0;
      next.disabled = !res.hasMore;
    } catch (err) {
      if (mine !== seq) return;
      if (err.status === 401) return onAuthError?.(err);
      clear(body).append(h("div", { class: "error", role: "alert" }, describeError(err)));
    }
  };
  prev.addEventListener("click", () => {
    offset = Math.max(0, offset - PAGE);
    load();
  });
  next.addEventListener("click", () => {
    offset += PAGE;
    load();
  });
  load();
  return () => {
    offset = 0;
    return load();
  };
}

/** Every person id matching the actors query `source` (for a static cohort). */
async function allPersonIds(projectId, source) {
  const ids = [];
  for (let offset = 0; ; offset += SAVE_PAGE) {
    const res = await api("POST", `/api/projects/${projectId}/query`, { query: actorsQuery(source, { offset, limit: SAVE_PAGE }) });
    for (const [p] of res.results) ids.push(p.id);
    if (!res.hasMore) return ids;
  }
}

function saveCohortForm(project, source, defaultName, onAuthError) {
  const name = h("input", { type: "text", class: "cohort-name", maxlength: 200, value: defaultName });
  const status = h("p", { class: "status-text", role: "status" });
  const button = h("button", { type: "submit", class: "secondary" }, "Save as static cohort");
  const form = h("form", { class: "row save-cohort", "aria-label": "Save as static cohort" }, field("Cohort name", name), button, status);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    button.disabled = true;
    status.textContent = "Saving…";
    try {
      const ids = await allPersonIds(project.id, source);
      const cohort = await api("POST", `/api/projects/${project.id}/cohorts`, {
        name: name.value.trim() || defaultName,
        description: "Saved from an insight's persons",
        is_static: true,
        person_ids: ids,
      });
      clear(status).append("Saved ", h("a", { href: `#/p/${project.id}/cohorts/${cohort.id}` }, cohort.name), ` (${fmtNumber(ids.length)} persons).`);
    } catch (err) {
      if (err.status === 401) return onAuthError?.(err);
      status.textContent = describeError(err);
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

/**
 * Open the modal of the persons behind one number: `source` is the InsightActorsQuery, `title`
 * says which number ("Step 2 · converted", "2026-12-01 · $pageview"), `count` the number shown
 * on the chart (the modal's total is the server's exact count of the same persons).
 */
export function openPersons(project, { source, title, count = null, onAuthError }) {
  document.querySelector("dialog.persons-modal")?.remove();
  const list = h("div", { class: "persons-list" });
  const close = h("button", { type: "button", class: "icon close", "aria-label": "Close" }, "✕");
  const dialog = h(
    "dialog",
    { class: "persons-modal", "aria-label": `Persons: ${title}` },
    h("div", { class: "title-row" }, h("h2", null, `Persons · ${title}`), close),
    count === null ? null : h("p", { class: "muted clicked" }, `The chart shows ${fmtNumber(count)}.`),
    list,
    saveCohortForm(project, source, `${title} (persons)`.slice(0, 200), onAuthError),
  );
  close.addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => dialog.remove());
  // A person's link leaves the insight: the dialog goes with it.
  window.addEventListener("hashchange", () => dialog.open && dialog.close(), { once: true });
  document.body.append(dialog);
  dialog.showModal();
  pagedPersons(list, project.id, (offset) => api("POST", `/api/projects/${project.id}/query`, { query: actorsQuery(source, { offset }) }), { onAuthError });
  return dialog;
}

// -- pages -----------------------------------------------------------------------------------

export function personsPage(main, { project, params, onAuthError }) {
  const search = h("input", { type: "search", id: "person-search", value: params.get("search") || "", placeholder: "distinct id, email or property value", autocomplete: "off" });
  const form = h("form", { class: "row", role: "search", "aria-label": "Search persons" }, field("Search", search), h("button", { type: "submit", class: "secondary" }, "Search"));
  const list = h("section", { class: "card", "aria-label": "Persons" });
  clear(main).append(h("h1", null, "Persons"), h("section", { class: "card" }, form), list);
  const show = () => {
    const term = search.value.trim();
    history.replaceState(null, "", `#/p/${project.id}/persons${term ? `?search=${encodeURIComponent(term)}` : ""}`);
    pagedPersons(list, project.id, (offset) => api("POST", `/api/projects/${project.id}/query`, { query: actorsQuery(null, { offset, search: term || null }) }), { onAuthError });
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    show();
  });
  show();
}

function propsTable(props) {
  const keys = Object.keys(props || {}).sort();
  if (!keys.length) return h("p", { class: "muted" }, "No properties.");
  return h(
    "table",
    { class: "grid-table props-table" },
    h("tbody", null, keys.map((k) => h("tr", null, h("th", { scope: "row" }, k), h("td", null, typeof props[k] === "string" ? props[k] : JSON.stringify(props[k]))))),
  );
}

export async function personPage(main, { project, personId, onAuthError }) {
  clear(main);
  let person;
  try {
    person = await api("GET", `/api/projects/${project.id}/persons/${encodeURIComponent(personId)}`);
  } catch (err) {
    if (err.status === 401) return onAuthError(err);
    main.append(h("h1", null, "Person"), h("div", { class: "error", role: "alert" }, describeError(err)), h("p", null, h("a", { href: `#/p/${project.id}/persons` }, "All persons")));
    return;
  }
  const fmt = new Intl.DateTimeFormat(undefined, { timeZone: project.timezone, year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
  const tbody = h("tbody");
  const more = h("button", { type: "button", class: "secondary", id: "older-events" }, "Older events");
  const status = h("p", { class: "meta", role: "status" });
  main.append(
    h("p", null, h("a", { href: `#/p/${project.id}/persons` }, "← Persons")),
    h("h1", null, personName(person)),
    h("div", { class: "person-grid" },
      h("section", { class: "card", "aria-label": "Properties" }, h("h2", null, "Properties"), propsTable(person.properties)),
      h("section", { class: "card", "aria-label": "Distinct ids" },
        h("h2", null, "Distinct ids"),
        h("ul", { class: "distinct-ids" }, (person.distinct_ids || []).map((d) => h("li", null, h("code", null, d)))),
        h("p", { class: "muted" }, `Person id ${person.id}`, person.created_at ? ` · first seen ${fmt.format(new Date(person.created_at))}` : "", person.is_identified ? " · identified" : ""),
      ),
    ),
    h("section", { class: "card", "aria-label": "Events" },
      h("h2", null, "Events (newest first)"),
      h("div", { class: "table-scroll" },
        h("table", { class: "live person-events" },
          h("thead", null, h("tr", null, ["Time", "Event", "Distinct id", "Properties"].map((c) => h("th", { scope: "col" }, c)))),
          tbody,
        ),
      ),
      status,
      more,
    ),
  );
  let before = null;
  const load = async () => {
    more.disabled = true;
    try {
      const qs = new URLSearchParams({ limit: "100" });
      if (before) qs.set("before", before);
      const res = await api("GET", `/api/projects/${project.id}/persons/${encodeURIComponent(personId)}/events?${qs}`);
      if (!main.isConnected) return;
      for (const e of res.results) {
        const props = JSON.stringify(e.properties);
        tbody.append(
          h("tr", { "data-uuid": e.uuid, "data-ts": e.timestamp },
            h("td", { class: "nowrap" }, fmt.format(new Date(e.timestamp))),
            h("td", null, e.event),
            h("td", null, e.distinct_id),
            h("td", null, h("code", { class: "props", title: props }, props.length > 160 ? `${props.slice(0, 160)}…` : props)),
          ),
        );
      }
      if (res.results.length) before = res.results[res.results.length - 1].timestamp;
      status.textContent = `${fmtNumber(tbody.rows.length)} event${tbody.rows.length === 1 ? "" : "s"} shown${res.hasMore ? "" : " · no older events"}`;
      more.hidden = !res.hasMore;
      more.disabled = false;
    } catch (err) {
      if (err.status === 401) return onAuthError(err);
      status.textContent = describeError(err);
      more.disabled = false;
    }
  };
  more.addEventListener("click", load);
  await load();
}
