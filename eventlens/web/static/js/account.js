// The account pages: login (email + password, or an API key), invite acceptance, password
// reset, your keys, an organisation's members and audit log.

import { api, ApiError, describeError, session } from "./api.js";
import { clear, field, h, select } from "./dom.js";

const PHC = "That is the project's public capture token (phc_…): it only sends events. Use your login or a personal API key (phx_…).";
const SCOPES = ["query:read", "insight:read", "insight:write", "project:admin"];
const ROLES = ["owner", "admin", "member", "viewer"];

function when(t) {
  return t ? new Date(t * 1000).toLocaleString() : "never";
}

export function loginPage(main, { message, onLogin }) {
  const status = h("p", { class: "error-text", role: "alert" }, message || "");
  const email = h("input", { type: "email", id: "login-email", autocomplete: "username", required: true });
  const password = h("input", { type: "password", id: "login-password", autocomplete: "current-password", required: true });
  const pwForm = h(
    "form",
    { class: "stack", "aria-label": "Sign in with your account" },
    field("Email", email),
    field("Password", password),
    h("button", { type: "submit", class: "primary" }, "Sign in"),
  );
  pwForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    status.textContent = "Checking…";
    try {
      session.clear();
      await api("POST", "/api/login", { email: email.value.trim(), password: password.value }, null);
      password.value = "";
      onLogin();
    } catch (err) {
      password.value = "";
      status.textContent = err.status === 429 ? `${err.detail}.` : describeError(err);
    }
  });
  const input = h("input", { type: "password", id: "api-key", name: "api-key", autocomplete: "off", required: true, spellcheck: "false", placeholder: "phx_…" });
  const keyForm = h(
    "form",
    { class: "stack", "aria-label": "Sign in with a key" },
    h("p", null, "Or use a personal API key (phx_…), or a project's secret key (legacy, shown once by ", h("code", null, "eventlens project create"), "). It stays in this browser tab only."),
    field("Personal API key", input),
    h("button", { type: "submit", class: "secondary" }, "Log in"),
  );
  keyForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const key = input.value.trim();
    if (!key) {
      status.textContent = "Enter your personal API key.";
      return;
    }
    if (key.startsWith("phc_")) {
      status.textContent = PHC;
      return;
    }
    status.textContent = "Checking…";
    try {
      await api("GET", "/api/projects", undefined, key);
      session.set(key);
      onLogin();
    } catch (err) {
      status.textContent = err instanceof ApiError && err.status === 401 ? "This key was not accepted: check it and try again." : describeError(err);
    }
  });
  clear(main).append(
    h("section", { class: "login card", "aria-labelledby": "login-title" }, h("h1", { id: "login-title" }, "EventLens"), pwForm, h("hr"), keyForm, status),
  );
  email.focus();
}

export function invitePage(main, { token, onLogin }) {
  const status = h("p", { class: "error-text", role: "alert" });
  const password = h("input", { type: "password", id: "invite-password", autocomplete: "new-password", required: true, minlength: 12 });
  const form = h(
    "form",
    { class: "login card", "aria-labelledby": "invite-title" },
    h("h1", { id: "invite-title" }, "Join EventLens"),
    h("p", null, "Choose a password (at least 12 characters). If your email has an account already, give its password."),
    field("Password", password),
    h("button", { type: "submit", class: "primary" }, "Accept invite"),
    status,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      session.clear();
      await api("POST", "/api/invites/accept", { token, password: password.value }, null);
      history.replaceState(null, "", "#/");
      onLogin();
    } catch (err) {
      status.textContent = describeError(err);
    }
  });
  clear(main).append(form);
  password.focus();
}

export function resetPage(main, { token, onDone }) {
  const status = h("p", { class: "error-text", role: "alert" });
  const password = h("input", { type: "password", id: "reset-password", autocomplete: "new-password", required: true, minlength: 12 });
  const form = h(
    "form",
    { class: "login card", "aria-labelledby": "reset-title" },
    h("h1", { id: "reset-title" }, "Reset your password"),
    field("New password", password),
    h("button", { type: "submit", class: "primary" }, "Set password"),
    status,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await api("POST", "/api/password_reset", { token, password: password.value }, null);
      history.replaceState(null, "", "#/");
      onDone("Password changed: sign in with it.");
    } catch (err) {
      status.textContent = describeError(err);
    }
  });
  clear(main).append(form);
  password.focus();
}

