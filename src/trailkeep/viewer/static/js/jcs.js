// RFC 8785 (JCS) canonical JSON, as trailkeep hashes it (DESIGN §3, model/canonical.py).
//
// ECMAScript already writes what JCS asks for: JSON.stringify escapes a string exactly as JCS
// does (", \ and U+0000..U+001F, with \b \t \n \f \r or lowercase \u00xx; everything else raw)
// and prints numbers with Number.prototype.toString, which JCS adopted. What JCS adds is the
// key order: by UTF-16 code units, which is what Array.prototype.sort compares by default.

/** Thrown for a value that has no canonical form (NaN, a lone surrogate, a function...). */
export class CanonicalError extends Error {}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function string(text) {
  if (LONE_SURROGATE.test(text)) throw new CanonicalError("a string holds a lone surrogate");
  return JSON.stringify(text);
}

function number(value) {
  if (!Number.isFinite(value)) throw new CanonicalError(`${value} has no JSON form`);
  return JSON.stringify(value);
}

/** The canonical JSON text of a value parsed from JSON. */
export function jcs(value) {
  if (value === null) return "null";
  switch (typeof value) {
    case "boolean":
      return value ? "true" : "false";
    case "number":
      return number(value);
    case "string":
      return string(value);
    case "object":
      if (Array.isArray(value)) return `[${value.map(jcs).join(",")}]`;
      return `{${Object.keys(value)
        .sort()
        .map((key) => `${string(key)}:${jcs(value[key])}`)
        .join(",")}}`;
    default:
      throw new CanonicalError(`a ${typeof value} has no JSON form`);
  }
}

/** The UTF-8 bytes of the canonical JSON of a value. */
export function jcsBytes(value) {
  return new TextEncoder().encode(jcs(value));
}
