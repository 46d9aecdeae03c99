// The event page: every field, the change as a diff, metadata as a tree, erased and pruned
// fields marked, and the event verified in this browser.

import { toHex } from "./bytes.js";
import { isRedactedMarker } from "./evidence.js";
import { api, apiError, el, requireSignIn } from "./session.js";
import { verifyEvidence, verifyPrunedLeaf } from "./verify-event.js";
import { checkAgainstMemory, pinnedKey, watchLog } from "./watch.js";

const id = document.getElementById("event-id").textContent;
const box = document.getElementById("verification");
const forceFallback = new URLSearchParams(location.search).get("ed25519") === "fallback";

const SUMMARY = ["id", "seq", "timestamp", "received_at", "action", "category", "outcome", "message",
  "session_id", "request_id", "trace_id", "idempotency_key", "tenant_id", "hash"];
const PARTIES = ["actor", "target", "source"];
const SHOWN_ELSEWHERE = new Set([...SUMMARY, ...PARTIES, "old", "new", "metadata"]);

function setState(state, label, reason = "") {
  box.dataset.verification = state;
  box.querySelector(".label").textContent = label;
  box.querySelector(".reason").textContent = reason;
}

function addStep(text, good = true) {
  box.querySelector("ol").append(el("li", { class: good ? "good" : "bad" }, text));
}

// -- rendering ----------------------------------------------------------------------------------

const erasedBadge = () => el("span", { class: "badge erased", title: "Erased: value and salt deleted, commitment kept" }, "erased");

function erased(path, value, redacted) {
  return isRedactedMarker(value) && Object.hasOwn(redacted, path);
}

function valueNode(value) {
  if (value === null || value === undefined) return el("span", { class: "muted" }, "—");
  if (typeof value === "object") return el("code", { class: "json" }, JSON.stringify(value));
  return el("span", { class: "value" }, String(value));
}

function row(list, name, value, isErased) {
  list.append(el("dt", {}, name), el("dd", {}, isErased ? erasedBadge() : valueNode(value)));
}

function renderFields(event, redacted) {
  const summary = document.getElementById("summary");
  for (const name of SUMMARY) {
    if (event[name] !== undefined) row(summary, name, event[name], erased(name, event[name], redacted));
  }
  for (const [name, value] of Object.entries(event)) {
    if (!SHOWN_ELSEWHERE.has(name)) row(summary, name, value, erased(name, value, redacted));
  }
  for (const party of PARTIES) {
    const list = document.getElementById(party);
    const value = event[party];
    if (value && typeof value === "object" && !Array.isArray(value) && !isRedactedMarker(value)) {
      for (const [key, item] of Object.entries(value)) row(list, key, item, erased(`${party}.${key}`, item, redacted));
    } else if (value !== undefined) {
      row(list, party, value, erased(party, value, redacted));
    }
    if (!list.children.length) list.replaceWith(el("p", { class: "muted", id: party }, "none"));
  }
}

function flatten(value, prefix, out) {
  if (value !== null && typeof value === "object" && Object.keys(value).length) {
    for (const [key, item] of Object.entries(value)) flatten(item, prefix ? `${prefix}.${key}` : key, out);
  } else {
    out.set(prefix || "(value)", value);
  }
  return out;
}

function renderDiff(event, redacted) {
  if (event.old === undefined && event.new === undefined) return;
  document.getElementById("change-card").hidden = false;
  const body = document.querySelector("#diff tbody");
  const side = (name) => (erased(name, event[name], redacted) ? null : flatten(event[name], "", new Map()));
  const before = side("old");
  const after = side("new");
  const paths = [...new Set([...(before || new Map()).keys(), ...(after || new Map()).keys()])].sort();
  for (const path of paths) {
    const a = before && before.get(path);
    const b = after && after.get(path);
    const kind = !before || !after ? "erased" : !before.has(path) ? "added" : !after.has(path) ? "removed"
      : JSON.stringify(a) === JSON.stringify(b) ? "same" : "changed";
    body.append(el("tr", { class: kind, dataset: { change: kind } },
      el("th", { scope: "row" }, path),
      el("td", {}, before ? (before.has(path) ? valueNode(a) : "") : erasedBadge()),
      el("td", {}, after ? (after.has(path) ? valueNode(b) : "") : erasedBadge())));
  }
  if (!paths.length) body.append(el("tr", {}, el("td", { colspan: 3 }, before && after ? "no fields" : "erased")));
}

