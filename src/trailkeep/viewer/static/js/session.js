// The signed-in key (this tab's session storage only), API calls with it, the page header.

const TOKEN = "trailkeep.token";
const TENANT = "trailkeep.tenant";

export const token = () => sessionStorage.getItem(TOKEN);
export const tenant = () => sessionStorage.getItem(TENANT) || "";

export function signIn(value, tenantId) {
  sessionStorage.setItem(TOKEN, value);
  sessionStorage.setItem(TENANT, tenantId || "");
}

export function signOut() {
  sessionStorage.removeItem(TOKEN);
  sessionStorage.removeItem(TENANT);
  location.assign("/ui/signin");
}

/** A relative API path with query parameters (a Map or object of string | string[]). */
export function withParams(path, params) {
  const query = new URLSearchParams();
  for (const [name, value] of params instanceof Map ? params : Object.entries(params)) {
    for (const v of Array.isArray(value) ? value : [value]) if (v !== "" && v != null) query.append(name, v);
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

/** fetch() with the signed-in key. A rejected key sends the user back to sign in. */
export async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  headers.set("Authorization", `Bearer ${token()}`);
  const response = await fetch(path, { ...options, headers, credentials: "omit", cache: "no-store" });
  if (response.status === 401) {
    sessionStorage.removeItem(TOKEN);
    location.assign("/ui/signin?expired=1");
    throw new Error("signed out");
  }
  return response;
}

/** The JSON error of a failed API call: `{code, message}`. */
export async function apiError(response) {
  try {
    const body = await response.json();
    if (body && body.error) return body.error;
  } catch {
    // not JSON: fall through
  }
  return { code: `HTTP_${response.status}`, message: response.statusText || "request failed" };
}

/** Show the tenant and the sign-out button; send a visitor with no key to the sign-in page. */
export function requireSignIn() {
  if (!token()) {
    location.assign(`/ui/signin?next=${encodeURIComponent(location.pathname + location.search)}`);
    return false;
  }
  document.getElementById("who").hidden = false;
  document.getElementById("tenant").textContent = tenant() ? `Tenant ${tenant()}` : "";
  document.getElementById("signout").addEventListener("click", signOut);
  return true;
}

/** A text node-safe element builder: el("td", {class: "x"}, "text", child). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value == null) continue;
    if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child == null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}