export async function keysPage(main, { projects, onAuthError }) {
  const list = h("tbody");
  const shown = h("div", { class: "status-text", role: "status" });
  const label = h("input", { type: "text", id: "key-label", required: true, maxlength: 200, placeholder: "e.g. nightly export" });
  const boxes = SCOPES.map((s) => h("input", { type: "checkbox", id: `scope-${s}`, value: s, checked: s === "query:read" }));
  const project = select({ id: "key-project" }, [["", "All my projects"], ...projects.map((p) => [p.id, p.name])], "");
  const form = h(
    "form",
    { class: "card", "aria-label": "New personal API key" },
    h("h2", null, "New key"),
    field("Label", label),
    h("fieldset", null, h("legend", null, "Scopes"), ...boxes.map((b) => h("label", { class: "check" }, b, ` ${b.value}`))),
    field("Only for project", project),
    h("button", { type: "submit", class: "primary" }, "Create key"),
    shown,
  );
  async function load() {
    try {
      const keys = await api("GET", "/api/me/keys");
      clear(list);
      for (const k of keys) {
        const revoke = h("button", { type: "button", class: "link" }, "Revoke");
        revoke.addEventListener("click", async () => {
          await api("DELETE", `/api/me/keys/${k.id}`);
          load();
        });
        list.append(h("tr", null, h("td", null, k.label), h("td", null, h("code", null, k.mask)), h("td", null, k.scopes.join(", ")), h("td", null, k.project_id ?? "all"), h("td", null, when(k.expires_at)), h("td", null, revoke)));
      }
    } catch (err) {
      if (err.status === 401) return onAuthError(err);
      shown.textContent = describeError(err);
    }
  }
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const body = { label: label.value.trim(), scopes: boxes.filter((b) => b.checked).map((b) => b.value) };
      if (project.value) body.project_id = Number(project.value);
      const made = await api("POST", "/api/me/keys", body);
      clear(shown).append("Your new key (shown this once, copy it now): ", h("code", { id: "new-key" }, made.key));
      load();
    } catch (err) {
      shown.textContent = describeError(err);
    }
  });
  clear(main).append(
    h("h1", null, "Personal API keys"),
    h("p", null, "A key can never do more than your role allows. Send it as ", h("code", null, "Authorization: Bearer phx_…"), "."),
    h("table", { class: "grid-table" }, h("thead", null, h("tr", null, ...["Label", "Key", "Scopes", "Project", "Expires", ""].map((t) => h("th", null, t)))), list),
    form,
  );
  load();
}

export async function membersPage(main, { orgId, me, onAuthError }) {
  const list = h("tbody");
  const status = h("p", { class: "status-text", role: "status" });
  const email = h("input", { type: "email", id: "invite-email", required: true });
  const role = select({ id: "invite-role" }, ROLES, "member");
  const invite = h(
    "form",
    { class: "card", "aria-label": "Invite someone" },
    h("h2", null, "Invite"),
    h("div", { class: "row" }, field("Email", email), field("Role", role)),
    h("button", { type: "submit", class: "primary" }, "Create invite link"),
    status,
  );
  async function load() {
    try {
      const members = await api("GET", `/api/orgs/${orgId}/members`);
      clear(list);
      for (const m of members) {
        const pick = select({ "aria-label": `Role of ${m.email}` }, ROLES, m.role);
        pick.addEventListener("change", async () => {
          try {
            await api("PATCH", `/api/orgs/${orgId}/members/${m.user_id}`, { role: pick.value });
            status.textContent = `${m.email} is now ${pick.value}.`;
          } catch (err) {
            status.textContent = describeError(err);
            pick.value = m.role;
          }
        });
        list.append(h("tr", null, h("td", null, m.email), h("td", null, m.user_id === me.user_id ? m.role : pick)));
      }
    } catch (err) {
      if (err.status === 401) return onAuthError(err);
      clear(main).append(h("h1", null, "Members"), h("div", { class: "error", role: "alert" }, describeError(err)));
    }
  }
  invite.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const made = await api("POST", `/api/orgs/${orgId}/invites`, { email: email.value.trim(), role: role.value });
      const link = `${location.origin}${made.link}`;
      const mailNote = made.mailed ? ` (mailed to ${email.value.trim()})` : made.mail_error ? ` (the mail was not sent: ${made.mail_error})` : "";
      clear(status).append(made.mailed ? "Mailed this one-time link (valid 7 days): " : "Send this one-time link (valid 7 days): ", h("code", { id: "invite-link" }, link), mailNote);
    } catch (err) {
      status.textContent = describeError(err);
    }
  });
  clear(main).append(h("h1", null, "Members"), h("table", { class: "grid-table" }, h("thead", null, h("tr", null, h("th", null, "Email"), h("th", null, "Role"))), list), invite);
  load();
}

export async function auditPage(main, { orgId, onAuthError }) {
  try {
    const entries = await api("GET", `/api/orgs/${orgId}/audit`);
    const rows = entries.map((e) => h("tr", null, h("td", null, when(e.at)), h("td", null, e.action), h("td", null, e.email ?? ""), h("td", null, e.target ?? ""), h("td", null, e.address ?? "")));
    clear(main).append(h("h1", null, "Audit log"), h("table", { class: "grid-table audit" }, h("thead", null, h("tr", null, ...["When", "What", "Who", "Target", "Address"].map((t) => h("th", null, t)))), h("tbody", null, rows)));
  } catch (err) {
    if (err.status === 401) return onAuthError(err);
    clear(main).append(h("h1", null, "Audit log"), h("div", { class: "error", role: "alert" }, describeError(err)));
  }
}
