/**
 * IFEval's verifiable instructions (Zhou et al. 2023): one checker per instruction id, with the behaviour of the
 * reference implementation (google-research `instruction_following_eval`, as packaged in lm-eval 0.4.13 `ifeval`),
 * and the strict and loose ways of applying them to a response.
 *
 * Regular expressions follow the reference's Python ones; where JavaScript differs (`\b` and `\w` are ASCII-only
 * there) Unicode-aware equivalents are used.
 */
import { detectLanguage } from './langdetect.js';
import { countSentences, countWords, isLowerCase, isUpperCase, wordTokens } from './text.js';

export type InstructionKwargs = Record<string, unknown>;
/** A checker built from an instruction's kwargs (and the prompt): true when the response follows it. */
type Checker = (response: string) => boolean;
type CheckerFactory = (kwargs: InstructionKwargs, prompt: string) => Checker;

/** An instruction whose kwargs are missing or malformed. */
export class InstructionConfigError extends Error {
  override name = 'InstructionConfigError';
}

function num(kwargs: InstructionKwargs, key: string): number {
  const v = kwargs[key];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new InstructionConfigError(`kwarg ${key} must be a number, got ${JSON.stringify(v)}`);
  return v;
}

function str(kwargs: InstructionKwargs, key: string): string {
  const v = kwargs[key];
  if (typeof v !== 'string') throw new InstructionConfigError(`kwarg ${key} must be a string, got ${JSON.stringify(v)}`);
  return v;
}

function strings(kwargs: InstructionKwargs, key: string): string[] {
  const v = kwargs[key];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new InstructionConfigError(`kwarg ${key} must be a list of strings`);
  return v as string[];
}