function tree(value, path, redacted) {
  if (value === null || typeof value !== "object") return valueNode(value);
  const list = el("ul", {});
  for (const [key, item] of Object.entries(value)) {
    const here = `${path}.${key}`;
    if (erased(here, item, redacted)) {
      list.append(el("li", {}, el("span", { class: "key" }, key), " ", erasedBadge()));
    } else if (item !== null && typeof item === "object") {
      list.append(el("li", {}, el("details", { open: true }, el("summary", {}, el("span", { class: "key" }, key),
        el("span", { class: "muted" }, Array.isArray(item) ? ` [${item.length}]` : ` {${Object.keys(item).length}}`)),
        tree(item, here, {}))));
    } else {
      list.append(el("li", {}, el("span", { class: "key" }, key), ": ", valueNode(item)));
    }
  }
  return list;
}

function renderMetadata(event, redacted) {
  if (event.metadata === undefined) return;
  document.getElementById("meta-card").hidden = false;
  const target = document.getElementById("metadata");
  target.append(erased("metadata", event.metadata, redacted) ? erasedBadge() : tree(event.metadata, "metadata", redacted));
}

function renderEvent(event, redacted = {}) {
  document.getElementById("event").hidden = false;
  renderFields(event, redacted);
  renderDiff(event, redacted);
  renderMetadata(event, redacted);
}

function integrity(facts) {
  const list = document.getElementById("integrity");
  for (const [name, value] of facts) row(list, name, value, false);
}

// -- loading and verifying ----------------------------------------------------------------------

/** The stub of a pruned event: its place in the log, without content. The verdict is the caller's:
 * a page with the leaf's proof stays pending until that proof is checked. */
function renderPruned(event) {
  document.getElementById("event").hidden = false;
  integrity([["seq", event.seq], ["leaf hash", event.hash]]);
  document.getElementById("summary").append(el("dt", {}, "id"), el("dd", {}, event.id),
    el("dt", {}, "content"), el("dd", {}, el("span", { class: "badge pruned" }, "pruned"),
      " removed by the tenant's retention; its place in the log (seq and leaf hash) is kept"));
}

function showPruned(event) {
  renderPruned(event);
  setState("pruned", "Pruned", "This event's content was removed by retention, so it cannot be recomputed.");
}

async function showPrunedWithProof(evidence) {
  renderPruned(evidence.event);
  try {
    const key = await pinnedKey();
    const { checkpoint } = await verifyPrunedLeaf(evidence, key, addStep, { forceFallback });
    setState("pruned", "Pruned",
      `This event's content was removed by retention; its leaf is still at index ${evidence.leaf_index} of the log ${checkpoint.origin}, signed by the pinned key.`);
  } catch (err) {
    addStep(err.message, false);
    setState("failed", "Verification failed", `Pruned, and its leaf does not verify: ${err.message}`);
  }
}

/** How long a page waits for the checkpoint of an event that was just written. */
const CHECKPOINT_WAIT_MS = 30000;

/** The proof, waiting (the page stays "pending") while the server answers 409
 * NOT_YET_CHECKPOINTED: the next checkpoint is signed within about a second. */
async function fetchProof() {
  const deadline = Date.now() + CHECKPOINT_WAIT_MS;
  for (;;) {
    const response = await api(`/v1/events/${encodeURIComponent(id)}/proof`);
    if (response.ok || response.status !== 409 || Date.now() > deadline) return response;
    const err = await apiError(response.clone());
    if (err.code !== "NOT_YET_CHECKPOINTED") return response;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

async function load() {
  const response = await fetchProof();
  if (!response.ok) {
    const plain = await api(`/v1/events/${encodeURIComponent(id)}`);
    if (plain.ok) {
      const event = await plain.clone().json();
      if (event.pruned) return showPruned(event);
      renderEvent(event);
      const err = await apiError(response);
      return setState("failed", "Not verified", `The server gave no proof for this event: ${err.message}`);
    }
    const err = await apiError(plain);
    document.getElementById("event-status").textContent = err.message;
    return setState("failed", "Not verified", err.message);
  }
  const evidence = await response.json();
  if (evidence.event.pruned) return showPrunedWithProof(evidence);
  renderEvent(evidence.event, evidence.redacted || {});
  try {
    const key = await pinnedKey();
    const { leaf, checkpoint } = await verifyEvidence(evidence, key, addStep, { forceFallback });
    const memory = await checkAgainstMemory(checkpoint);
    addStep(`checkpoint ${memory}`, !memory.startsWith("INCONSISTENT"));
    integrity([["leaf index", evidence.leaf_index], ["leaf hash", toHex(leaf)], ["tree size", checkpoint.size],
      ["log", checkpoint.origin], ["root", toHex(checkpoint.root)], ["signed by", `${key.text} (${checkpoint.signedBy})`]]);
    setState("verified", "Verified in your browser",
      `In the log ${checkpoint.origin} at index ${evidence.leaf_index} of ${checkpoint.size}, signed by the pinned key.`);
  } catch (err) {
    addStep(err.message, false);
    setState("failed", "Verification failed", err.message);
  }
}

if (requireSignIn()) {
  load().catch((err) => setState("failed", "Verification failed", err.message));
  watchLog();
}
