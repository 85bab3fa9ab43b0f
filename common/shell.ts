/**
 * The one quoting helper: every value evalflow places in a shell command or a generated script goes
 * through `shellQuote` (DESIGN §3.8). POSIX single quotes: nothing inside them is special, so a value
 * is always exactly one word, whatever it contains (`$(…)`, backticks, `;`, newlines, globs).
 */

/** Characters that are never special to a POSIX shell; a word made only of them is left as it is (readability). */
const PLAIN_WORD = /^[A-Za-z0-9_@%+=:,./-]+$/;
/** `NAME=…` is an assignment where a command name is expected: always quoted. */
const ASSIGNMENT = /^[A-Za-z_][A-Za-z0-9_]*=/;

export function shellQuote(value: string | number): string {
  const text = String(value);
  if (text.includes('\0')) throw new Error('a shell word cannot contain a NUL byte');
  if (PLAIN_WORD.test(text) && !ASSIGNMENT.test(text)) return text;
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/** An argv as one shell command line: each word quoted. */
export function shellCommand(argv: readonly (string | number)[]): string {
  return argv.map(shellQuote).join(' ');
}

/** Reverses shellQuote (and only what it produces): bare plain words and single-quoted pieces joined by `\'`. */
export function shellUnquote(word: string): string {
  let out = '';
  let rest = word;
  while (rest.length > 0) {
    if (rest.startsWith("'")) {
      const end = rest.indexOf("'", 1);
      if (end < 0) throw new Error('unterminated single quote');
      out += rest.slice(1, end);
      rest = rest.slice(end + 1);
    } else if (rest.startsWith("\\'")) {
      out += "'";
      rest = rest.slice(2);
    } else {
      const next = rest.search(/'|\\'/);
      const bare = next < 0 ? rest : rest.slice(0, next);
      // The word may be a secret: say what is wrong, never what it holds.
      if (!PLAIN_WORD.test(bare)) throw new Error('unquoted special character');
      out += bare;
      rest = next < 0 ? '' : rest.slice(next);
    }
  }
  return out;
}

/** Characters that make a shell do more than split words: refused by shellSplit, which runs no shell. */
const SHELL_OPERATORS = new Set(['|', '&', ';', '<', '>', '(', ')', '`', '$']);

/**
 * Splits a command line into words as a POSIX shell would for a simple command (whitespace, single and
 * double quotes, backslash escapes), without running a shell: expansions (`$`, backticks) and operators
 * (`|`, `;`, `&`, redirections) are refused with the character named, so a command means the same
 * wherever it runs. Used for server commands that upstream passes to `docker run` unquoted.
 */
export function shellSplit(line: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  const add = (text: string) => (word = (word ?? '') + text);
  for (let i = 0; i < line.length; i++) {
    const c = line[i] as string;
    if (/\s/.test(c)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new Error('unterminated single quote');
      add(line.slice(i + 1, end));
      i = end;
    } else if (c === '"') {
      let text = '';
      for (i++; i < line.length && line[i] !== '"'; i++) {
        const d = line[i] as string;
        if (d === '$' || d === '`') throw new Error(`'${d}' inside double quotes would be expanded by a shell`);
        if (d === '\\' && i + 1 < line.length && '"\\$`\n'.includes(line[i + 1] as string)) {
          i++;
          if (line[i] !== '\n') text += line[i];
        } else text += d;
      }
      if (i >= line.length) throw new Error('unterminated double quote');
      add(text);
    } else if (c === '\\') {
      if (i + 1 < line.length && line[i + 1] !== '\n') add(line[i + 1] as string);
      i++;
    } else if (SHELL_OPERATORS.has(c) || (c === '#' && word === undefined)) {
      throw new Error(`'${c}' is shell syntax`);
    } else add(c);
  }
  if (word !== undefined) words.push(word);
  return words;
}