/** `less than` → count < n; `at least` → count ≥ n (the reference's two relations). */
function compare(kwargs: InstructionKwargs, key: string, threshold: number): (count: number) => boolean {
  const relation = str(kwargs, key);
  if (relation === 'less than') return (count) => count < threshold;
  if (relation === 'at least') return (count) => count >= threshold;
  throw new InstructionConfigError(`kwarg ${key} must be "less than" or "at least", got ${JSON.stringify(relation)}`);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The reference passes keywords to `re` as patterns; plain words are the same pattern in JavaScript. */
function keywordRegExp(keyword: string, flags: string): RegExp {
  try {
    return new RegExp(keyword, flags);
  } catch {
    return new RegExp(escapeRegExp(keyword), flags);
  }
}

/** Python's `\b…\b` with Unicode word characters. */
function wholeWord(word: string): RegExp {
  return new RegExp(`(?<![\\p{L}\\p{N}_])${escapeRegExp(word)}(?![\\p{L}\\p{N}_])`, 'iu');
}

function detectsAs(text: string, language: string): boolean {
  // The reference counts a text whose language cannot be detected as following the instruction.
  const detected = detectLanguage(text);
  return detected === null || detected === language;
}

const CONSTRAINED_RESPONSES = ['My answer is yes.', 'My answer is no.', 'My answer is maybe.'];

export const INSTRUCTION_CHECKERS: Record<string, CheckerFactory> = {
  'change_case:capital_word_frequency': (kw) => {
    const ok = compare(kw, 'capital_relation', num(kw, 'capital_frequency'));
    return (r) => ok(wordTokens(r).filter(isUpperCase).length);
  },
  'change_case:english_capital': () => (r) => isUpperCase(r) && detectsAs(r, 'en'),
  'change_case:english_lowercase': () => (r) => isLowerCase(r) && detectsAs(r, 'en'),
  'combination:repeat_prompt': (kw) => {
    const prompt = str(kw, 'prompt_to_repeat').trim().toLowerCase();
    return (r) => r.trim().toLowerCase().startsWith(prompt);
  },
  'combination:two_responses': () => (r) => {
    const parts = r.split('******');
    const valid: string[] = [];
    for (const [i, part] of parts.entries()) {
      if (part.trim() === '') {
        if (i !== 0 && i !== parts.length - 1) return false;
      } else {
        valid.push(part);
      }
    }
    return valid.length === 2 && valid[0]?.trim() !== valid[1]?.trim();
  },
  'detectable_content:number_placeholders': (kw) => {
    const n = num(kw, 'num_placeholders');
    return (r) => (r.match(/\[.*?\]/g)?.length ?? 0) >= n;
  },
  'detectable_content:postscript': (kw) => {
    const marker = str(kw, 'postscript_marker').trim();
    const pattern =
      marker === 'P.P.S' ? /\s*p\.\s?p\.\s?s.*$/m : marker === 'P.S.' ? /\s*p\.\s?s\..*$/m : new RegExp(`\\s*${marker.toLowerCase()}.*$`, 'm');
    return (r) => pattern.test(r.toLowerCase());
  },
  'detectable_format:constrained_response': () => (r) => {
    const value = r.trim();
    return CONSTRAINED_RESPONSES.some((c) => value.includes(c));
  },
  'detectable_format:json_format': () => (r) => {
    let value = r.trim();
    for (const fence of ['```json', '```Json', '```JSON', '```']) {
      if (value.startsWith(fence)) value = value.slice(fence.length);
    }
    if (value.endsWith('```')) value = value.slice(0, -3);
    try {
      JSON.parse(value.trim());
      return true;
    } catch {
      return false;
    }
  },
  'detectable_format:multiple_sections': (kw) => {
    const splitter = new RegExp(`\\s?${str(kw, 'section_spliter').trim()}\\s?\\d+\\s?`);
    const n = num(kw, 'num_sections');
    return (r) => r.split(splitter).length - 1 >= n;
  },
  'detectable_format:number_bullet_lists': (kw) => {
    const n = num(kw, 'num_bullets');
    return (r) => (r.match(/^\s*\*[^*].*$/gm)?.length ?? 0) + (r.match(/^\s*-.*$/gm)?.length ?? 0) === n;
  },
  'detectable_format:number_highlighted_sections': (kw) => {
    const n = num(kw, 'num_highlights');
    return (r) => {
      const single = (r.match(/\*[^\n*]*\*/g) ?? []).filter((h) => h.replace(/^\*+|\*+$/g, '').trim() !== '').length;
      const double = (r.match(/\*\*[^\n*]*\*\*/g) ?? []).filter((h) => h.slice(2, -2).trim() !== '').length;
      return single + double >= n;
    };
  },
  'detectable_format:title': () => (r) => (r.match(/<<[^\n]+>>/g) ?? []).some((t) => t.replace(/^<+|>+$/g, '').trim() !== ''),
  'keywords:existence': (kw) => {
    const patterns = strings(kw, 'keywords').map((k) => keywordRegExp(k, 'i'));
    return (r) => patterns.every((p) => p.test(r));
  },
  'keywords:forbidden_words': (kw) => {
    const patterns = [...new Set(strings(kw, 'forbidden_words'))].map(wholeWord);
    return (r) => !patterns.some((p) => p.test(r));
  },
  'keywords:frequency': (kw) => {
    const pattern = keywordRegExp(str(kw, 'keyword').trim(), 'gi');
    const ok = compare(kw, 'relation', num(kw, 'frequency'));
    return (r) => ok(r.match(pattern)?.length ?? 0);
  },
  'keywords:letter_frequency': (kw) => {
    const letter = str(kw, 'letter').trim().toLowerCase();
    const ok = compare(kw, 'let_relation', num(kw, 'let_frequency'));
    return (r) => ok([...r.toLowerCase()].filter((c) => c === letter).length);
  },
  'language:response_language': (kw) => {
    const language = str(kw, 'language');
    return (r) => detectsAs(r, language);
  },
  'length_constraints:nth_paragraph_first_word': (kw) => {
    const want = num(kw, 'num_paragraphs');
    const nth = num(kw, 'nth_paragraph');
    const firstWord = str(kw, 'first_word').toLowerCase();
    return (r) => {
      const paragraphs = r.split('\n\n');
      const count = paragraphs.filter((p) => p.trim() !== '').length;
      if (nth > count) return false;
      const paragraph = (paragraphs[nth - 1] ?? '').trim();
      if (paragraph === '') return false;
      const word = (paragraph.split(/\s+/)[0] ?? '').replace(/^'+/, '').replace(/^"+/, '');
      let first = '';
      for (const c of word) {
        if ('.,?!\'"'.includes(c)) break;
        first += c.toLowerCase();
      }
      return count === want && first === firstWord;
    };
  },
  'length_constraints:number_paragraphs': (kw) => {
    const want = num(kw, 'num_paragraphs');
    return (r) => {
      const paragraphs = r.split(/\s?\*\*\*\s?/);
      let count = paragraphs.length;
      for (const [i, p] of paragraphs.entries()) {
        if (p.trim() !== '') continue;
        if (i === 0 || i === paragraphs.length - 1) count--;
        else return false;
      }
      return count === want;
    };
  },
  'length_constraints:number_sentences': (kw) => {
    const ok = compare(kw, 'relation', num(kw, 'num_sentences'));
    return (r) => ok(countSentences(r));
  },
  'length_constraints:number_words': (kw) => {
    const ok = compare(kw, 'relation', num(kw, 'num_words'));
    return (r) => ok(countWords(r));
  },
  'punctuation:no_comma': () => (r) => !r.includes(','),
  'startend:end_checker': (kw) => {
    const end = str(kw, 'end_phrase').trim().toLowerCase();
    return (r) => r.trim().replace(/^"+|"+$/g, '').toLowerCase().endsWith(end);
  },
  'startend:quotation': () => (r) => {
    const value = r.trim();
    return value.length > 1 && value.startsWith('"') && value.endsWith('"');
  },
};

export interface Instruction {
  id: string;
  kwargs: InstructionKwargs;
}

/** The reference drops kwargs whose value is falsy (None, 0, "") before building a checker. */
function presentKwargs(kwargs: InstructionKwargs): InstructionKwargs {
  return Object.fromEntries(Object.entries(kwargs).filter(([, v]) => Boolean(v)));
}

/** Builds the checkers of a prompt's instructions; an unknown id or bad kwargs throws InstructionConfigError. */
export function buildCheckers(instructions: readonly Instruction[], prompt: string): Checker[] {
  return instructions.map(({ id, kwargs }) => {
    const factory = Object.hasOwn(INSTRUCTION_CHECKERS, id) ? INSTRUCTION_CHECKERS[id] : undefined;
    if (!factory) throw new InstructionConfigError(`unknown IFEval instruction id "${id}"`);
    try {
      return factory(presentKwargs(kwargs), prompt);
    } catch (err) {
      throw new InstructionConfigError(`instruction ${id}: ${(err as Error).message}`);
    }
  });
}

/** The response variants the loose criterion tries: without the first/last line, without `*` markup. */
export function looseVariants(response: string): string[] {
  const lines = response.split('\n');
  const withoutFirst = lines.slice(1).join('\n').trim();
  const withoutLast = lines.slice(0, -1).join('\n').trim();
  const withoutBoth = lines.slice(1, -1).join('\n').trim();
  const variants = [response, withoutFirst, withoutLast, withoutBoth];
  return [...variants, ...variants.map((r) => r.replaceAll('*', ''))];
}

export interface FollowResult {
  strict: boolean[];
  loose: boolean[];
}

/** Per instruction: followed strictly (the response as is) and loosely (any of its variants). Empty responses follow nothing. */
export function checkResponse(checkers: readonly Checker[], response: string): FollowResult {
  const variants = looseVariants(response);
  return {
    strict: checkers.map((check) => response.trim() !== '' && check(response)),
    loose: checkers.map((check) => variants.some((v) => v.trim() !== '' && check(v))),
  };
}
