import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { shellCommand, shellQuote } from '../../common/shell.js';

const NASTY = [
  '',
  ' ',
  "it's",
  '"double"',
  '$(touch /tmp/pwned)',
  '`id`',
  'a; rm -rf /',
  'x && y || z',
  'line1\nline2',
  '*',
  '~root',
  '$HOME ${PATH}',
  'back\\slash',
  "'",
  "''",
  'a=b',
  '-n',
  '#comment',
  '!event',
  'tab\there',
  'ünïcødé ✓',
  '> /dev/null < /etc/passwd | cat &',
];

describe('shellQuote', () => {
  it('leaves plain words readable', () => {
    expect(shellQuote('abc-1.2_x/y:z@h,%j')).toBe('abc-1.2_x/y:z@h,%j');
    expect(shellQuote(42)).toBe('42');
    expect(shellQuote('a=b')).toBe("'a=b'");
    expect(shellQuote('--time=01:00:00')).toBe('--time=01:00:00');
  });

  it('makes every value exactly one word that sh and bash read back unchanged', () => {
    for (const shell of ['sh', 'bash']) {
      for (const value of NASTY) {
        const res = spawnSync(shell, ['-c', `printf '%s' ${shellQuote(value)}`], { encoding: 'utf8' });
        expect(res.stdout, `${shell}: ${JSON.stringify(value)}`).toBe(value);
      }
      const res = spawnSync(shell, ['-c', `for w in ${shellCommand(NASTY)}; do printf '[%s]' "$w"; done`], { encoding: 'utf8' });
      expect(res.stdout).toBe(NASTY.map((v) => `[${v}]`).join(''));
    }
  });

  it('refuses NUL, which no shell word can hold', () => {
    expect(() => shellQuote('a\0b')).toThrow(/NUL/);
  });
});
