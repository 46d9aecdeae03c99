// Trust in the log across visits: the pinned verifier key, and the last checkpoint this browser
// saw per log origin (local storage). A checkpoint the server shows later must extend it —
// checked here with an RFC 9162 consistency proof — or the page warns loudly.

import { fromBase64, toBase64 } from "./bytes.js";
import { verifyConsistency } from "./merkle.js";
import { openCheckpoint, parseVerifierKey } from "./note.js";
import { api, apiError, withParams } from "./session.js";

const PIN = `trailkeep.pinned-key:${location.origin}`;
const SEEN = "trailkeep.checkpoint:";

export const pinnedKeyText = () => localStorage.getItem(PIN);

export function pinKey(text) {
  localStorage.setItem(PIN, text.trim());
}

/** The pinned key, pinning the server's on first use; null (and a warning) if it changed. */
export async function pinnedKey() {
  const served = await fetch("/v1/log/key", { cache: "no-store" }).then((r) => (r.ok ? r.text() : ""));
  let pinned = pinnedKeyText();
  if (!pinned && served.trim()) {
    pinKey(served);
    pinned = served.trim();
  }
  if (!pinned) throw new Error("no log key pinned and the server shows none");
  if (served.trim() && served.trim() !== pinned) {
    warn(
      `The server now shows another checkpoint key (${served.trim()}) than the one pinned in this ` +
        `browser (${pinned}). Checkpoints are verified against the pinned key.`,
    );
  }
  return parseVerifierKey(pinned);
}

function warn(message) {
  const banner = document.getElementById("consistency");
  banner.hidden = false;
  banner.dataset.consistency = "inconsistent";
  banner.textContent = `Warning: ${message}`;
}

function ok(message) {
  const banner = document.getElementById("consistency");
  if (banner.dataset.consistency === "inconsistent") return;
  banner.dataset.consistency = "consistent";
  banner.title = message;
}

function remembered(origin) {
  try {
    const seen = JSON.parse(localStorage.getItem(SEEN + origin) || "null");
    return seen && { size: BigInt(seen.size), root: fromBase64(seen.root), note: seen.note };
  } catch {
    return null;
  }
}

function remember(checkpoint) {
  const record = { size: checkpoint.size.toString(), root: toBase64(checkpoint.root), note: checkpoint.note };
  localStorage.setItem(SEEN + checkpoint.origin, JSON.stringify(record));
}

async function consistencyProof(from, to) {
  const response = await api(withParams("/v1/log/proof/consistency", { from: String(from), to: String(to) }));
  if (!response.ok) throw new Error((await apiError(response)).message);
  return (await response.json()).hashes.map(fromBase64);
}

/**
 * Compare a verified checkpoint with the last one this browser saw for its log, remember the
 * larger, and warn when the two cannot both be true. Returns a sentence saying what was found.
 */
export async function checkAgainstMemory(checkpoint) {
  const seen = remembered(checkpoint.origin);
  if (!seen) {
    remember(checkpoint);
    ok("first checkpoint seen for this log");
    return `first checkpoint seen for ${checkpoint.origin}; remembered`;
  }
  const [older, newer] = seen.size <= checkpoint.size ? [seen, checkpoint] : [checkpoint, seen];
  try {
    const proof = await consistencyProof(older.size, newer.size);
    await verifyConsistency(older.size, newer.size, proof, older.root, newer.root);
  } catch (err) {
    warn(
      `the server's checkpoint for ${checkpoint.origin} (size ${checkpoint.size}) is not consistent ` +
        `with the one this browser saw before (size ${seen.size}): ${err.message}. ` +
        "The log may have been rewritten or forked.",
    );
    return `INCONSISTENT with the checkpoint of size ${seen.size} seen before`;
  }
  if (checkpoint.size >= seen.size) remember(checkpoint);
  ok("consistent with the checkpoint seen before");
  return `consistent with the checkpoint of size ${seen.size} this browser saw before`;
}

/** Fetch, verify and compare the log's latest checkpoint (every page does this once). */
export async function watchLog() {
  try {
    const key = await pinnedKey();
    const response = await api("/v1/log/checkpoint");
    if (!response.ok) return;
    const checkpoint = await openCheckpoint(await response.text(), key);
    await checkAgainstMemory(checkpoint);
  } catch (err) {
    if (err.message !== "signed out") warn(`the log's checkpoint could not be verified: ${err.message}`);
  }
}
