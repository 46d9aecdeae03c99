// An event's leaf hash recomputed from the event, its salts and its erased fields'
// commitments: DESIGN §3, exactly as trailkeep.model.evidence.event_leaf_hash does it.

import { fromBase64, fromHex, sha256, toHex, utf8 } from "./bytes.js";
import { jcs } from "./jcs.js";
import { leafHash } from "./merkle.js";

export const COMMITTED_OBJECTS = ["actor", "target", "source", "metadata"];
const POSITIONAL = new Set(["id", "tenant_id", "seq", "received_at", "hash"]);
const RECEIVED_AT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

export class FieldError extends Error {
  constructor(path, message) {
    super(`${path}: ${message}`);
    this.path = path;
  }
}

const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

/** Whether a value is the erasure marker `{"redacted": true}`. */
export const isRedactedMarker = (v) =>
  isObject(v) && Object.keys(v).length === 1 && v.redacted === true;

/** The committed field paths of an event in wire form: `{path: value}`. */
export function fieldPaths(event) {
  const paths = new Map();
  for (const [name, value] of Object.entries(event)) {
    if (value === null || POSITIONAL.has(name)) continue;
    if (name.includes(".")) throw new FieldError(name, "a top-level name holds a '.'");
    if (isObject(value) && COMMITTED_OBJECTS.includes(name)) {
      for (const [key, item] of Object.entries(value)) {
        if (item !== null) paths.set(`${name}.${key}`, item);
      }
    } else {
      paths.set(name, value);
    }
  }
  return paths;
}

/** Every field's commitment, by path; erased fields take theirs from `redacted` (hex). */
export async function commitments(event, salts, redacted) {
  const values = fieldPaths(event);
  for (const path of Object.keys(salts)) {
    if (!values.has(path)) throw new FieldError(path, "a salt but no value (the field was removed)");
  }
  for (const path of Object.keys(redacted)) {
    if (!values.has(path)) throw new FieldError(path, "a redaction commitment but no redacted field");
  }
  const out = Object.create(null); // a field named __proto__ stays a field
  for (const [path, value] of values) {
    if (Object.hasOwn(salts, path)) {
      const salt = fromBase64(salts[path]);
      if (salt.length !== 16) throw new FieldError(path, `a salt is 16 bytes, got ${salt.length}`);
      out[path] = toHex(await sha256(salt, utf8(jcs(value))));
    } else if (isRedactedMarker(value) && Object.hasOwn(redacted, path)) {
      out[path] = toHex(fromHex(redacted[path]));
      if (out[path].length !== 64) throw new FieldError(path, "a commitment is 32 bytes");
    } else {
      throw new FieldError(path, "no salt and no redaction commitment");
    }
  }
  return out;
}

/** The canonical leaf input of DESIGN §3 as text. */
export function leafInput(event, commitmentsByPath) {
  const { tenant_id: tenant, seq, id, received_at: receivedAt } = event;
  if (typeof tenant !== "string" || typeof id !== "string") throw new FieldError("id", "ids are strings");
  if (!Number.isSafeInteger(seq) || seq < 0) throw new FieldError("seq", "not a non-negative integer");
  if (typeof receivedAt !== "string" || !RECEIVED_AT.test(receivedAt)) {
    throw new FieldError("received_at", "not in the fixed YYYY-MM-DDTHH:MM:SS.ffffffZ form");
  }
  return jcs({ v: 1, tenant_id: tenant, seq, id, received_at: receivedAt, commitments: commitmentsByPath });
}

/** The RFC 9162 leaf hash of an event, from what the proof endpoint returns beside it. */
export async function eventLeafHash(event, salts = {}, redacted = {}) {
  const committed = await commitments(event, salts, redacted);
  return leafHash(utf8(leafInput(event, committed)));
}
