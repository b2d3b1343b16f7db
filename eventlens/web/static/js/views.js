// The pages: insight (builder + result), dashboards, one dashboard, live events (the account
// pages, login included, are in account.js).

import { api, ApiError, describeError } from "./api.js";
import { DATE_PRESETS, defaultModel, fromQuery, markError, OPERATORS, renderBuilder, toQuery } from "./builder.js";
import { renderResult } from "./charts.js";
import { clear, field, fmtNumber, h, select } from "./dom.js";
import { openPersons } from "./persons.js";

/** The posthog-python snippet shown while a project has no events. */
export function snippetBox(token, title) {
  const code = [
    "pip install posthog",
    "",
    "from posthog import Posthog",
    `posthog = Posthog("${token}", host="${location.origin}")`,
    'posthog.capture("signup", distinct_id="user-123", properties={"plan": "free"})',
    "posthog.flush()",
  ].join("\n");
  return h("section", { class: "empty" }, h("h2", null, title), h("p", null, "Send events from your app with PostHog's SDK; paste this snippet:"), h("pre", null, h("code", null, code)));
}

function errorBox(err) {
  return h("div", { class: "error", role: "alert" }, h("strong", null, "Could not run this query. "), describeError(err));
}

function timeText(date, timezone) {
  return new Intl.DateTimeFormat(undefined, { timeZone: timezone, hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" }).format(date);
}

/** A "Computing… (n s)" indicator; returns a stop function. */
function loading(el, text) {
  const started = Date.now();
  const label = h("span", null, text);
  const box = h("div", { class: "loading", role: "status" }, h("span", { class: "spinner", "aria-hidden": "true" }), label);
  el.setAttribute("aria-busy", "true");
  el.append(box);
  const timer = setInterval(() => {
    label.textContent = `${text} (${Math.round((Date.now() - started) / 1000)} s)`;
  }, 1000);
  return () => {
    clearInterval(timer);
    box.remove();
    el.removeAttribute("aria-busy");
  };
}

export async function insightPage(main, { project, params, catalog, onAuthError, canSave = true }) {
  let model;
  let fromUrl = false;
  try {
    const q = params.get("q");
    model = q ? fromQuery(JSON.parse(q)) : defaultModel();
    fromUrl = Boolean(q);
  } catch {
    model = defaultModel();
  }
  const builderEl = h("div", { class: "builder-box" });
  const resultEl = h("section", { class: "result card", "aria-label": "Result", "aria-live": "polite" });
  const metaEl = h("p", { class: "meta" });
  const chartEl = h("div", { class: "result-body" });
  const saveEl = h("div", { class: "save" });
  resultEl.append(metaEl, chartEl, saveEl);
  const top = h("div", null);
  clear(main).append(h("h1", null, "Insights"), top, h("div", { class: "insight" }, builderEl, resultEl));

  let runId = 0;
  // The builder redraws itself (rows added, kind switched): always look up the live form.
  const form = () => builderEl.querySelector("form");
  const run = async () => {
    const query = toQuery(model);
    history.replaceState(null, "", `#/p/${project.id}/insight?q=${encodeURIComponent(JSON.stringify(query))}`);
    runId += 1;
    const mine = runId;
    const runButton = form().querySelector("#run");
    runButton.disabled = true;
    clear(chartEl);
    clear(saveEl);
    metaEl.textContent = "";
    const stop = loading(chartEl, "Computing…");
    try {
      const res = await api("POST", `/api/projects/${project.id}/query`, { query });
      if (mine !== runId || !main.isConnected) return;
      stop();
      markError(form(), null);
      // A clicked number opens its persons (drill.js names which; paths put it in the query).
      const onPersons = (sel) => openPersons(project, { source: { kind: "InsightActorsQuery", source: sel.source ?? query, ...sel.selector }, title: sel.title, count: sel.count, onAuthError });
      renderResult(chartEl, query, res, { onPersons });
      metaEl.textContent = `Computed at ${timeText(new Date(), project.timezone)} (${project.timezone}) · data version ${res.data_version} · ${fmtNumber(res.timings?.total_ms)} ms`;
      saveEl.append(
        canSave
          ? saveForm(project, query, onAuthError)
          : h("p", { class: "muted", id: "cannot-save" }, "Your role (viewer) can run insights but not save them; ask an admin for the member role."),
      );
    } catch (err) {
      if (mine !== runId) return;
      stop();
      if (err.status === 401) return onAuthError(err);
      markError(form(), err.field);
      chartEl.append(errorBox(err));
    } finally {
      if (mine === runId) runButton.disabled = false;
    }
  };
  const placeholder = () => {
    // A chart of another kind than the form's would be read as this kind's answer.
    runId += 1;
    clear(chartEl);
    clear(saveEl);
    metaEl.textContent = "";
    const button = form()?.querySelector("#run");
    if (button) button.disabled = false;
    chartEl.append(h("p", { class: "muted" }, "Pick events and press “Run query”."));
  };
  const opts = (cat) => ({ catalog: cat, timezone: project.timezone, onSubmit: run, onKind: placeholder });
  renderBuilder(builderEl, model, opts(null));
  catalog.then((cat) => {
    if (!main.isConnected || !cat) return;
    if (cat.total_events === 0) top.append(snippetBox(cat.token, "No events yet"));
    const focused = document.activeElement;
    if (!builderEl.contains(focused)) renderBuilder(builderEl, model, opts(cat));
    else {
      // Keep the user's focus: only fill the autocomplete lists.
      const fresh = h("div");
      renderBuilder(fresh, model, opts(cat));
      for (const id of ["dl-events", "dl-event-props", "dl-person-props"]) builderEl.querySelector(`#${id}`).replaceWith(fresh.querySelector(`#${id}`));
    }
  });
  if (fromUrl) run();
  else placeholder();
}

function saveForm(project, query, onAuthError) {
  const name = h("input", { type: "text", id: "insight-name", required: true, maxlength: 200, placeholder: "e.g. Daily signups" });
  const dashSelect = select({ id: "dashboard-pick" }, [["", "New dashboard…"]], "");
  const newName = h("input", { type: "text", id: "new-dashboard-name", maxlength: 200, placeholder: "Dashboard name" });
  const newField = field("New dashboard name", newName);
  const status = h("p", { class: "status-text", role: "status" });
  api("GET", `/api/projects/${project.id}/dashboards`).then((dashes) => {
    for (const d of dashes) dashSelect.append(h("option", { value: d.id }, d.name));
    if (dashes.length) {
      dashSelect.value = String(dashes[dashes.length - 1].id);
      newField.hidden = true;
    }
  }, () => {});
  dashSelect.addEventListener("change", () => (newField.hidden = dashSelect.value !== ""));
  const form = h(
    "form",
    { class: "save-form", "aria-label": "Save insight" },
    h("h2", null, "Save to a dashboard"),
    h("div", { class: "row" }, field("Insight name", name), field("Dashboard", dashSelect), newField),
    h("button", { type: "submit", class: "secondary" }, "Save insight"),
    status,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      if (!name.value.trim()) throw new ApiError(400, { detail: "give the insight a name" });
      const insight = await api("POST", `/api/projects/${project.id}/insights`, { name: name.value, query });
      let dash;
      if (dashSelect.value === "") {
        dash = await api("POST", `/api/projects/${project.id}/dashboards`, { name: newName.value.trim() || "My dashboard", insight_ids: [insight.id] });
        // The new dashboard is now an existing one: pick it, so saving again adds to it
        // rather than making a second dashboard of the same name.
        dashSelect.append(h("option", { value: dash.id }, dash.name));
        dashSelect.value = String(dash.id);
        newName.value = "";
        newField.hidden = true;
      } else {
        const cur = await api("GET", `/api/projects/${project.id}/dashboards/${dashSelect.value}`);
        dash = await api("PATCH", `/api/projects/${project.id}/dashboards/${cur.id}`, { insight_ids: [...cur.insight_ids, insight.id] });
      }
      clear(status).append(`Saved “${insight.name}” to `, h("a", { href: `#/p/${project.id}/dashboards/${dash.id}` }, dash.name), ".");
    } catch (err) {
      if (err.status === 401) return onAuthError(err);
      status.textContent = describeError(err);
    }
  });
  return form;
}

