/**
 * Final answers of competition maths (MATH, MATH-500): finding the answer in a model's output, normalising LaTeX,
 * and deciding whether two answers are equivalent.
 *
 * Equivalence is layered, each layer only ever turning "different" into "equal":
 * 1. the string normalisation of Hendrycks et al.'s MATH grader (lm-eval `hendrycks_math`: line breaks, `\!`,
 *    `\dfrac`/`\tfrac`, `\left`/`\right`, degrees, `\$`, a right-hand `\text{ unit}`, `\%`, leading `0.`, a short
 *    `k =` prefix, `\sqrt3`, spaces, `\frac12`, `a/b`);
 * 2. the normalisation of Minerva (Lewkowycz et al. 2022, appendix D; lm-eval `minerva_math`: the part after the
 *    last `=`, unit words, `\text{…}`/`\textbf{…}`/`\overline{…}`/`\boxed{…}` unwrapped, `$…$`, thousands commas);
 * 3. value equality, where lm-eval's Minerva grader asks sympy: both answers are parsed as LaTeX expressions
 *    (numbers, `+ - \cdot \times / \div ^`, `\frac`, `\sqrt[n]{}`, `\pi`, letters as variables, implicit products,
 *    a few functions) and evaluated at fixed points; equal values (relative 1e-9) at every point mean equal.
 *    Tuples and intervals compare element by element, with the same brackets.
 * The reference scorers' own quirks that would make an answer wrong (an exception in their normaliser falling back
 * to raw string equality, for instance) are not reproduced: see test/fixtures/math500 for the measured agreement.
 */

// ---------------------------------------------------------------------------------------------- extraction

/** The text inside the braces that open at `open` (index of `{`), or null when they never close. */
function bracedFrom(text: string, open: number): { inner: string; end: number } | null {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    const c = text[i];
    if (c === '{') depth++;
    else if (c === '}') {
      depth--;
      if (depth === 0) return { inner: text.slice(open + 1, i), end: i + 1 };
    }
  }
  return null;
}

/**
 * The content of the last `\boxed{…}` (or `\fbox{…}`) in `text`, braces matched; `\boxed 5` (a space, no braces)
 * gives the token after it. Null when there is none.
 */
export function lastBoxed(text: string): string | null {
  for (const command of ['\\boxed', '\\fbox']) {
    let at = text.lastIndexOf(command);
    while (at !== -1) {
      let i = at + command.length;
      if (text[i] === '{') {
        const braced = bracedFrom(text, i);
        if (braced) return braced.inner;
      } else if (text[i] === ' ') {
        while (text[i] === ' ') i++;
        const token = /^[^\s$]+/.exec(text.slice(i))?.[0];
        if (token) return token.replace(/[.,]+$/, '');
      }
      at = at === 0 ? -1 : text.lastIndexOf(command, at - 1);
    }
  }
  return null;
}

/** Minerva's cue: `Final Answer: The final answer is X. I hope it is correct.` */
const MINERVA_CUE = /Final Answer: The final answer is\s*([\s\S]*?)\.?\s*I hope it is correct/;
/** Weaker cues, last one wins: "the answer is X", "Answer: X" (to the end of the line). */
const ANSWER_CUE = /(?:final answer|answer)\s*(?:is|:)\s*:?\s*([^\n]+)/gi;

/**
 * The final answer in a model's output: the last `\boxed{…}`; else Minerva's `Final Answer: The final answer is X.
 * I hope it is correct.`; else the last `answer is X` / `Answer: X` line (surrounding `$` and a final period
 * removed). Null when the output states no answer.
 */
export function extractMathAnswer(output: string): string | null {
  const boxed = lastBoxed(output);
  if (boxed !== null) return boxed.trim();
  const minerva = MINERVA_CUE.exec(output)?.[1];
  if (minerva !== undefined && minerva.trim() !== '') return unwrapDollars(minerva.trim());
  let last: string | null = null;
  for (const m of output.matchAll(ANSWER_CUE)) last = m[1] ?? null;
  if (last === null) return null;
  const answer = unwrapDollars(last.trim().replace(/[.\s]+$/, ''));
  return answer === '' ? null : answer;
}

