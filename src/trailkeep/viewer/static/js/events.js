// The event table: search (errors shown where they are), time range, facet chips, histogram,
// cursor paging, live mode and export. The page's state lives in its URL.

import { api, apiError, el, requireSignIn, withParams } from "./session.js";
import { startExport, offerBundle } from "./export.js";
import { follow } from "./live.js";
import { eventRow } from "./rows.js";
import { watchLog } from "./watch.js";

const FILTERS = ["category", "action", "outcome", "target.type", "actor.id"];
const url = new URL(location.href);

/** The selection of this page as API parameters: q, start, end and the facet filters. */
export function selection() {
  const params = new Map();
  for (const name of ["q", "start", "end"]) {
    const value = url.searchParams.get(name);
    if (value) params.set(name, value);
  }
  for (const name of FILTERS) {
    const values = url.searchParams.getAll(name);
    if (values.length) params.set(name, values);
  }
  return params;
}

function go(changes) {
  const next = new URL(url);
  for (const [name, value] of Object.entries(changes)) {
    if (value === null || value === "") next.searchParams.delete(name);
    else next.searchParams.set(name, value);
  }
  location.assign(next.pathname + next.search);
}

// -- errors in place ----------------------------------------------------------------------------

function showQueryError(error) {
  const box = document.getElementById("q-error");
  const input = document.getElementById("q");
  const match = /^at position (\d+): (.*)$/s.exec(error.message);
  const query = input.value;
  box.replaceChildren();
  box.hidden = false;
  input.setAttribute("aria-invalid", "true");
  if (!match) {
    box.append(el("p", {}, error.message));
    return;
  }
  const at = Math.min(Number(match[1]), query.length);
  const marked = query.slice(at, at + 1) || " ";
  box.dataset.position = String(at);
  box.append(
    el("p", { class: "query-line" },
      el("code", {}, query.slice(0, at), el("mark", { class: "at" }, marked), query.slice(at + 1))),
    el("p", {}, `Position ${at}: ${match[2]}`),
  );
  input.focus();
  input.setSelectionRange(at, Math.max(at, Math.min(at + 1, query.length)));
}

function showError(error) {
  if (error.code === "INVALID_QUERY") return showQueryError(error);
  const target = error.code === "INVALID_TIME" ? "time-error" : "list-status";
  document.getElementById(target).textContent = error.message;
  if (error.code === "INVALID_TIME") {
    // The message names the parameter first: "start: 'x' is not a time we can read; ..."
    for (const id of ["start", "end"]) {
      if (error.message.startsWith(`${id}:`)) document.getElementById(id).setAttribute("aria-invalid", "true");
    }
  }
}

// -- the table ----------------------------------------------------------------------------------

let cursor = null;

async function loadPage() {
  const status = document.getElementById("list-status");
  const more = document.getElementById("more");
  status.textContent = "Loading…";
  const params = selection();
  params.set("limit", "50");
  if (cursor) params.set("cursor", cursor);
  const response = await api(withParams("/v1/events", params));
  if (!response.ok) {
    status.textContent = "";
    return showError(await apiError(response));
  }
  const page = await response.json();
  const body = document.querySelector("#events tbody");
  body.append(...page.events.map((e) => eventRow(e)));
  cursor = page.next_cursor;
  more.hidden = !cursor;
  status.textContent = body.children.length ? `${body.children.length} events shown` : "No events match.";
}

// -- facets and histogram -----------------------------------------------------------------------

function chips(name, values) {
  const active = new Set(url.searchParams.getAll(name));
  const list = el("ul", { class: "chips", "aria-label": `${name} values` });
  for (const { value, count } of values) {
    if (value === null || active.has(value)) continue;
    const next = new URL(url);
    next.searchParams.append(name, value);
    list.append(el("li", {}, el("a", { class: "chip", href: next.pathname + next.search, dataset: { facet: name, value } },
      value, " ", el("span", { class: "count" }, String(count)))));
  }
  return list;
}

const WIDTH = { minute: 60e3, hour: 3600e3, day: 86400e3 };

