// Redis glob patterns, matched without backtracking: the same answers as a reference matcher (a
// regular expression, fine on short names) for generated patterns and names, and patterns that take a
// backtracking matcher exponential time answer at once.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileGlob } from '../../src/engine/glob.js';

/** The reference: the pattern as an anchored RegExp (exponential on adversarial input; fine here). */
function reference(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') re += '[\\s\\S]*';
    else if (c === '?') re += '[\\s\\S]';
    else if (c === '\\' && i + 1 < glob.length) re += `\\u${glob.charCodeAt(++i).toString(16).padStart(4, '0')}`;
    else if (c === '[') {
      let j = i + 1;
      const open = j;
      let body = '';
      let negate = false;
      if (glob[j] === '^') {
        negate = true;
        j++;
      }
      let closed = false;
      for (; j < glob.length; j++) {
        if (glob[j] === ']' && j !== open) {
          closed = true;
          break;
        }
        let lo = glob[j]!;
        if (lo === '\\' && j + 1 < glob.length) lo = glob[++j]!;
        if (glob[j + 1] === '-' && j + 2 < glob.length && glob[j + 2] !== ']') {
          let hi = glob[j + 2]!;
          j += 2;
          if (hi === '\\' && j + 1 < glob.length) hi = glob[++j]!;
          const [a, b] = [lo.charCodeAt(0), hi.charCodeAt(0)].sort((x, y) => x - y);
          body += `\\u${a!.toString(16).padStart(4, '0')}-\\u${b!.toString(16).padStart(4, '0')}`;
        } else body += `\\u${lo.charCodeAt(0).toString(16).padStart(4, '0')}`;
      }
      if (!closed) re += '\\[';
      else {
        re += negate && body === '' ? '[\\s\\S]' : `[${negate ? '^' : ''}${body}]`;
        i = j;
      }
    } else re += `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
  }
  return new RegExp(`^${re}$`);
}

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

test('generated patterns and names: the same answers as the reference', () => {
  const r = rng(11);
  const pick = (chars: string) => chars[Math.floor(r() * chars.length)]!;
  let matched = 0;
  for (let i = 0; i < 20_000; i++) {
    const glob = Array.from({ length: Math.floor(r() * 8) }, () => pick('ab*?[]^-\\c')).join('');
    const name = Array.from({ length: Math.floor(r() * 8) }, () => pick('abc-]^\\[')).join('');
    const expected = reference(glob).test(name);
    assert.equal(compileGlob(glob).test(name), expected, `${JSON.stringify(glob)} on ${JSON.stringify(name)}`);
    if (expected) matched++;
  }
  assert.ok(matched > 500, `only ${matched} matches among the cases`);
});

test('the forms Redis documents', () => {
  const cases: Array<[string, string, boolean]> = [
    ['h?llo', 'hello', true],
    ['h?llo', 'hllo', false],
    ['h*llo', 'hllo', true],
    ['h*llo', 'heeeello', true],
    ['h[ae]llo', 'hallo', true],
    ['h[ae]llo', 'hillo', false],
    ['h[^e]llo', 'hallo', true],
    ['h[^e]llo', 'hello', false],
    ['h[a-b]llo', 'hbllo', true],
    ['h[b-a]llo', 'hallo', true],
    ['h\\*llo', 'h*llo', true],
    ['h\\*llo', 'hello', false],
    ['news.*', 'news.sport', true],
    ['news', 'news', true],
    ['news', 'newsx', false],
    ['*', '', true],
    ['', '', true],
    ['[abc', '[abc', true],
    ['[^]', 'x', true],
    ['[^]a]', 'b', false],
    ['[^]a]', 'ba]', true],
    ['[^]a]', 'xa]', true],
    ['[]a]', ']', true],
  ];
  for (const [glob, name, expected] of cases) assert.equal(compileGlob(glob).test(name), expected, `${glob} on ${name}`);
});

test('patterns that make a backtracking matcher run for ever are answered at once', () => {
  const started = process.hrtime.bigint();
  assert.equal(compileGlob(`${'*a'.repeat(30)}b`).test('a'.repeat(10_000)), false);
  assert.equal(compileGlob(`${'*a'.repeat(30)}b`).test(`${'a'.repeat(10_000)}b`), true);
  assert.equal(compileGlob('*?*?*?*?*?*?*?*?*?*?x').test('y'.repeat(10_000)), false);
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  assert.ok(ms < 2000, `took ${ms} ms`);
});
