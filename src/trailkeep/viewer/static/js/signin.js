// The sign-in form: check the key against the API, learn its tenant, pin the log key.

import { parseVerifierKey } from "./note.js";
import { apiError, signIn } from "./session.js";
import { pinKey } from "./watch.js";

const form = document.getElementById("signin-form");
const error = document.getElementById("signin-error");
const params = new URLSearchParams(location.search);

if (params.get("expired")) error.textContent = "The server did not accept the key; sign in again.";

function fail(message) {
  error.textContent = message;
  document.getElementById("token").setAttribute("aria-invalid", "true");
  document.getElementById("token").focus();
}

/** The tenant a reader key belongs to: the origin of its log's checkpoint ends with it. */
async function tenantOf(value) {
  const response = await fetch("/v1/log/checkpoint", {
    headers: { Authorization: `Bearer ${value}` },
    credentials: "omit",
    cache: "no-store",
  });
  if (response.ok) {
    const origin = (await response.text()).split("\n", 1)[0];
    return { tenant: origin.slice(origin.lastIndexOf("/") + 1) };
  }
  if (response.status === 404) return { tenant: "" }; // a log with no event yet
  const err = await apiError(response);
  if (response.status === 401) return { error: "This key is not valid on this server." };
  if (response.status === 403) return { error: `This key cannot read events (${err.message}).` };
  return { error: `The server refused: ${err.message}` };
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const value = form.token.value.trim();
  if (!value) return fail("Enter an API key.");
  const pin = form.pin.value.trim();
  if (pin) {
    try {
      await parseVerifierKey(pin);
    } catch (err) {
      return fail(err.message);
    }
  }
  const found = await tenantOf(value);
  if (found.error) return fail(found.error);
  if (pin) pinKey(pin);
  signIn(value, found.tenant);
  const next = params.get("next");
  location.assign(next && next.startsWith("/ui/") ? next : "/ui/");
});
