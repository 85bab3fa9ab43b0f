/**
 * Helpers over plain YAML trees (objects, arrays, scalars): key paths, lookup, deep merge. Key paths are
 * written as users write overrides (`evaluation.tasks.0.name`) and printed as they read in messages
 * (`evaluation.tasks[0].name`).
 */
export type Tree = Record<string, unknown>;

/** Hydra/OmegaConf's marker for a value that must be supplied. */
export const MISSING = '???';

export function isTree(value: unknown): value is Tree {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `a.b.0.c` or `a.b[0].c` → ['a', 'b', '0', 'c']; empty segments are errors (caller reports). */
export function parseKeyPath(key: string): string[] | undefined {
  const segments = key.replace(/\[(\d+)\]/g, '.$1').split('.');
  return segments.every((s) => s.length > 0) ? segments : undefined;
}

/** Message form: `a.b[0].c`, with keys that are not identifiers quoted (`mounts["./cache"]`). */
export function formatKeyPath(segments: readonly (string | number)[]): string {
  let out = '';
  for (const seg of segments) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z0-9_-]+$/.test(seg)) out += out ? `.${seg}` : seg;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/** Index into an array by a path segment, or undefined when the segment is not a valid index. */
export function arrayIndex(arr: readonly unknown[], segment: string | number): number | undefined {
  const index = typeof segment === 'number' ? segment : /^\d+$/.test(segment) ? Number(segment) : NaN;
  return Number.isInteger(index) && index < arr.length ? index : undefined;
}

/** Child of a container by one segment (undefined when absent). */
export function child(container: unknown, segment: string | number): { found: boolean; value?: unknown } {
  if (Array.isArray(container)) {
    const index = arrayIndex(container, segment);
    return index === undefined ? { found: false } : { found: true, value: container[index] };
  }
  if (isTree(container) && Object.hasOwn(container, segment)) return { found: true, value: container[segment] };
  return { found: false };
}

/** Segments as printed: array positions become numbers so they format as `[i]`. */
export function typedSegments(root: unknown, segments: readonly string[]): (string | number)[] {
  const out: (string | number)[] = [];
  let node = root;
  for (const seg of segments) {
    out.push(Array.isArray(node) && /^\d+$/.test(seg) ? Number(seg) : seg);
    node = child(node, seg).value;
  }
  return out;
}

/**
 * OmegaConf merge: mappings merge key by key, anything else (lists included) is replaced, and a `???` on
 * the right never erases a value on the left (a group saying "required" must not undo what the user set).
 */
export function deepMerge(base: unknown, over: unknown): unknown {
  if (over === MISSING && base !== undefined) return base;
  if (!isTree(base) || !isTree(over)) return structuredClone(over);
  const out: Tree = structuredClone(base);
  for (const [key, value] of Object.entries(over)) out[key] = deepMerge(out[key], value);
  return out;
}

/** Every leaf path whose value is still `???`, in document order. */
export function missingPaths(node: unknown, path: (string | number)[] = []): string[] {
  if (node === MISSING) return [formatKeyPath(path)];
  if (Array.isArray(node)) return node.flatMap((v, i) => missingPaths(v, [...path, i]));
  if (isTree(node)) return Object.entries(node).flatMap(([k, v]) => missingPaths(v, [...path, k]));
  return [];
}
