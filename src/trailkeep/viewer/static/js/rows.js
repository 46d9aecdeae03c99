// One row of the event table, shared by the list and live mode.

import { el } from "./session.js";

const text = (v) => (typeof v === "string" || typeof v === "number" ? String(v) : "");

/** How an actor or target reads in one cell: its name, else email, else id (erased: skipped). */
const party = (p) =>
  p && typeof p === "object" ? [p.name, p.email, p.id].map(text).find(Boolean) || "" : text(p);

/** A table row for an event in wire form (`fresh`: just arrived live). */
export function eventRow(event, fresh = false) {
  const when = (event.timestamp || "").replace("T", " ").replace("Z", "");
  const outcome = event.outcome || "unknown";
  return el("tr", { class: fresh ? "fresh" : null, dataset: { id: event.id, seq: String(event.seq) } },
    el("td", { class: "time" }, el("a", { href: `/ui/events/${encodeURIComponent(event.id)}` }, when || event.id)),
    el("td", { "data-label": "Action" }, event.pruned ? el("span", { class: "badge pruned" }, "pruned") : event.action || ""),
    el("td", { "data-label": "Actor" }, party(event.actor)),
    el("td", { "data-label": "Target" }, [event.target && text(event.target.type), party(event.target)].filter(Boolean).join(" ")),
    el("td", { "data-label": "Outcome" }, el("span", { class: `outcome ${outcome}` }, outcome)),
    el("td", { class: "message", "data-label": "Message" }, text(event.message)));
}

