/**
 * Language identification as IFEval's reference checker does it (PyPI `langdetect` 1.0.9, a port of Cybozu's
 * language-detection): the same 55 profiles of character 1- to 3-gram frequencies, the same text clean-up
 * (URLs and e-mail addresses removed, spaces collapsed, Latin letters dropped from mostly non-Latin text) and the
 * same per-character normalisation, then naive Bayes with the same smoothing.
 *
 * One deliberate difference: the reference samples n-grams at random (7 trials, up to 1,000 draws each, unseeded,
 * so it can answer differently run to run on borderline texts); this version uses every n-gram once, in log space,
 * which is deterministic and what the random sampling estimates. Not reproduced: the CJK ideograph class map
 * (Chinese and Japanese are not IFEval response languages) — ideographs count as themselves.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { packageRoot } from '../../../common/paths.js';

interface Profiles {
  langs: string[];
  /** n-gram → probability per language (index into `langs`). */
  probabilities: Map<string, Float64Array>;
}

let cached: Profiles | undefined;

function profiles(): Profiles {
  if (cached) return cached;
  const file = join(packageRoot(), 'harness', 'tasks', 'ifeval', 'langdetect-profiles.json.gz');
  const raw = JSON.parse(gunzipSync(readFileSync(file)).toString('utf8')) as Record<string, { n_words: number[]; freq: Record<string, number> }>;
  const langs = Object.keys(raw).sort();
  const probabilities = new Map<string, Float64Array>();
  langs.forEach((lang, index) => {
    const { n_words: nWords, freq } = raw[lang] as { n_words: number[]; freq: Record<string, number> };
    for (const [gram, count] of Object.entries(freq)) {
      const length = [...gram].length;
      if (length < 1 || length > 3) continue;
      let row = probabilities.get(gram);
      if (!row) probabilities.set(gram, (row = new Float64Array(langs.length)));
      row[index] = count / (nWords[length - 1] ?? 1);
    }
  });
  return (cached = { langs, probabilities });
}

const URL = /https?:\/\/[-_.?&~;+=/#0-9A-Za-z]{1,2076}/g;
const MAIL = /[-_.0-9A-Za-z]{1,64}@[-_0-9A-Za-z]{1,255}[-_.0-9A-Za-z]{1,255}/g;
const MAX_TEXT_LENGTH = 10_000;
/** Smoothing of the reference: every n-gram adds alpha / BASE_FREQ to every language's probability. */
const SMOOTHING = 0.5 / 10_000;

function inRange(c: number, from: number, to: number): boolean {
  return c >= from && c <= to;
}

/** The reference's per-character normalisation (by Unicode block). */
function normalizeChar(ch: string): string {
  const c = ch.codePointAt(0) ?? 0;
  if (c <= 0x7f) return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ? ch : ' ';
  if (c <= 0xff) return '\u00a0\u00ab\u00b0\u00bb'.includes(ch) ? ' ' : ch;
  if (inRange(c, 0x180, 0x24f)) return ch === '\u0219' ? '\u015f' : ch === '\u021b' ? '\u0163' : ch;
  if (inRange(c, 0x2000, 0x206f)) return ' ';
  if (inRange(c, 0x600, 0x6ff)) return ch === '\u06cc' ? '\u064a' : ch;
  if (inRange(c, 0x1e00, 0x1eff)) return c >= 0x1ea0 ? '\u1ec3' : ch;
  if (inRange(c, 0x3040, 0x309f)) return '\u3042';
  if (inRange(c, 0x30a0, 0x30ff)) return '\u30a2';
  if (inRange(c, 0x3100, 0x312f) || inRange(c, 0x31a0, 0x31bf)) return '\u3105';
  if (inRange(c, 0xac00, 0xd7af)) return '\uac00';
  return ch;
}

function isUpper(ch: string): boolean {
  return ch !== ch.toLowerCase() && ch === ch.toUpperCase();
}

/** The text the reference extracts n-grams from. */
function cleanText(input: string): string[] {
  const stripped = input.replace(URL, ' ').replace(MAIL, ' ').normalize('NFC');
  const chars: string[] = [];
  let previous = ' ';
  for (const ch of [...stripped].slice(0, MAX_TEXT_LENGTH)) {
    if (ch !== ' ' || previous !== ' ') chars.push(ch);
    previous = ch;
  }
  let latin = 0;
  let nonLatin = 0;
  for (const ch of chars) {
    const c = ch.codePointAt(0) ?? 0;
    if (ch >= 'A' && ch <= 'z') latin++;
    else if (c >= 0x300 && !inRange(c, 0x1e00, 0x1eff)) nonLatin++;
  }
  return latin * 2 < nonLatin ? chars.filter((ch) => ch < 'A' || ch > 'z') : chars;
}

/** The n-grams (1 to 3 characters) of the text that some profile knows, as the reference extracts them. */
function knownNgrams(text: string, known: ReadonlyMap<string, unknown>): string[] {
  const result: string[] = [];
  let grams = ' ';
  let capitalWord = false;
  for (const raw of cleanText(text)) {
    const ch = normalizeChar(raw);
    const last = grams.at(-1) ?? ' ';
    if (last === ' ') {
      grams = ' ';
      capitalWord = false;
      if (ch === ' ') continue;
    } else if ([...grams].length >= 3) {
      grams = [...grams].slice(1).join('');
    }
    grams += ch;
    if (isUpper(ch)) {
      if (isUpper(last)) capitalWord = true;
    } else {
      capitalWord = false;
    }
    if (capitalWord) continue;
    const units = [...grams];
    for (let n = 1; n <= 3 && n <= units.length; n++) {
      const gram = units.slice(-n).join('');
      if (gram !== ' ' && known.has(gram)) result.push(gram);
    }
  }
  return result;
}

/**
 * The most likely language code of `text` (`en`, `de`, `hi`, `zh-cn`, …), or null where the reference raises
 * "no features in text" (nothing it could use: only digits, punctuation, unknown scripts).
 */
export function detectLanguage(text: string): string | null {
  const hit = recent.get(text);
  if (hit !== undefined) return hit;
  const detected = detect(text);
  if (recent.size >= RECENT_LIMIT) recent.clear();
  recent.set(text, detected);
  return detected;
}

/** The loose criterion checks up to 8 variants of a response per instruction, many of them the same text. */
const recent = new Map<string, string | null>();
const RECENT_LIMIT = 256;

function detect(text: string): string | null {
  const { langs, probabilities } = profiles();
  const ngrams = knownNgrams(text, probabilities);
  if (ngrams.length === 0) return null;
  const logProb = new Float64Array(langs.length);
  for (const gram of ngrams) {
    const row = probabilities.get(gram) as Float64Array;
    for (let i = 0; i < langs.length; i++) logProb[i] = (logProb[i] ?? 0) + Math.log(SMOOTHING + (row[i] ?? 0));
  }
  let best = 0;
  for (let i = 1; i < langs.length; i++) if ((logProb[i] ?? -Infinity) > (logProb[best] ?? -Infinity)) best = i;
  return langs[best] ?? null;
}
