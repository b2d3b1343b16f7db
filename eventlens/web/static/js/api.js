// The JSON API client. Two ways in: the login session (an HttpOnly cookie the page never
// sees, plus the readable eventlens_csrf cookie whose value goes into X-CSRF-Token on every
// write), or an API key, which lives in sessionStorage (gone when the tab closes) and is sent
// only as an Authorization header, never in a URL.

const KEY = "eventlens.apiKey";
const CSRF_COOKIE = "eventlens_csrf";

function csrfToken() {
  for (const part of document.cookie.split(";")) {
    const [name, ...rest] = part.trim().split("=");
    if (name === CSRF_COOKIE) return decodeURIComponent(rest.join("="));
  }
  return null;
}

export const session = {
  get key() {
    return sessionStorage.getItem(KEY);
  },
  /** A login session may exist (its CSRF cookie is there); GET /api/me says for sure. */
  get maybeCookie() {
    return csrfToken() !== null;
  },
  set(key) {
    sessionStorage.setItem(KEY, key);
  },
  clear() {
    sessionStorage.removeItem(KEY);
    document.cookie = `${CSRF_COOKIE}=; Max-Age=0; path=/; SameSite=Lax`;
  },
};

export class ApiError extends Error {
  constructor(status, body) {
    super(body.detail || `HTTP ${status}`);
    this.status = status;
    this.type = body.type || "Error";
    this.detail = body.detail || `HTTP ${status}`;
    this.field = body.field || null;
  }
}

/** fetch JSON from the API; throws ApiError (status 0 when the server cannot be reached). */
export async function api(method, path, body, key = session.key) {
  const headers = { Accept: "application/json" };
  if (key) headers.Authorization = `Bearer ${key}`;
  else if (!["GET", "HEAD"].includes(method) && csrfToken()) headers["X-CSRF-Token"] = csrfToken();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "same-origin",
    });
  } catch (err) {
    throw new ApiError(0, { type: "NetworkError", detail: `cannot reach the server (${err.message})` });
  }
  if (res.status === 204) return null;
  const text = await res.text();
  let data;
  try {
    data = JSON.parse(text);
  } catch {
    data = { type: "HTTPError", detail: `HTTP ${res.status}: ${text.slice(0, 200)}` };
  }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

/** Where in the builder an error's `field` points, in words ("Filter 2", "Series 1 filter 1"). */
export function fieldInWords(field) {
  if (!field) return null;
  const f = field.replace(/^query\./, "");
  let m = f.match(/^series\[(\d+)\]\.properties\[(\d+)\]/);
  if (m) return `Series ${+m[1] + 1}, filter ${+m[2] + 1}`;
  m = f.match(/^properties\[(\d+)\]/);
  if (m) return `Filter ${+m[1] + 1}`;
  m = f.match(/^series\[(\d+)\]/);
  if (m) return `Series ${+m[1] + 1}`;
  if (f.startsWith("breakdownFilter")) return "Breakdown";
  if (f.startsWith("dateRange")) return "Date range";
  if (f.startsWith("funnelsFilter")) return "Funnel options";
  if (f.startsWith("retentionFilter")) return "Retention options";
  return null;
}

/** One readable sentence for an error from `api` (or any exception). */
export function describeError(err) {
  if (!(err instanceof ApiError)) return `Unexpected error: ${err.message || err}`;
  const where = fieldInWords(err.field);
  return where ? `${where}: ${err.detail}` : err.detail;
}

/** Send a text body (e.g. a CSV upload) and read the JSON answer, like `api`. */
export async function apiText(method, path, text, contentType, key = session.key) {
  const headers = { Accept: "application/json", "Content-Type": contentType };
  if (key) headers.Authorization = `Bearer ${key}`;
  else if (csrfToken()) headers["X-CSRF-Token"] = csrfToken();
  let res;
  try {
    res = await fetch(path, { method, headers, body: text, cache: "no-store", credentials: "same-origin" });
  } catch (err) {
    throw new ApiError(0, { type: "NetworkError", detail: `cannot reach the server (${err.message})` });
  }
  const body = await res.text();
  let data;
  try {
    data = JSON.parse(body);
  } catch {
    data = { type: "HTTPError", detail: `HTTP ${res.status}: ${body.slice(0, 200)}` };
  }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}
