/**
 * Canonical JSON: object keys sorted (UTF-16 order) at every level, undefined members dropped, so that
 * equal requests hash equally whatever their key order. Used for response-cache keys (harness) and by
 * the fixture endpoint to count requests.
 */
export function canonicalJson(value: unknown): string {
  // Fast path: rebuild only the objects whose keys are out of order and let the native
  // JSON.stringify do the rest. Integer-like keys ("50256" in logit_bias) are always enumerated
  // first by V8, so objects holding a key that starts with a digit take the slow path.
  indexLikeKey = false;
  const sorted = sortDeep(value);
  if (!indexLikeKey) return JSON.stringify(sorted) ?? 'null';
  return canonicalSlow(value);
}

let indexLikeKey = false;

function sortKeys(keys: string[]): boolean {
  let moved = false;
  for (let i = 1; i < keys.length; i++) {
    const k = keys[i] as string;
    let j = i - 1;
    while (j >= 0 && (keys[j] as string) > k) {
      keys[j + 1] = keys[j] as string;
      j--;
      moved = true;
    }
    keys[j + 1] = k;
  }
  return moved;
}

/** `value` with every object's keys in sorted order; shares every subtree that already is. */
function sortDeep(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      const s = sortDeep(item);
      if (s !== item) (out ??= value.slice())[i] = s;
    }
    return out ?? value;
  }
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj);
  let changed = sortKeys(keys);
  let vals: unknown[] | undefined;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i] as string;
    const c = k.charCodeAt(0);
    if (c >= 48 && c <= 57) indexLikeKey = true;
    const item = obj[k];
    const s = sortDeep(item);
    if (s !== item) changed = true;
    (vals ??= new Array<unknown>(keys.length))[i] = s;
  }
  if (!changed || vals === undefined) return value;
  const out: Record<string, unknown> = {};
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i] as string;
    if (k === '__proto__') Object.defineProperty(out, k, { value: vals[i], enumerable: true, writable: true, configurable: true });
    else out[k] = vals[i];
  }
  return out;
}

function canonicalSlow(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ',';
      const item: unknown = value[i];
      out += item === undefined || typeof item === 'function' ? 'null' : canonicalSlow(item);
    }
    return out + ']';
  }
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj);
  sortKeys(keys);
  let out = '{';
  let first = true;
  for (const k of keys) {
    const item = obj[k];
    if (item === undefined || typeof item === 'function') continue;
    if (!first) out += ',';
    first = false;
    out += JSON.stringify(k) + ':' + canonicalSlow(item);
  }
  return out + '}';
}
