// The in-browser verification of one event: recompute its field commitments, its leaf and the
// root its inclusion proof leads to, and check the checkpoint's signature with the pinned key.

import { equal, fromBase64, fromHex, toHex } from "./bytes.js";
import { eventLeafHash } from "./evidence.js";
import { verifyInclusion } from "./merkle.js";
import { openCheckpoint } from "./note.js";

/**
 * Verify the proof endpoint's answer (`{event, salts, redacted, leaf_index, hashes,
 * checkpoint}`) against `key`; `step(text)` is told each check that passed. Throws on the
 * first check that fails, with a message saying which.
 */
export async function verifyEvidence(evidence, key, step = () => {}, options = {}) {
  const event = evidence.event;
  const leaf = await eventLeafHash(event, evidence.salts || {}, evidence.redacted || {});
  const fields = Object.keys(evidence.salts || {}).length;
  const erased = Object.keys(evidence.redacted || {}).length;
  step(`recomputed ${fields} field commitments${erased ? ` (and kept ${erased} of erased fields)` : ""} with SHA-256`);
  if (typeof event.hash === "string" && event.hash !== toHex(leaf)) {
    throw new Error(`the event's content does not match its hash: it recomputes to leaf ${toHex(leaf)}, the server says ${event.hash}`);
  }
  if (evidence.leaf_hash && !equal(fromBase64(evidence.leaf_hash), leaf)) {
    throw new Error("the recomputed leaf is not the one the proof is for");
  }
  step(`recomputed the leaf hash ${toHex(leaf).slice(0, 16)}…`);
  if (evidence.leaf_index !== event.seq) throw new Error(`the proof is for leaf ${evidence.leaf_index}, the event is ${event.seq}`);
  const checkpoint = await openCheckpoint(evidence.checkpoint, key, options);
  step(`checked the checkpoint's Ed25519 signature by ${key.name} (${checkpoint.signedBy})`);
  if (!checkpoint.origin.endsWith(`/${event.tenant_id}`)) {
    throw new Error(`the checkpoint ${checkpoint.origin} is not the log of tenant ${event.tenant_id}`);
  }
  await verifyInclusion(event.seq, checkpoint.size, leaf, evidence.hashes.map(fromBase64), checkpoint.root);
  step(`recomputed the root of the ${checkpoint.size}-leaf tree from ${evidence.hashes.length} proof hashes: it is the signed one`);
  return { leaf, checkpoint };
}

/**
 * For a pruned event (content gone, `{id, seq, hash, pruned: true}`): prove that its stored
 * leaf hash is still at its place in the signed log. Nothing about its content can be checked.
 */
export async function verifyPrunedLeaf(evidence, key, step = () => {}, options = {}) {
  const event = evidence.event;
  const leaf = fromHex(event.hash);
  if (leaf.length !== 32) throw new Error("a pruned event's leaf hash is 32 bytes");
  if (evidence.leaf_index !== event.seq) throw new Error(`the proof is for leaf ${evidence.leaf_index}, the event is ${event.seq}`);
  const checkpoint = await openCheckpoint(evidence.checkpoint, key, options);
  step(`checked the checkpoint's Ed25519 signature by ${key.name} (${checkpoint.signedBy})`);
  await verifyInclusion(event.seq, checkpoint.size, leaf, evidence.hashes.map(fromBase64), checkpoint.root);
  step(`the pruned event's leaf ${event.hash.slice(0, 16)}… is at index ${event.seq} of the signed ${checkpoint.size}-leaf tree`);
  return { leaf, checkpoint };
}