export async function dashboardsPage(main, { project, onAuthError }) {
  const list = h("ul", { class: "dash-list" });
  const name = h("input", { type: "text", id: "dashboard-name", required: true, maxlength: 200 });
  const status = h("p", { class: "status-text", role: "status" });
  const form = h("form", { class: "row", "aria-label": "New dashboard" }, field("New dashboard", name), h("button", { type: "submit", class: "secondary" }, "Create"), status);
  // Saved insights, searchable by name or event: each opens in the builder.
  const search = h("input", { type: "search", id: "insight-search", autocomplete: "off", placeholder: "name or event" });
  const insights = h("ul", { class: "insight-list", "aria-label": "Saved insights" });
  let saved = [];
  const kindName = { TrendsQuery: "Trends", FunnelsQuery: "Funnel", RetentionQuery: "Retention", StickinessQuery: "Stickiness", LifecycleQuery: "Lifecycle" };
  const events = (q) => [...(q.series || []).map((n) => n.event), q.retentionFilter?.targetEntity?.id].filter(Boolean);
  const showInsights = () => {
    const needle = search.value.trim().toLowerCase();
    const hits = saved.filter((i) => !needle || i.name.toLowerCase().includes(needle) || events(i.query).some((e) => e.toLowerCase().includes(needle)));
    clear(insights);
    if (!hits.length) insights.append(h("li", { class: "muted" }, saved.length ? "No saved insight matches." : "No saved insights yet."));
    for (const i of hits) {
      insights.append(h("li", null,
        h("a", { href: `#/p/${project.id}/insight?q=${encodeURIComponent(JSON.stringify(i.query))}` }, i.name),
        h("span", { class: "muted" }, ` · ${kindName[i.query.kind] || i.query.kind} of ${events(i.query).join(", ") || "all events"} · updated ${agoText(i.updated_at)}`)));
    }
  };
  search.addEventListener("input", showInsights);
  clear(main).append(h("h1", null, "Dashboards"), h("section", { class: "card" }, list), h("section", { class: "card" }, form),
    h("section", { class: "card" }, h("h2", null, "Saved insights"), field("Search saved insights", search), insights));
  api("GET", `/api/projects/${project.id}/insights`).then((all) => {
    saved = [...all].sort((a, b) => String(b.updated_at).localeCompare(String(a.updated_at)));
    showInsights();
  }, (err) => insights.append(h("li", null, errorBox(err))));
  const load = async () => {
    const dashes = await api("GET", `/api/projects/${project.id}/dashboards`);
    clear(list);
    if (!dashes.length) list.append(h("li", { class: "muted" }, "No dashboards yet: run an insight and save it to one, or create one here."));
    for (const d of dashes) {
      list.append(h("li", null, h("a", { href: `#/p/${project.id}/dashboards/${d.id}` }, d.name), h("span", { class: "muted" }, ` · ${d.insight_ids.length} insight${d.insight_ids.length === 1 ? "" : "s"}`)));
    }
  };
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const d = await api("POST", `/api/projects/${project.id}/dashboards`, { name: name.value });
      location.hash = `#/p/${project.id}/dashboards/${d.id}`;
    } catch (err) {
      if (err.status === 401) return onAuthError(err);
      status.textContent = describeError(err);
    }
  });
  try {
    await load();
  } catch (err) {
    if (err.status === 401) return onAuthError(err);
    list.append(h("li", null, errorBox(err)));
  }
}

