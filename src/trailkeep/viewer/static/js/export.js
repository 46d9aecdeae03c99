// Export: run an export job (POST /v1/exports) for the page's selection, then download the
// file with progress, counted in events as the file streams in.

import { api, apiError } from "./session.js";

const status = () => document.getElementById("export-status");
const bar = () => document.getElementById("export-progress");

/** Offer the `bundle` format when this server's export API accepts it. */
export async function offerBundle() {
  try {
    const schema = await fetch("/openapi.json").then((r) => r.json());
    const format = schema.components.schemas.ExportIn.properties.format;
    const values = format.enum || (format.anyOf || []).flatMap((f) => f.enum || (f.const ? [f.const] : []));
    if (values.includes("bundle")) {
      document.getElementById("export-format").append(new Option("Bundle (verifies offline)", "bundle"));
    }
  } catch {
    // no schema: the three formats every server has
  }
}

function body(params, format) {
  const out = { format };
  for (const [name, value] of params) out[name] = value;
  return out;
}

async function total(job) {
  if (job.events !== null && job.events !== undefined) return job.events;
  const response = await api(`/v1/exports/${encodeURIComponent(job.id)}?count=true`);
  return response.ok ? (await response.json()).events : null;
}

function filename(response, job) {
  const match = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "");
  return match ? match[1] : `${job.id}.${job.format}`;
}

async function download(job, expected) {
  const response = await api(job.download_url);
  if (!response.ok) throw new Error((await apiError(response)).message);
  const reader = response.body.getReader();
  const chunks = [];
  let lines = 0;
  let bytes = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    chunks.push(value);
    bytes += value.length;
    for (const b of value) if (b === 10) lines += 1;
    const events = job.format === "json" ? null : Math.max(0, lines - 1);
    if (expected && events !== null) bar().value = Math.min(1, events / expected);
    status().textContent = events === null ? `${bytes} bytes` : `${events} of ${expected ?? "?"} events`;
  }
  return { blob: new Blob(chunks, { type: response.headers.get("Content-Type") || "application/octet-stream" }), name: filename(response, job) };
}

/** Create the export, download it with progress, and hand the file to the browser. */
export async function startExport(params) {
  const button = document.getElementById("export");
  const format = document.getElementById("export-format").value;
  button.disabled = true;
  bar().hidden = false;
  bar().value = 0;
  status().textContent = "Creating the export…";
  try {
    const response = await api("/v1/exports", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body(params, format)),
    });
    if (!response.ok) throw new Error((await apiError(response)).message);
    const job = await response.json();
    const expected = await total(job);
    const { blob, name } = await download(job, expected);
    bar().value = 1;
    const link = Object.assign(document.createElement("a"), { href: URL.createObjectURL(blob), download: name });
    document.body.append(link);
    link.click();
    link.remove();
    status().textContent = `Downloaded ${name}${expected !== null ? ` (${expected} events)` : ""}`;
    status().dataset.done = name;
  } catch (err) {
    status().textContent = `Export failed: ${err.message}`;
  } finally {
    button.disabled = false;
  }
}
