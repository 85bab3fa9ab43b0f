/**
 * Counting words, sentences and capitalised words as IFEval's reference checker does (it uses NLTK: a `\w+`
 * tokenizer, the Punkt sentence tokenizer with its English model, and the Treebank word tokenizer).
 *
 * Words are exact (`\w+` as NLTK 3.10's `regex` engine reads it: marks are word characters, so a Devanagari word is
 * one word; NLTK before 3.10 used `re`, which splits it at every vowel sign). Sentences follow Punkt's decisions for the common cases —
 * a break after `.`, `?` or `!` (with closing quotes and brackets) before white space, except after the abbreviations
 * of Punkt's English model, after single-letter initials and inside ellipses — but not its learned orthographic and
 * collocation statistics, so rare boundary cases can differ (the measured agreement is in test/fixtures/ifeval).
 * Capitalised words split on white space and Treebank's punctuation and contraction rules.
 */

/** `\w` of the `regex` engine that NLTK 3.10 compiles tokenizer patterns with: letters, marks, digits, connectors. */
const WORD = /[\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\u200c\u200d]+/gu;

/** Number of `\w+` tokens (NLTK's `RegexpTokenizer(r"\w+")`). */
export function countWords(text: string): number {
  return text.match(WORD)?.length ?? 0;
}

/** Abbreviations of Punkt's English model (NLTK `punkt_tab/english/abbrev_types.txt`), lower case, no final period. */
const ABBREVIATIONS = new Set(
  (
    'ct m.j t a.c n.h ms p.a.m dr pa p.m u.k st dec u.s.a lt g.k adm p h.m ga tenn yr sen n.c j.j d.h s.g inc vs ' +
    's.p.a a.t n feb sr jan s.a.y n.y col g.f c.o.m.b d ft va r.k e.f chg r.i a.g minn a.h k n.j m l.f f.j gen i.m.s ' +
    's.a aug j.p okla m.d.c ltd oct s vt r.a j.c ariz w.w b.v ore h w.r e.h mrs cie corp w n.v a.d r.j ok e.m w.c ' +
    'ill nov u.s prof conn u.s.s.r mg f.g ph.d g calif messrs h.f wash tues sw bros u.n l wis mr sep d.c ave e.l co ' +
    's.s reps c r.t h.c r wed a.s v fla jr r.h c.v m.b.a rep a.a e c.i.t l.a b.f j.b d.w j.k ala f w.va sept mich ' +
    'n.m j.r l.p s.c colo fri a.m g.d kan maj ky a.m.e n.d t.j cos nev'
  ).split(' '),
);

/** A candidate boundary: the token ending in `.`, `?` or `!`, with closing quotes/brackets, then white space. */
const BOUNDARY = /(\S*?)([.?!]+)(["'”’)\]}]*)(?=\s+(\S)|$)/gu;

/** Whether the period ending `token` (given without it) ends a sentence, by Punkt's first-pass rules. */
function periodEndsSentence(token: string, next: string | undefined): boolean {
  const word = token.replace(/^["'“‘([{]+/u, '').toLowerCase();
  if (word === '') return true;
  if (ABBREVIATIONS.has(word) || ABBREVIATIONS.has(word.split('-').at(-1) ?? '')) return false;
  // An initial ("J. Smith") or a list number ("1. Apples") is not a break before a capitalised word …
  if (/^\p{L}$/u.test(word) && next !== undefined && /^\p{Lu}/u.test(next)) return false;
  // … nor is a number before a lower-case word ("3. bis").
  if (/^\d+$/.test(word) && next !== undefined && /^\p{Ll}/u.test(next)) return false;
  return true;
}

/** Number of sentences, as Punkt would split `text`. */
export function countSentences(text: string): number {
  const trimmed = text.trim();
  if (trimmed === '') return 0;
  let count = 0;
  let lastEnd = 0;
  for (const m of trimmed.matchAll(BOUNDARY)) {
    const [, token = '', marks = '', , next] = m;
    if (marks === '.' && !periodEndsSentence(token, next)) continue;
    if (marks.startsWith('.') && marks.length > 1 && !marks.includes('?') && !marks.includes('!') && next !== undefined && /^\p{Ll}/u.test(next)) {
      continue; // an ellipsis before a lower-case word continues the sentence
    }
    count++;
    lastEnd = m.index + m[0].length;
  }
  return trimmed.slice(lastEnd).trim() === '' ? count : count + 1;
}

const CONTRACTION = /^(.+?)(n't|'s|'re|'ve|'ll|'d|'m)$/i;

/** Treebank-style word tokens: white space, surrounding punctuation split off, contractions split. */
export function wordTokens(text: string): string[] {
  const tokens: string[] = [];
  for (const chunk of text.split(/\s+/)) {
    const core = chunk.replace(/^[^\p{L}\p{N}]+|[^\p{L}\p{N}']+$/gu, '');
    if (core === '') continue;
    const m = CONTRACTION.exec(core);
    if (m) tokens.push(m[1] ?? '', m[2] ?? '');
    else tokens.push(core);
  }
  return tokens;
}

/** Python's `str.isupper()`: at least one cased character and no lower-case one. */
export function isUpperCase(s: string): boolean {
  return s !== s.toLowerCase() && s === s.toUpperCase();
}

/** Python's `str.islower()`: at least one cased character and no upper-case one. */
export function isLowerCase(s: string): boolean {
  return s !== s.toUpperCase() && s === s.toLowerCase();
}