const OVERRIDE_DATES = [["", "Each tile's own dates"], ...DATE_PRESETS.filter(([v]) => v !== "custom")];

/** "just now", "5 min ago", "3 h ago" for an ISO time. */
export function agoText(iso, now = Date.now()) {
  if (!iso) return "just now";
  const s = Math.max(0, (now - new Date(iso).getTime()) / 1000);
  if (s < 60) return "just now";
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

export async function dashboardPage(main, { project, dashboardId, onAuthError }) {
  clear(main);
  let dash;
  try {
    dash = await api("GET", `/api/projects/${project.id}/dashboards/${dashboardId}`);
  } catch (err) {
    if (err.status === 401) return onAuthError(err);
    main.append(h("h1", null, "Dashboard"), errorBox(err));
    return;
  }
  const grid = h("div", { class: "tiles" });
  const refresh = h("button", { type: "button", class: "primary", id: "refresh-all" }, "Refresh all");
  const stale = h("button", { type: "button", class: "secondary", id: "refresh-stale" }, "Refresh out-of-date");
  // Dashboard filters (PostHog's filters_override): a date range and one property filter
  // applied to every tile on top of its own query, without changing the saved insights.
  const overrideDate = select({ id: "override-date" }, OVERRIDE_DATES, "");
  const overrideKey = h("input", { type: "text", id: "override-key", autocomplete: "off", placeholder: "property" });
  const overrideOp = select({ id: "override-op" }, OPERATORS, "exact");
  const overrideValue = h("input", { type: "text", id: "override-value", autocomplete: "off" });
  const overrideForm = h("form", { class: "overrides card", "aria-label": "Dashboard filters" },
    field("Date range (all tiles)", overrideDate),
    field("Filter property", overrideKey), field("Operator", overrideOp), field("Value", overrideValue),
    h("button", { type: "submit", class: "secondary", id: "apply-overrides" }, "Apply to all tiles"),
  );
  // The filters saved with the dashboard (its `filters`) are the form's starting values, so
  // the dashboard opens as it was left.
  const saved = dash.filters || {};
  if (saved.date_from) {
    // A range saved through the API may be no preset: offered as it is, so it still applies.
    if (!OVERRIDE_DATES.some(([v]) => v === saved.date_from)) overrideDate.append(h("option", { value: saved.date_from }, saved.date_from));
    overrideDate.value = saved.date_from;
  }
  const savedProp = (saved.properties || [])[0];
  if (savedProp) {
    overrideKey.value = savedProp.key || "";
    overrideOp.value = savedProp.operator || "exact";
    overrideValue.value = savedProp.value == null ? "" : String(savedProp.value);
  }
  const overrideStatus = h("p", { class: "meta", role: "status", id: "override-status" });
  overrideForm.append(overrideStatus);
  main.append(h("div", { class: "title-row" }, h("h1", null, dash.name), h("div", { class: "row" }, stale, refresh)), overrideForm, grid);
  if (!dash.insights.length) {
    grid.append(h("p", { class: "muted" }, "This dashboard is empty: open ", h("a", { href: `#/p/${project.id}/insight` }, "Insights"), ", run a query and save it here."));
    return;
  }
  const override = () => {
    const o = {};
    if (overrideDate.value) {
      o.date_from = overrideDate.value;
      o.date_to = null;
    }
    const key = overrideKey.value.trim();
    if (key) {
      const f = { key, operator: overrideOp.value, type: "event" };
      if (!["is_set", "is_not_set"].includes(overrideOp.value)) f.value = overrideValue.value.trim();
      o.properties = [f];
    }
    return Object.keys(o).length ? o : undefined;
  };
  const move = async (ins, by) => {
    const ids = [...dash.insight_ids];
    const at = ids.indexOf(ins.id);
    const to = at + by;
    if (at < 0 || to < 0 || to >= ids.length) return;
    [ids[at], ids[to]] = [ids[to], ids[at]];
    try {
      // The tile order is the dashboard's insight_ids: saved, so every viewer sees it.
      await api("PATCH", `/api/projects/${project.id}/dashboards/${dash.id}`, { insight_ids: ids });
      dashboardPage(main, { project, dashboardId, onAuthError });
    } catch (err) {
      if (err.status === 401) return onAuthError(err);
    }
  };
  const tiles = dash.insights.map((ins, index) => {
    const body = h("div", { class: "tile-body" });
    const meta = h("p", { class: "meta" });
    const link = `#/p/${project.id}/insight?q=${encodeURIComponent(JSON.stringify(ins.query))}`;
    const remove = h("button", { type: "button", class: "icon", "aria-label": `Remove ${ins.name} from the dashboard` }, "✕");
    remove.addEventListener("click", async () => {
      const ids = dash.insight_ids.filter((i) => i !== ins.id);
      try {
        await api("PATCH", `/api/projects/${project.id}/dashboards/${dash.id}`, { insight_ids: ids });
        dashboardPage(main, { project, dashboardId, onAuthError });
      } catch (err) {
        if (err.status === 401) return onAuthError(err);
        meta.textContent = describeError(err);
      }
    });
    const earlier = h("button", { type: "button", class: "icon", "aria-label": `Move ${ins.name} earlier`, disabled: index === 0, onclick: () => move(ins, -1) }, "←");
    const later = h("button", { type: "button", class: "icon", "aria-label": `Move ${ins.name} later`, disabled: index === dash.insights.length - 1, onclick: () => move(ins, 1) }, "→");
    const size = { w: 1, h: 1, ...(dash.layouts?.[String(ins.id)] || {}) };
    const wider = h("button", { type: "button", class: "icon", "aria-label": `Make ${ins.name} ${size.w === 2 ? "narrow" : "wide"}`, "aria-pressed": String(size.w === 2) }, "⇔");
    const taller = h("button", { type: "button", class: "icon", "aria-label": `Make ${ins.name} ${size.h === 2 ? "short" : "tall"}`, "aria-pressed": String(size.h === 2) }, "⇕");
    const tile = h("article", { class: "tile card", "data-insight": ins.id }, h("header", null, h("h2", null, h("a", { href: link }, ins.name)), h("div", { class: "tile-tools" }, earlier, later, wider, taller, remove)), body, meta);
    const t = { ins, body, meta, res: null, size };
    const applySize = () => {
      tile.classList.toggle("wide", t.size.w === 2);
      tile.classList.toggle("tall", t.size.h === 2);
    };
    applySize();
    const resize = async (dim) => {
      t.size = { ...t.size, [dim]: t.size[dim] === 2 ? 1 : 2 };
      const layouts = { ...(dash.layouts || {}), [String(ins.id)]: t.size };
      try {
        // Sizes are saved with the dashboard (its layouts), so the next visit has them.
        dash = { ...dash, ...(await api("PATCH", `/api/projects/${project.id}/dashboards/${dash.id}`, { layouts })) };
        dashboardPage(main, { project, dashboardId, onAuthError });
      } catch (err) {
        if (err.status === 401) return onAuthError(err);
        meta.textContent = describeError(err);
      }
    };
    wider.addEventListener("click", () => resize("w"));
    taller.addEventListener("click", () => resize("h"));
    grid.append(tile);
    return t;
  });
  const showMeta = (t) => {
    if (t.res) t.meta.textContent = `${freshness(t.res, project.timezone)} · updated ${agoText(t.res.last_refresh)}`;
  };
  // "updated N min ago" moves on by itself while the page is open.
  const ticker = setInterval(() => {
    if (!main.isConnected) clearInterval(ticker);
    else tiles.forEach(showMeta);
  }, 30_000);
  const runTile = async (t, mode) => {
    const { ins, body, meta } = t;
    clear(body);
    meta.textContent = "";
    const stop = loading(body, "Computing…");
    try {
      const req = { query: ins.query, refresh: mode };
      const o = override();
      if (o) req.filters_override = o;
      const res = await api("POST", `/api/projects/${project.id}/query`, req);
      stop();
      if (!main.isConnected) return;
      if (res.results === null) {
        // force_cache found nothing cached: compute it now.
        return runTile(t, "blocking");
      }
      t.res = res;
      // Draw the query as answered: the override's dates are the ones the numbers are for.
      const drawn = o ? { ...ins.query, dateRange: { ...(ins.query.dateRange || {}), ...(o.date_from ? { date_from: o.date_from } : {}) } } : ins.query;
      if (o?.date_from && drawn.dateRange) delete drawn.dateRange.date_to;
      renderResult(body, drawn, res, { compact: true, tall: t.size.h === 2 });
      showMeta(t);
    } catch (err) {
      stop();
      if (err.status === 401) return onAuthError(err);
      body.append(errorBox(err));
    }
  };
  // All tiles are computed together, on the same press, each against the latest data.
  const runAll = async (mode) => {
    refresh.disabled = true;
    stale.disabled = true;
    await Promise.all(tiles.map((t) => runTile(t, mode)));
    refresh.disabled = false;
    stale.disabled = false;
  };
  // Only the tiles whose answer is behind the table's current data version are recomputed
  // (docs/api.md "Refresh modes": force_cache answers from the cache without computing and
  // says how many versions behind the answer is).
  const refreshStale = async () => {
    refresh.disabled = true;
    stale.disabled = true;
    await Promise.all(tiles.map(async (t) => {
      try {
        const req = { query: t.ins.query, refresh: "force_cache" };
        const o = override();
        if (o) req.filters_override = o;
        const res = await api("POST", `/api/projects/${project.id}/query`, req);
        if (res.results === null || res.versions_behind) await runTile(t, "blocking");
        else if (!t.res) await runTile(t, "force_cache");
      } catch (err) {
        if (err.status === 401) return onAuthError(err);
        await runTile(t, "blocking");
      }
    }));
    refresh.disabled = false;
    stale.disabled = false;
  };
  refresh.addEventListener("click", () => runAll("force_blocking"));
  stale.addEventListener("click", refreshStale);
  overrideForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const o = override() || {};
    const { date_to, ...filters } = o; // date_to: null only says "up to now" on /query
    // The tiles are run with the filters at once; saving them goes alongside.
    const running = runAll("blocking");
    try {
      // Saved with the dashboard, so a reload (or another viewer) gets the same filters.
      dash = { ...dash, ...(await api("PATCH", `/api/projects/${project.id}/dashboards/${dash.id}`, { filters })) };
      overrideStatus.textContent = Object.keys(filters).length ? "Filters saved with the dashboard." : "Dashboard filters cleared.";
    } catch (err) {
      if (err.status === 401) return onAuthError(err);
      overrideStatus.textContent = `Not saved: ${describeError(err)}`;
    }
    await running;
  });
  await runAll("blocking");
}

