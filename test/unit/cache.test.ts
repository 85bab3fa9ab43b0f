import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { canonicalJson } from '../../common/canonical-json.js';
import { requestKey, ResponseCache, type CachedResponse } from '../../harness/cache.js';

const root = mkdtempSync(join(tmpdir(), 'evalflow-cache-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshFile = () => join(root, `run-${dirs++}`, 'cache', 'responses.jsonl');

const response = (text: string, extra: Partial<CachedResponse> = {}): CachedResponse => ({
  text,
  finishReason: 'stop',
  promptTokens: 3,
  completionTokens: 5,
  ...extra,
});

describe('canonicalJson', () => {
  it('sorts object keys so key order does not matter', () => {
    const a = canonicalJson({ b: 1, a: 2, c: { z: true, y: null } });
    const b = canonicalJson({ c: { y: null, z: true }, a: 2, b: 1 });
    expect(a).toBe('{"a":2,"b":1,"c":{"y":null,"z":true}}');
    expect(b).toBe(a);
  });

  it('keeps array order and canonicalises objects inside arrays (and arrays inside objects)', () => {
    const value = { messages: [{ role: 'user', content: 'hi' }, { content: 'yo', role: 'assistant' }], stop: ['\n', 'Q:'] };
    expect(canonicalJson(value)).toBe('{"messages":[{"content":"hi","role":"user"},{"content":"yo","role":"assistant"}],"stop":["\\n","Q:"]}');
    expect(canonicalJson([3, [2, 1], { b: [1, { d: 1, c: 2 }] }])).toBe('[3,[2,1],{"b":[1,{"c":2,"d":1}]}]');
    // Array order is meaningful: a different order is a different request.
    expect(canonicalJson([1, 2])).not.toBe(canonicalJson([2, 1]));
  });

  it('drops undefined object values, as JSON.stringify does', () => {
    expect(canonicalJson({ a: 1, b: undefined, c: { d: undefined } })).toBe('{"a":1,"c":{}}');
    expect(canonicalJson({ a: 1, b: undefined })).toBe(canonicalJson({ a: 1 }));
  });

  it('produces valid JSON that parses back to the same value', () => {
    const value = { z: [1, 'two', null, false, { y: 1.5, x: -0.25 }], a: { nested: { deep: ['x'] } }, e: {}, f: [] };
    const text = canonicalJson(value);
    expect(JSON.parse(text)).toEqual(value);
  });

  it('writes undefined inside an array as null, like JSON.stringify (valid JSON, no collision with a shorter array)', () => {
    // JSON.stringify([1, undefined]) is "[1,null]"; "[1,]" is not JSON, and [undefined] must not key like [].
    expect(canonicalJson([1, undefined])).toBe(JSON.stringify([1, undefined]));
    expect(canonicalJson({ stop: [undefined] })).not.toBe(canonicalJson({ stop: [] }));
  });

  it('handles unicode keys and values (non-ASCII, emoji, escapes) and sorts keys by code unit', () => {
    const value = { 'é': 'café', a: '日本語 🚀', 'Z': 'quote " backslash \\ tab \t' };
    const text = canonicalJson(value);
    expect(text).toBe('{"Z":"quote \\" backslash \\\\ tab \\t","a":"日本語 🚀","é":"café"}');
    expect(JSON.parse(text)).toEqual(value);
  });

  it('encodes scalars like JSON.stringify', () => {
    expect(canonicalJson(null)).toBe('null');
    expect(canonicalJson(1.25)).toBe('1.25');
    expect(canonicalJson('s')).toBe('"s"');
    expect(canonicalJson(true)).toBe('true');
  });
});

describe('requestKey', () => {
  const body = { model: 'm', messages: [{ role: 'user', content: 'What is 2+2?' }], max_tokens: 16 };

  it('is a sha256 hex digest, stable across key order', () => {
    const key = requestKey('chat', body);
    expect(key).toMatch(/^[0-9a-f]{64}$/);
    expect(requestKey('chat', { max_tokens: 16, messages: [{ content: 'What is 2+2?', role: 'user' }], model: 'm' })).toBe(key);
  });

  it('differs by route', () => {
    expect(requestKey('chat', body)).not.toBe(requestKey('completions', body));
  });

  it('differs by body', () => {
    expect(requestKey('chat', body)).not.toBe(requestKey('chat', { ...body, max_tokens: 17 }));
    expect(requestKey('chat', body)).not.toBe(requestKey('chat', { ...body, temperature: 0 }));
    expect(requestKey('chat', { prompt: 'a' })).not.toBe(requestKey('chat', { prompt: 'b' }));
  });

  it('does not let the route bleed into the body (route/body boundary is delimited)', () => {
    expect(requestKey('chat', 'x')).not.toBe(requestKey('cha', 'tx'));
  });
});

describe('ResponseCache', () => {
  it('creates the directory, starts empty and persists entries across close and reopen', () => {
    const file = freshFile();
    const cache = ResponseCache.open(file);
    expect(cache.size).toBe(0);
    expect(cache.get('k1')).toBeUndefined();
    cache.put('k1', response('one'));
    cache.put('k2', response('two', { finishReason: null, promptTokens: 0 }));
    expect(cache.size).toBe(2);
    expect(cache.get('k1')?.text).toBe('one');
    cache.close();

    const reopened = ResponseCache.open(file);
    expect(reopened.size).toBe(2);
    expect(reopened.get('k1')).toEqual(response('one'));
    expect(reopened.get('k2')).toEqual(response('two', { finishReason: null, promptTokens: 0 }));
    reopened.put('k3', response('three'));
    reopened.close();

    const third = ResponseCache.open(file);
    expect(third.size).toBe(3);
    expect(third.get('k3')?.text).toBe('three');
    third.close();
    // One line per entry, newline-terminated.
    expect(readFileSync(file, 'utf8').split('\n')).toHaveLength(4);
  });

  it('keeps the last value when a key was written twice', () => {
    const file = freshFile();
    const cache = ResponseCache.open(file);
    cache.put('k', response('old'));
    cache.put('k', response('new'));
    cache.close();
    const reopened = ResponseCache.open(file);
    expect(reopened.size).toBe(1);
    expect(reopened.get('k')?.text).toBe('new');
    reopened.close();
  });

  it('survives a torn last line: ignores it, and the next put still loads after another reopen', () => {
    const file = freshFile();
    const cache = ResponseCache.open(file);
    cache.put('good', response('kept'));
    cache.close();
    // A writer killed mid-write leaves a partial line without a newline.
    appendFileSync(file, '{"k":"torn","r":{"text":"half');

    const afterCrash = ResponseCache.open(file);
    expect(afterCrash.size).toBe(1);
    expect(afterCrash.get('good')?.text).toBe('kept');
    expect(afterCrash.get('torn')).toBeUndefined();
    afterCrash.put('next', response('after crash'));
    afterCrash.close();

    const again = ResponseCache.open(file);
    expect(again.size).toBe(2);
    expect(again.get('next')).toEqual(response('after crash'));
    expect(again.get('good')?.text).toBe('kept');
    again.close();
    // The torn fragment stays on a line of its own; the new entry is on the next.
    const lines = readFileSync(file, 'utf8').split('\n');
    expect(lines[1]).toBe('{"k":"torn","r":{"text":"half');
    expect(JSON.parse(lines[2] ?? '')).toEqual({ k: 'next', r: response('after crash') });
  });

  it('ignores garbage and wrongly-shaped lines, and loads the valid ones around them', () => {
    const file = freshFile();
    const good = (k: string, text: string) => JSON.stringify({ k, r: response(text) });
    mkdirSync(dirname(file), { recursive: true });
    const lines = [
      good('a', 'A'),
      'not json at all',
      '',
      '[1,2,3]',
      'null',
      JSON.stringify({ k: 5, r: response('bad key type') }),
      JSON.stringify({ k: 'no-text', r: { finishReason: 'stop' } }),
      JSON.stringify({ k: 'no-r' }),
      '{"k":"b","r":',
      good('b', 'B'),
    ];
    writeFileSync(file, `${lines.join('\n')}\n`);
    const cache = ResponseCache.open(file);
    expect(cache.size).toBe(2);
    expect(cache.get('a')?.text).toBe('A');
    expect(cache.get('b')?.text).toBe('B');
    expect(cache.get('no-text')).toBeUndefined();
    expect(cache.get('no-r')).toBeUndefined();
    cache.close();
  });

  it('round-trips unicode and embedded newlines in response text', () => {
    const file = freshFile();
    const cache = ResponseCache.open(file);
    cache.put('u', response('Ответ: 42 ✅\nline two'));
    cache.close();
    const reopened = ResponseCache.open(file);
    expect(reopened.get('u')?.text).toBe('Ответ: 42 ✅\nline two');
    reopened.close();
  });

  it('refuses writes after close', () => {
    const file = freshFile();
    const cache = ResponseCache.open(file);
    cache.close();
    expect(() => cache.put('k', response('x'))).toThrow(`${file} is closed`);
    cache.close(); // closing twice is harmless
  });
});
