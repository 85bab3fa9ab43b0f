/** "Did you mean" helpers for unknown keys and task names. */

/** Levenshtein distance (small strings only: keys and task names). */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur.push(Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost));
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}

/** Candidates close to `name` (small edit distance, or one a prefix of the other), best first. */
export function closeMatches(name: string, candidates: Iterable<string>, limit = 5): string[] {
  const needle = name.toLowerCase();
  const scored: [string, number][] = [];
  for (const candidate of new Set(candidates)) {
    const hay = candidate.toLowerCase();
    const distance = editDistance(needle, hay);
    const prefix = needle.length >= 3 && (hay.startsWith(needle) || needle.startsWith(hay));
    if (distance <= Math.max(2, Math.floor(needle.length / 4)) || prefix) scored.push([candidate, prefix ? Math.min(distance, 1) : distance]);
  }
  return scored
    .sort((x, y) => x[1] - y[1] || x[0].localeCompare(y[0]))
    .slice(0, limit)
    .map(([candidate]) => candidate);
}
