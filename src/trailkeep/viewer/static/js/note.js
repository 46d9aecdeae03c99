// C2SP signed notes and tlog checkpoints (trailkeep.merkle.note, .keys, .checkpoint), checked
// with Ed25519: WebCrypto's where the browser has it, the vendored noble-ed25519 otherwise.

import { equal, fromBase64, sha256, subtle, utf8 } from "./bytes.js";

export class NoteError extends Error {}

const SIG_PREFIX = "\u2014 ";

/** Parse a verifier key string `<name>+<hex8 key id>+<base64(0x01 ‖ 32-byte key)>`. */
export async function parseVerifierKey(text) {
  // The base64 part may itself hold '+': only the first two separate fields.
  const match = /^([^+]+)\+([0-9a-f]{8})\+(.+)$/.exec(String(text).trim());
  if (!match) throw new NoteError("the pinned key is not a note verifier key (name+hex8+base64)");
  const [, name, idHex, blob] = match;
  let raw;
  try {
    raw = fromBase64(blob);
  } catch {
    throw new NoteError("the pinned key's last part is not base64");
  }
  if (raw.length !== 33 || raw[0] !== 1) throw new NoteError("the pinned key is not an Ed25519 key");
  const publicKey = raw.slice(1);
  const keyId = (await sha256(utf8(name), Uint8Array.of(10), raw)).slice(0, 4);
  if (Array.from(keyId, (b) => b.toString(16).padStart(2, "0")).join("") !== idHex) {
    throw new NoteError("the pinned key's id does not match its name and key");
  }
  return { name, keyId, publicKey, text: String(text).trim() };
}

/** Split a note into its signed text and its signature lines. */
export function parseNote(note) {
  if (typeof note !== "string" || !note.endsWith("\n")) throw new NoteError("a note ends with a newline");
  const split = note.lastIndexOf("\n\n");
  if (split < 0) throw new NoteError("a note has a blank line before its signatures");
  const text = note.slice(0, split + 1);
  const lines = note.slice(split + 2, -1).split("\n");
  const signatures = lines.map((line) => {
    if (!line.startsWith(SIG_PREFIX)) throw new NoteError(`not a signature line: ${line.slice(0, 60)}`);
    const [name, blob, extra] = line.slice(SIG_PREFIX.length).split(" ");
    if (!name || !blob || extra !== undefined) throw new NoteError("malformed signature line");
    const raw = fromBase64(blob);
    if (raw.length < 5) throw new NoteError("a signature line is too short");
    return { name, keyId: raw.slice(0, 4), signature: raw.slice(4) };
  });
  return { text, signatures };
}

let noble = null;

/** Verify an Ed25519 signature; returns which implementation did it. */
export async function ed25519Verify(publicKey, signature, message, { forceFallback = false } = {}) {
  if (!forceFallback) {
    try {
      const key = await subtle().importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
      return { ok: await subtle().verify({ name: "Ed25519" }, key, signature, message), by: "WebCrypto Ed25519" };
    } catch (err) {
      if (err && err.name !== "NotSupportedError" && err.name !== "DataError") throw err;
    }
  }
  noble = noble || (await import("../vendor/noble-ed25519.js"));
  let ok;
  try {
    ok = await noble.verifyAsync(signature, message, publicKey, { zip215: false });
  } catch {
    ok = false;
  }
  return { ok, by: "noble-ed25519 (vendored)" };
}

/** Open a checkpoint note: check its signature by `key`, then parse its body. */
export async function openCheckpoint(note, key, options = {}) {
  const { text, signatures } = parseNote(note);
  const mine = signatures.filter((s) => s.name === key.name && equal(s.keyId, key.keyId));
  if (!mine.length) throw new NoteError(`the checkpoint carries no signature by the pinned key ${key.name}`);
  const { ok, by } = await ed25519Verify(key.publicKey, mine[0].signature, utf8(text), options);
  if (!ok) throw new NoteError("the checkpoint's signature does not verify with the pinned key");
  const body = text.split("\n");
  const [origin, sizeText, rootText] = body;
  if (!origin || !/^(0|[1-9][0-9]*)$/.test(sizeText || "")) throw new NoteError("malformed checkpoint body");
  const root = fromBase64(rootText || "");
  if (root.length !== 32) throw new NoteError("a checkpoint root is 32 bytes");
  return { origin, size: BigInt(sizeText), root, note, signedBy: by };
}

