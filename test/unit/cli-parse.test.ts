import { describe, expect, it } from 'vitest';
import { modelsUrl } from '../../activities/endpoint.js';
import { parseSince } from '../../client/commands/ls.js';
import { formatNumber, json, table } from '../../client/output.js';
import { ConfigError } from '../../config/errors.js';

const NOW = new Date('2026-03-10T12:00:00.000Z');

function sinceError(value: string): ConfigError {
  try {
    parseSince(value, NOW);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error(`expected a ConfigError for '${value}'`);
}

describe('parseSince', () => {
  it('reads durations back from now in s, m, h, d and w', () => {
    expect(parseSince('30s', NOW).toISOString()).toBe('2026-03-10T11:59:30.000Z');
    expect(parseSince('30m', NOW).toISOString()).toBe('2026-03-10T11:30:00.000Z');
    expect(parseSince('6h', NOW).toISOString()).toBe('2026-03-10T06:00:00.000Z');
    expect(parseSince('1d', NOW).toISOString()).toBe('2026-03-09T12:00:00.000Z');
    expect(parseSince('2w', NOW).toISOString()).toBe('2026-02-24T12:00:00.000Z');
    expect(parseSince('0s', NOW).toISOString()).toBe(NOW.toISOString());
  });

  it('trims surrounding whitespace of a duration', () => {
    expect(parseSince(' 6h ', NOW).toISOString()).toBe('2026-03-10T06:00:00.000Z');
  });

  it('defaults `now` to the current time', () => {
    const before = Date.now();
    const t = parseSince('1h').getTime();
    expect(t).toBeGreaterThanOrEqual(before - 3_600_000);
    expect(t).toBeLessThanOrEqual(Date.now() - 3_600_000);
  });

  it('reads ISO dates and date-times', () => {
    expect(parseSince('2026-01-31', NOW).toISOString()).toBe('2026-01-31T00:00:00.000Z'); // date-only ISO is UTC
    expect(parseSince('2026-01-31T12:34:56Z', NOW).toISOString()).toBe('2026-01-31T12:34:56.000Z');
    expect(parseSince('2026-01-31T12:00:00+02:00', NOW).toISOString()).toBe('2026-01-31T10:00:00.000Z');
    // Without an offset a date-time is local time.
    expect(parseSince('2026-01-31T12:00:00', NOW).getTime()).toBe(new Date(2026, 0, 31, 12, 0, 0).getTime());
  });

  it('rejects bad input with a ConfigError naming --since', () => {
    for (const bad of ['', 'yesterday', '6x', '1.5h', '-1h', '6 h', 'h', '2026-13-45']) {
      const err = sinceError(bad);
      expect(err.keyPath).toBe('--since');
      expect(err.message).toBe(`--since: expected a date (2026-01-31, 2026-01-31T12:00:00) or a duration (6h, 1d), got '${bad}'`);
    }
  });

  it('rejects a bare number (a duration without its unit) instead of reading it as a year-2001 date', () => {
    // V8's Date parser reads "6" as 2001-06-01: `--since 6` would silently list runs since 2001.
    for (const bad of ['6', '1', '12']) expect(sinceError(bad).keyPath).toBe('--since');
  });
});

describe('table', () => {
  it('pads every column but the last to its widest cell and underlines the header', () => {
    const text = table(
      ['TASK', 'TYPES', 'RUNS IN'],
      [
        ['evalflow.gsm8k', 'chat,completions', 'built-in'],
        ['x', 'chat', 'nvcr.io/simple-evals:1'],
      ],
    );
    expect(text).toBe(
      [
        'TASK            TYPES             RUNS IN',
        '--------------  ----------------  ----------------------',
        'evalflow.gsm8k  chat,completions  built-in',
        'x               chat              nvcr.io/simple-evals:1',
        '',
      ].join('\n'),
    );
  });

  it('aligns columns: each column starts at the same offset on every line', () => {
    const text = table(['A', 'LONG HEADER', 'C'], [[1, 'x', 'tail'], ['wide cell', 22, '']]);
    const lines = text.split('\n');
    expect(lines).toHaveLength(5);
    expect(lines[4]).toBe('');
    expect(lines[0]).toBe('A          LONG HEADER  C');
    expect(lines[1]).toBe('---------  -----------  ----');
    expect(lines[2]).toBe('1          x            tail');
    expect(lines[3]).toBe('wide cell  22           ');
    // Column 2 starts at offset 11 and column 3 at 24 on every line.
    for (const line of lines.slice(0, 4)) {
      expect(line[9]).toBe(' ');
      expect(line[10]).toBe(' ');
      expect(line[11]).not.toBe(' ');
      expect(line.slice(22, 24)).toBe('  ');
    }
  });

  it('prints just the header and rule for no rows', () => {
    expect(table(['ID', 'STATUS'], [])).toBe('ID  STATUS\n--  ------\n');
  });
});

describe('json / formatNumber', () => {
  it('pretty-prints JSON with a trailing newline', () => {
    expect(json({ a: [1] })).toBe('{\n  "a": [\n    1\n  ]\n}\n');
  });

  it('prints integers as they are and other numbers with 4 decimals', () => {
    expect(formatNumber(3)).toBe('3');
    expect(formatNumber(0.5)).toBe('0.5000');
    expect(formatNumber(1 / 3)).toBe('0.3333');
  });
});

describe('modelsUrl', () => {
  it('maps a chat completions URL to the models route next to it', () => {
    expect(modelsUrl('http://h:8000/v1/chat/completions')).toBe('http://h:8000/v1/models');
    expect(modelsUrl('http://h:8000/v1/chat/completions/')).toBe('http://h:8000/v1/models');
  });

  it('maps a completions URL', () => {
    expect(modelsUrl('https://api.example.com/v1/completions')).toBe('https://api.example.com/v1/models');
  });

  it('keeps a path prefix and drops the query string', () => {
    expect(modelsUrl('http://gw/serving/llama/v1/chat/completions?api-version=2')).toBe('http://gw/serving/llama/v1/models');
  });

  it('appends /models to a base URL', () => {
    expect(modelsUrl('http://h:8000/v1')).toBe('http://h:8000/v1/models');
  });

  it('does not produce a double slash for a base URL with a trailing slash or no path', () => {
    expect(modelsUrl('http://h:8000/v1/')).toBe('http://h:8000/v1/models');
    expect(new URL(modelsUrl('http://h:8000')).pathname).not.toContain('//');
  });
});