// How fresh a tile is: when its answer was computed, at which data version, and whether it is
// the current one (the cache serves answers by data version, docs/api.md "Refresh modes").
function freshness(res, timezone) {
  const when = res.last_refresh ? timeText(new Date(res.last_refresh), timezone) : "now";
  const how = res.is_cached ? "cached" : "computed";
  const behind = res.versions_behind ? ` · ${res.versions_behind} version(s) behind` : " · current";
  return `${how[0].toUpperCase()}${how.slice(1)} at ${when} · data version ${res.data_version}${res.current_data_version == null ? "" : behind}`;
}

export function livePage(main, { project, catalog, onAuthError }) {
  const tbody = h("tbody");
  const status = h("p", { class: "meta", role: "status" }, "Loading…");
  const pause = h("button", { type: "button", class: "secondary", "aria-pressed": "false" }, "Pause");
  const empty = h("div");
  clear(main).append(
    h("div", { class: "title-row" }, h("h1", null, "Live events"), pause),
    status,
    empty,
    h("div", { class: "card table-scroll" },
      h("table", { class: "live" },
        h("thead", null, h("tr", null, ["", "Time", "Event", "Person", "Properties"].map((c) => h("th", { scope: "col" }, c)))),
        tbody,
      ),
    ),
  );
  let paused = false;
  let timer = null;
  let shownEmpty = false;
  const open = new Set(); // uuids of the rows opened to their full properties (kept across polls)
  const fmt = new Intl.DateTimeFormat(undefined, { timeZone: project.timezone, month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
  pause.addEventListener("click", () => {
    paused = !paused;
    pause.setAttribute("aria-pressed", String(paused));
    pause.textContent = paused ? "Resume" : "Pause";
    if (!paused) poll();
  });
  const poll = async () => {
    clearTimeout(timer);
    if (!main.isConnected || paused) return;
    try {
      const res = await api("GET", `/api/projects/${project.id}/events/live?limit=50`);
      if (!main.isConnected) return;
      clear(tbody);
      for (const e of res.events) {
        const props = JSON.stringify(e.properties);
        const isOpen = open.has(e.uuid);
        const detail = h("tr", { class: "event-detail", hidden: !isOpen },
          h("td", { colspan: 5 }, h("pre", null, JSON.stringify({ ...e.properties }, null, 2))));
        const toggle = h("button", { type: "button", class: "expand", "aria-expanded": String(isOpen), "aria-label": `Properties of ${e.event} at ${fmt.format(new Date(e.timestamp))}` }, isOpen ? "▾" : "▸");
        toggle.addEventListener("click", () => {
          const now = !open.has(e.uuid);
          if (now) open.add(e.uuid);
          else open.delete(e.uuid);
          detail.hidden = !now;
          toggle.setAttribute("aria-expanded", String(now));
          toggle.textContent = now ? "▾" : "▸";
        });
        tbody.append(
          h("tr", { class: "event-row" },
            h("td", null, toggle),
            h("td", { class: "nowrap" }, fmt.format(new Date(e.timestamp))),
            h("td", null, e.event),
            h("td", null, e.distinct_id),
            // The whole JSON (clamped to two lines by the stylesheet): the button opens it.
            h("td", null, h("code", { class: "props" }, props)),
          ),
          detail,
        );
      }
      if (!res.events.length && !shownEmpty) {
        shownEmpty = true;
        catalog.then((cat) => cat && empty.append(snippetBox(cat.token, "No events yet")));
      } else if (res.events.length) clear(empty);
      status.textContent = `Newest first · updated ${timeText(new Date(), project.timezone)} (${project.timezone}) · data version ${res.data_version} · refreshes every 1.5 s`;
    } catch (err) {
      if (err.status === 401) return onAuthError(err);
      status.textContent = describeError(err);
    }
    timer = setTimeout(poll, 1500);
  };
  poll();
}