/** `$x$`, `$$x$$`, `\(x\)`, `\[x\]` → `x`; a period inside or after the closing delimiter is dropped. */
function unwrapDollars(s: string): string {
  const m = /^(?:\$\$?|\\\(|\\\[)([\s\S]*?)(?:\$\$?|\\\)|\\\])\.?$/.exec(s);
  return (m?.[1] ?? s).trim().replace(/\.$/, '');
}

// ---------------------------------------------------------------------------------------------- Hendrycks normalisation

/** `\frac12` → `\frac{1}{2}`, `\frac1b` → `\frac{1}{b}`, `\frac1{72}` → `\frac{1}{72}`; braced forms unchanged. */
function braceFracArguments(s: string): string {
  const parts = s.split('\\frac');
  let out = parts[0] ?? '';
  for (const part of parts.slice(1)) {
    out += '\\frac';
    if (part.startsWith('{') || part.length < 2) {
      out += part;
      continue;
    }
    const [a, b] = [part[0], part[1]];
    out += b === '{' ? `{${a}}${part.slice(1)}` : `{${a}}{${b}}${part.slice(2)}`;
  }
  return out;
}

/** `\sqrt3` → `\sqrt{3}` (one character argument); `\sqrt{…}` and `\sqrt[n]{…}` unchanged. */
function braceSqrtArgument(s: string): string {
  return s.replace(/\\sqrt(?![{[])(\S)/g, '\\sqrt{$1}');
}

/** `3/4` (two integers and nothing else) → `\frac{3}{4}`. */
function slashToFrac(s: string): string {
  const m = /^(-?\d+)\/(\d+)$/.exec(s);
  return m ? `\\frac{${m[1]}}{${m[2]}}` : s;
}

/** The MATH grader's string normalisation (Hendrycks et al. 2021), in the order it applies its steps. */
export function hendrycksNormalize(answer: string): string {
  let s = answer
    .replace(/\n/g, '')
    .replaceAll('\\!', '')
    .replaceAll('\\\\', '\\')
    .replaceAll('tfrac', 'frac')
    .replaceAll('dfrac', 'frac')
    .replaceAll('\\left', '')
    .replaceAll('\\right', '')
    .replaceAll('^{\\circ}', '')
    .replaceAll('^\\circ', '')
    .replaceAll('\\$', '');
  // A unit on the right is written `\text{ unit}` (with the space) throughout MATH.
  const unit = s.indexOf('\\text{ ');
  if (unit !== -1) s = s.slice(0, unit);
  s = s.replaceAll('\\%', '').replaceAll(' .', ' 0.').replaceAll('{.', '{0.');
  if (s === '') return s;
  if (s.startsWith('.')) s = `0${s}`;
  const sides = s.split('=');
  if (sides.length === 2 && (sides[0] ?? '').length <= 2) s = sides[1] ?? '';
  s = braceSqrtArgument(s).replaceAll(' ', '');
  s = braceFracArguments(s);
  if (s === '0.5') s = '\\frac{1}{2}';
  return slashToFrac(s);
}

// ---------------------------------------------------------------------------------------------- Minerva normalisation

/** Unit and filler words Minerva removes from final answers. */
const UNIT_WORDS = [
  'square', 'ways', 'integers', 'dollars', 'mph', 'inches', 'ft', 'hours', 'km', 'units', 'sue', 'points', 'feet',
  'minutes', 'digits', 'cents', 'degrees', 'cm', 'gm', 'pounds', 'meters', 'meals', 'edges', 'students',
  'childrentickets', 'multiples',
];
/** Markup Minerva removes verbatim. */
const REMOVED_MARKUP = [
  '\\ldots', '\\text{s}', '\\text{.}', '\\text{\ns}', '\\text{}^2', '\\text{}^3', '\\text{\n}', '\\text{}',
  '\\mathrm{th}', '^\\circ', '^{\\circ}', '\\;', ',\\!', '{,}', '"', '\\dots',
];
const SUBSTITUTIONS: ReadonlyArray<readonly [string, string]> = [
  ['an ', ''], ['a ', ''], ['.$', '$'], ['\\$', ''], ['\\ ', ''], [' ', ''], ['mbox', 'text'],
  [',\\text{and}', ','], ['\\text{and}', ','], ['\\text{m}', '\\text{}'],
];

/** Removes `word` outside LaTeX command names (so `ft` never eats into `\left`). */
function removeOutsideCommands(s: string, word: string): string {
  return s
    .split(/(\\[a-zA-Z]+)/)
    .map((seg, i) => (i % 2 === 0 ? seg.replaceAll(word, '') : seg))
    .join('');
}

/** Replaces `\cmd{X}` by `X` (first closing brace, as Minerva's regex does; greedy to the last brace for \boxed). */
function unwrapCommand(s: string, command: string, greedy = false): string {
  const re = new RegExp(String.raw`\\${command}\{(${greedy ? '.*' : '.*?'})\}`, greedy ? 's' : 'gs');
  return s.replace(re, '$1');
}

/** The final-answer normalisation of Minerva (Lewkowycz et al. 2022, appendix D), with lm-eval's later fixes. */
export function minervaNormalize(answer: string): string {
  let s = answer.split('=').at(-1) ?? '';
  for (const word of UNIT_WORDS) s = s.replace(new RegExp(String.raw`(?<!\\)\b${word}\b`, 'g'), '');
  for (const [from, to] of SUBSTITUTIONS) s = s.replaceAll(from, to);
  for (const word of UNIT_WORDS) s = removeOutsideCommands(s, word);
  for (const markup of REMOVED_MARKUP) s = s.replaceAll(markup, '');
  const math = /^.*?\$(.*?)\$.*$/s.exec(s);
  if (math) s = `$${math[1]}$`;
  s = unwrapCommand(s, 'text');
  s = unwrapCommand(s, 'textbf');
  s = unwrapCommand(s, 'overline');
  s = unwrapCommand(s, 'boxed', true);
  s = s.replace(/frac([^{])(.)/g, 'frac{$1}{$2}');
  s = s.replace(/sqrt(\[[^\]]*\])(\w)/g, 'sqrt$1{$2}');
  s = s.replace(/sqrt(?!\[)([^{])/g, 'sqrt{$1}');
  s = s.replaceAll('$', '');
  if (/^-?\d{1,3}(,\d{3})+$/.test(s)) s = s.replaceAll(',', '');
  return s;
}

// ---------------------------------------------------------------------------------------------- value equality

/** Spacing and presentation commands that never change a value. */
const PRESENTATION = /\\(?:(?:left|right|big|Big|bigg|Bigg|displaystyle|textstyle)(?![a-zA-Z])|[,;:! ])|\\(?:mathrm|mathbf|text|textbf|mbox)\{([^{}]*)\}/g;

/** The canonical text that the value parser reads: presentation removed, fraction variants unified. */
function canonicalLatex(s: string): string {
  return s
    .replace(PRESENTATION, (_m, inner: string | undefined) => inner ?? '')
    .replace(/\\[dt]frac/g, '\\frac')
    .replace(/\^\{?\\circ\}?/g, '')
    .replace(/\\?%/g, '')
    .replace(/\\\$/g, '')
    .replace(/\s+/g, '');
}

type Expr =
  | { k: 'num'; v: number }
  | { k: 'var'; name: string }
  | { k: 'neg'; a: Expr }
  | { k: 'bin'; op: '+' | '-' | '*' | '/' | '^'; a: Expr; b: Expr }
  | { k: 'fn'; name: string; a: Expr };

const FUNCTIONS = new Set(['sin', 'cos', 'tan', 'ln', 'log', 'exp', 'sec', 'csc', 'cot', 'arcsin', 'arccos', 'arctan']);
const CONSTANTS: Record<string, number> = { pi: Math.PI };

class ParseError extends Error {}

/** A recursive-descent parser for the arithmetic subset of LaTeX that final answers use. */
class LatexParser {
  private pos = 0;
  constructor(private readonly s: string) {}

  static parse(s: string): Expr | null {
    if (s === '' || /\\infty|[<>≤≥]|\\[lg]e|\\neq|\\cup|\\cap|\\in\b|\\pm|\\mp|[=,;|]/.test(s)) return null;
    try {
      const p = new LatexParser(s);
      const e = p.sum();
      return p.pos === s.length ? e : null;
    } catch (err) {
      if (err instanceof ParseError) return null;
      throw err;
    }
  }

  private peek(): string {
    return this.s[this.pos] ?? '';
  }

  private command(): string | null {
    const m = /^\\([a-zA-Z]+)/.exec(this.s.slice(this.pos));
    return m?.[1] ?? null;
  }

  private expect(c: string): void {
    if (this.s[this.pos] !== c) throw new ParseError(`expected ${c} at ${this.pos}`);
    this.pos++;
  }

  private sum(): Expr {
    let left = this.product();
    for (;;) {
      const c = this.peek();
      if (c !== '+' && c !== '-') return left;
      this.pos++;
      left = { k: 'bin', op: c, a: left, b: this.product() };
    }
  }

  private product(): Expr {
    let left = this.unary();
    for (;;) {
      const c = this.peek();
      const cmd = this.command();
      if (c === '*' || cmd === 'cdot' || cmd === 'times') {
        this.pos += c === '*' ? 1 : 1 + (cmd?.length ?? 0);
        left = { k: 'bin', op: '*', a: left, b: this.unary() };
      } else if (c === '/' || cmd === 'div') {
        this.pos += c === '/' ? 1 : 4;
        left = { k: 'bin', op: '/', a: left, b: this.unary() };
      } else if (this.startsFactor()) {
        left = { k: 'bin', op: '*', a: left, b: this.power() };
      } else {
        return left;
      }
    }
  }

  private startsFactor(): boolean {
    const c = this.peek();
    if (c === '' || c === '+' || c === '-' || c === ')' || c === '}' || c === ']' || c === '^' || c === '!') return false;
    const cmd = this.command();
    return !(cmd === 'cdot' || cmd === 'times' || cmd === 'div');
  }

  private unary(): Expr {
    if (this.peek() === '-') {
      this.pos++;
      return { k: 'neg', a: this.unary() };
    }
    if (this.peek() === '+') {
      this.pos++;
      return this.unary();
    }
    return this.power();
  }

  private power(): Expr {
    const base = this.atom();
    if (this.peek() !== '^') return base;
    this.pos++;
    return { k: 'bin', op: '^', a: base, b: this.exponent() };
  }

  private exponent(): Expr {
    if (this.peek() === '{') return this.group();
    if (this.peek() === '-') {
      this.pos++;
      return { k: 'neg', a: this.exponent() };
    }
    const c = this.peek();
    if (/\d/.test(c) || /[a-zA-Z]/.test(c)) {
      this.pos++;
      return /\d/.test(c) ? { k: 'num', v: Number(c) } : { k: 'var', name: c };
    }
    return this.atom();
  }

  private group(): Expr {
    this.expect('{');
    const e = this.sum();
    this.expect('}');
    return e;
  }

  /** A braced group, or a single character (`\frac12`, `\sqrt3`). */
  private argument(): Expr {
    if (this.peek() === '{') return this.group();
    const c = this.peek();
    if (/\d/.test(c)) {
      this.pos++;
      return { k: 'num', v: Number(c) };
    }
    if (/[a-zA-Z]/.test(c)) {
      this.pos++;
      return { k: 'var', name: c };
    }
    return this.atom();
  }

  private atom(): Expr {
    const c = this.peek();
    const number = /^(?:\d+(?:\.\d*)?|\.\d+)/.exec(this.s.slice(this.pos));
    if (number) {
      this.pos += number[0].length;
      return { k: 'num', v: Number(number[0]) };
    }
    if (c === '(' || c === '[' || c === '{') {
      this.pos++;
      const e = this.sum();
      this.expect(c === '(' ? ')' : c === '[' ? ']' : '}');
      return e;
    }
    const cmd = this.command();
    if (cmd !== null) {
      this.pos += 1 + cmd.length;
      if (cmd === 'frac') {
        const a = this.argument();
        return { k: 'bin', op: '/', a, b: this.argument() };
      }
      if (cmd === 'sqrt') {
        if (this.peek() === '[') {
          this.pos++;
          const n = this.sum();
          this.expect(']');
          return { k: 'bin', op: '^', a: this.argument(), b: { k: 'bin', op: '/', a: { k: 'num', v: 1 }, b: n } };
        }
        return { k: 'fn', name: 'sqrt', a: this.argument() };
      }
      if (Object.hasOwn(CONSTANTS, cmd)) return { k: 'var', name: `\\${cmd}` };
      if (FUNCTIONS.has(cmd)) return { k: 'fn', name: cmd, a: this.power() };
      throw new ParseError(`unsupported command \\${cmd}`);
    }
    if (/[a-zA-Z]/.test(c)) {
      this.pos++;
      return { k: 'var', name: c };
    }
    throw new ParseError(`unexpected ${JSON.stringify(c)} at ${this.pos}`);
  }
}

function evaluate(e: Expr, vars: (name: string) => number): number {
  switch (e.k) {
    case 'num':
      return e.v;
    case 'var':
      return e.name.startsWith('\\') ? (CONSTANTS[e.name.slice(1)] ?? Number.NaN) : vars(e.name);
    case 'neg':
      return -evaluate(e.a, vars);
    case 'fn': {
      const x = evaluate(e.a, vars);
      const f: Record<string, (x: number) => number> = {
        sqrt: Math.sqrt, sin: Math.sin, cos: Math.cos, tan: Math.tan, ln: Math.log, log: Math.log10, exp: Math.exp,
        sec: (v) => 1 / Math.cos(v), csc: (v) => 1 / Math.sin(v), cot: (v) => 1 / Math.tan(v),
        arcsin: Math.asin, arccos: Math.acos, arctan: Math.atan,
      };
      return f[e.name]?.(x) ?? Number.NaN;
    }
    case 'bin': {
      const a = evaluate(e.a, vars);
      const b = evaluate(e.b, vars);
      switch (e.op) {
        case '+':
          return a + b;
        case '-':
          return a - b;
        case '*':
          return a * b;
        case '/':
          return a / b;
        case '^':
          return a ** b;
      }
    }
  }
}

/** Values given to variables: irrational-looking and distinct, so different expressions rarely coincide. */
const SAMPLE_POINTS = [
  (name: string) => 1.3 + (name.charCodeAt(0) % 17) * 0.173,
  (name: string) => 2.71 + (name.charCodeAt(0) % 13) * 0.291,
  (name: string) => 0.577 + (name.charCodeAt(0) % 11) * 0.419,
];

function closeEnough(a: number, b: number): boolean {
  if (!Number.isFinite(a) || !Number.isFinite(b)) return false;
  return Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));
}

/** Two parsed expressions agree at every sample point (and are defined there). */
function sameValue(a: Expr, b: Expr): boolean {
  return SAMPLE_POINTS.every((point) => closeEnough(evaluate(a, point), evaluate(b, point)));
}

/** Splits at commas outside any brackets. */
function splitTopLevel(s: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '(' || c === '[' || c === '{') depth++;
    else if (c === ')' || c === ']' || c === '}') depth--;
    else if (c === ',' && depth === 0) {
      parts.push(s.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(s.slice(start));
  return parts;
}

/** `(a, b]` → brackets `(]` and items; a bare `a, b` list → no brackets. Null for a single item. */
function asSequence(s: string): { brackets: string; items: string[] } | null {
  const m = /^([([])(.*)([)\]])$/s.exec(s);
  if (m && splitTopLevel(m[2] ?? '').length > 1) {
    return { brackets: `${m[1]}${m[3]}`, items: splitTopLevel(m[2] ?? '') };
  }
  const items = splitTopLevel(s);
  return items.length > 1 ? { brackets: '', items } : null;
}

function itemsEqual(a: string, b: string): boolean {
  if (a === b) return true;
  const ea = LatexParser.parse(a);
  const eb = LatexParser.parse(b);
  return ea !== null && eb !== null && sameValue(ea, eb);
}

/** A single letter choice `(C)` and `C` are the same answer. */
function choiceLetter(s: string): string {
  return /^\(([A-Z])\)$/.exec(s)?.[1] ?? s;
}

/** Whether two final answers are the same, by the layers described at the top of this file. */
export function mathAnswersEquivalent(predicted: string | null, reference: string): boolean {
  if (predicted === null) return false;
  if (hendrycksNormalize(predicted) === hendrycksNormalize(reference)) return true;
  const a = choiceLetter(canonicalLatex(minervaNormalize(predicted)));
  const b = choiceLetter(canonicalLatex(minervaNormalize(reference)));
  if (a === '' || b === '') return false;
  if (a === b) return true;
  const sa = asSequence(a);
  const sb = asSequence(b);
  if (sa || sb) {
    if (!sa || !sb || sa.brackets !== sb.brackets || sa.items.length !== sb.items.length) return false;
    return sa.items.every((item, i) => itemsEqual(item, sb.items[i] ?? ''));
  }
  return itemsEqual(a, b);
}
