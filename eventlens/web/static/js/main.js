// Entry point: the hash router (#/p/<project>/<page>?q=...), the header and the session.

import { auditPage, invitePage, keysPage, loginPage, membersPage, resetPage } from "./account.js";
import { api, describeError, session } from "./api.js";
import { cohortPage, cohortsPage, listCohorts, newCohortPage } from "./cohorts.js";
import { clear, h } from "./dom.js";
import { personPage, personsPage } from "./persons.js";
import { dashboardPage, dashboardsPage, insightPage, livePage } from "./views.js";

const main = document.getElementById("main");
const header = document.getElementById("top");
const projectSelect = document.getElementById("project-select");
let projects = null; // what GET /api/projects said for the current credentials
let me = null; // GET /api/me with the login session; null with an API key

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const cut = raw.indexOf("?");
  const path = cut < 0 ? raw : raw.slice(0, cut);
  return { parts: path.split("/").filter(Boolean), params: new URLSearchParams(cut < 0 ? "" : raw.slice(cut + 1)) };
}

function forget() {
  session.clear();
  projects = null;
  me = null;
}

function onAuthError(err) {
  forget();
  route(`Logged out: ${describeError(err)}`);
}

function catalogFor(projectId) {
  // The builder's cohort filter and breakdown pick from the project's cohorts.
  const cohorts = listCohorts(projectId);
  return api("GET", `/api/projects/${projectId}/catalog`).then(async (cat) => ({ ...cat, cohorts: await cohorts })).catch(() => null);
}

/** The organisation an admin manages (the first where the role is admin or owner). */
function adminOrg() {
  return me?.orgs.find((o) => o.role === "admin" || o.role === "owner") ?? null;
}

function renderAccount() {
  document.getElementById("account-name").textContent = me ? me.email : "API key";
  document.getElementById("nav-keys").hidden = !me;
  const org = adminOrg();
  for (const [id, page] of [["nav-members", "members"], ["nav-audit", "audit"]]) {
    const a = document.getElementById(id);
    a.hidden = !org;
    if (org) a.href = `#/org/${org.id}/${page}`;
  }
}

function renderHeader(project, view) {
  header.hidden = false;
  clear(projectSelect);
  for (const p of projects) {
    const opt = h("option", { value: p.id }, `${p.name} (#${p.id})`);
    if (project && p.id === project.id) opt.selected = true;
    projectSelect.append(opt);
  }
  const pid = project ? project.id : projects[0]?.id;
  const links = { insight: "insight", dashboards: "dashboards", live: "live", persons: "persons", cohorts: "cohorts" };
  for (const [name, path] of Object.entries(links)) {
    const a = document.getElementById(`nav-${name}`);
    a.href = `#/p/${pid}/${path}`;
    if (name === view) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  document.getElementById("project-tz").textContent = project ? `Timezone: ${project.timezone}` : "";
  renderAccount();
}

async function route(message) {
  const { parts, params } = parseHash();
  // Each route renders into a fresh element: a page's timers and late answers check
  // `page.isConnected` and stop once the user has moved on.
  const page = h("div", { class: "page" });
  clear(main).append(page);
  const loggedIn = () => {
    projects = null;
    me = null;
    route();
  };
  // One-time links work logged in or not.
  if (parts[0] === "invite" && parts[1]) {
    header.hidden = true;
    return invitePage(page, { token: parts[1], onLogin: loggedIn });
  }
  if (parts[0] === "reset" && parts[1]) {
    header.hidden = true;
    return resetPage(page, { token: parts[1], onDone: (text) => { forget(); route(text); } });
  }
  if (!session.key && !me && session.maybeCookie) {
    try {
      me = await api("GET", "/api/me");
    } catch (err) {
      if (err.status !== 401) {
        clear(page).append(h("div", { class: "error", role: "alert" }, describeError(err)));
        return;
      }
      forget();
      message = message || `Logged out: ${describeError(err)}`;
    }
  }
  if (!session.key && !me) {
    header.hidden = true;
    loginPage(page, { message, onLogin: loggedIn });
    return;
  }
  if (!projects) {
    try {
      projects = await api("GET", "/api/projects");
    } catch (err) {
      if (err.status === 401) return onAuthError(err);
      clear(page).append(h("div", { class: "error", role: "alert" }, describeError(err)));
      return;
    }
  }
  const ctx0 = { onAuthError, me, projects };
  if (parts[0] === "account" && parts[1] === "keys" && me) {
    renderHeader(null, null);
    return keysPage(page, ctx0);
  }
  if (parts[0] === "org" && parts[1] && me) {
    renderHeader(null, null);
    const orgId = Number(parts[1]);
    if (parts[2] === "audit") return auditPage(page, { ...ctx0, orgId });
    return membersPage(page, { ...ctx0, orgId });
  }
  if (parts[0] !== "p") {
    if (projects.length) location.replace(`#/p/${projects[0].id}/insight`);
    else clear(page).append(h("p", null, "These credentials cannot read any project."));
    return;
  }
  const projectId = Number(parts[1]);
  const project = projects.find((p) => p.id === projectId);
  const view = parts[2] || "insight";
  renderHeader(project, view);
  if (!project) {
    // Same answer whether or not the project exists: the key simply cannot see it.
    clear(page).append(
      h("h1", null, "Project not found"),
      h("div", { class: "error", role: "alert" }, `Project ${parts[1]} not found: this key cannot read it.`),
      h("p", null, "Pick one of your projects above."),
    );
    return;
  }
  document.title = `${project.name} · EventLens`;
  // A viewer (every organisation) runs insights but cannot save them; the server says 403 too.
  const canSave = !me || me.orgs.some((o) => o.role !== "viewer");
  const ctx = { project, params, onAuthError, canSave };
  if (view === "insight") insightPage(page, { ...ctx, catalog: catalogFor(project.id) });
  else if (view === "dashboards" && parts[3]) dashboardPage(page, { ...ctx, dashboardId: Number(parts[3]) });
  else if (view === "dashboards") dashboardsPage(page, ctx);
  else if (view === "live") livePage(page, { ...ctx, catalog: catalogFor(project.id) });
  else if (view === "persons" && parts[3]) personPage(page, { ...ctx, personId: decodeURIComponent(parts[3]) });
  else if (view === "persons") personsPage(page, ctx);
  else if (view === "cohorts" && parts[3] === "new") newCohortPage(page, { ...ctx, catalog: catalogFor(project.id) });
  else if (view === "cohorts" && parts[3]) cohortPage(page, { ...ctx, cohortId: Number(parts[3]) });
  else if (view === "cohorts") cohortsPage(page, ctx);
  else clear(page).append(h("h1", null, "Page not found"), h("p", null, h("a", { href: `#/p/${project.id}/insight` }, "Go to insights")));
}

projectSelect.addEventListener("change", () => {
  location.hash = `#/p/${projectSelect.value}/insight`;
});
document.getElementById("logout").addEventListener("click", async () => {
  if (me) await api("POST", "/api/logout").catch(() => null);
  forget();
  history.replaceState(null, "", "#/");
  route("Logged out.");
});
window.addEventListener("hashchange", () => route());
route();