function bucketEnd(start, bucket) {
  const t = new Date(start);
  if (bucket === "month") return new Date(Date.UTC(t.getUTCFullYear(), t.getUTCMonth() + 1, 1));
  return new Date(t.getTime() + WIDTH[bucket]);
}

const stamp = (date) => date.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");

function histogram(data) {
  const box = document.getElementById("histogram");
  box.replaceChildren();
  const buckets = data.buckets;
  if (!buckets.length) return box.append(el("p", { class: "muted" }, "No events in this range."));
  const top = Math.max(...buckets.map((b) => b.count));
  let from = null;
  const narrow = (a, b) => {
    const [i, j] = a <= b ? [a, b] : [b, a];
    go({ start: buckets[i].start, end: stamp(bucketEnd(buckets[j].start, data.bucket)) });
  };
  buckets.forEach((b, i) => {
    const label = `${b.count} events in the ${data.bucket} from ${b.start.replace("T", " ").slice(0, 16)} UTC`;
    const bar = el("button", { type: "button", class: "bar-button", "aria-label": label, title: label },
      el("span", { class: "bar-fill", style: null }));
    bar.firstChild.style.height = `${Math.max(4, Math.round((100 * b.count) / top))}%`;
    bar.addEventListener("pointerdown", (e) => {
      from = i;
      e.preventDefault();
      // A touch captures the pointer to where it began; release it so the drag can end elsewhere.
      if (bar.hasPointerCapture(e.pointerId)) bar.releasePointerCapture(e.pointerId);
    });
    bar.addEventListener("pointerenter", () => {
      if (from === null) return;
      box.querySelectorAll(".bar-button").forEach((node, k) =>
        node.classList.toggle("picked", k >= Math.min(from, i) && k <= Math.max(from, i)));
    });
    bar.addEventListener("pointerup", () => {
      if (from !== null) narrow(from, i);
      from = null;
    });
    bar.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        narrow(i, i);
      }
    });
    box.append(bar);
  });
  document.addEventListener("pointerup", () => {
    from = null; // a drag that ended outside the bars narrows nothing
    box.querySelectorAll(".picked").forEach((node) => node.classList.remove("picked"));
  });
}

async function loadFacets() {
  const response = await api(withParams("/v1/facets", selection()));
  if (!response.ok) return; // the table shows the error
  const data = await response.json();
  document.getElementById("total").textContent = `(${data.total} events)`;
  const facets = document.getElementById("facets");
  facets.replaceChildren();
  for (const [name, values] of Object.entries(data.facets)) {
    if (!values.length) continue;
    facets.append(el("div", { class: "facet" }, el("h3", { class: "small" }, name), chips(name, values)));
  }
  histogram(data.histogram);
}

// -- the form -----------------------------------------------------------------------------------

function wireForm() {
  const range = document.getElementById("range");
  range.addEventListener("change", () => {
    if (range.value === "custom") return document.getElementById("start").focus();
    document.getElementById("start").value = range.value;
    document.getElementById("end").value = "";
    document.getElementById("search").requestSubmit();
  });
  document.getElementById("search").addEventListener("submit", (e) => {
    // empty fields stay out of the URL
    for (const input of e.target.querySelectorAll("input[name]")) input.disabled = !input.value;
  });
  document.getElementById("active").addEventListener("click", (e) => {
    const chip = e.target.closest("[data-remove]");
    if (!chip) return;
    e.preventDefault();
    const next = new URL(url);
    const kept = next.searchParams.getAll(chip.dataset.remove).filter((v) => v !== chip.dataset.value);
    next.searchParams.delete(chip.dataset.remove);
    for (const v of kept) next.searchParams.append(chip.dataset.remove, v);
    location.assign(next.pathname + next.search);
  });
  document.getElementById("more").addEventListener("click", () => loadPage());
  document.getElementById("live").addEventListener("click", (e) => follow(e.currentTarget, selection()));
  document.getElementById("export").addEventListener("click", () => startExport(selection()));
}

if (requireSignIn()) {
  // On a phone the facets would push the table off the first screen: they start folded.
  if (matchMedia("(max-width: 700px)").matches) document.getElementById("facets-box").open = false;
  wireForm();
  loadPage();
  loadFacets();
  offerBundle();
  watchLog();
}
