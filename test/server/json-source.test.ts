// parseKeepingPayloads: the same value JSON.parse gives, and the exact source text of every `data` and
// `info` member down to the depth API commands hold them, for generated documents with any spacing,
// escapes, nesting and repeated keys.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseKeepingPayloads, payloadText, sourceOf } from '../../src/server/json-source.js';

/** A small deterministic generator (tests must fail the same way twice). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const SPACES = ['', ' ', '\n', '\t', ' \r\n  '];
const STRINGS = ['', 'a', 'data', 'in"fo', 'back\\slash', 'é', '\u2028', '{[,:]}', '\\"', 'd\\u0061ta'];
const NUMBERS = ['0', '-0.0', '1E+2', '12345678901234567890123', '0.10000000000000001', '9007199254740993', '-1.5e-7'];

function gen(r: () => number, depth: number): string {
  const sp = () => SPACES[Math.floor(r() * SPACES.length)]!;
  const pick = r();
  if (depth > 3 || pick < 0.3) {
    const k = Math.floor(r() * 4);
    if (k === 0) return NUMBERS[Math.floor(r() * NUMBERS.length)]!;
    if (k === 1) return JSON.stringify(STRINGS[Math.floor(r() * STRINGS.length)]);
    return ['true', 'false', 'null'][Math.floor(r() * 3)]!;
  }
  const n = Math.floor(r() * 4);
  if (pick < 0.6) return `[${sp()}${Array.from({ length: n }, () => gen(r, depth + 1)).join(`${sp()},${sp()}`)}${sp()}]`;
  const keys = ['data', 'info', 'x', 'channel', 'd\\u0061ta', 'publish', ''];
  const members = Array.from({ length: n }, () => `${JSON.stringify(keys[Math.floor(r() * keys.length)]).replace('\\\\u0061', '\\u0061')}${sp()}:${sp()}${gen(r, depth + 1)}`);
  return `{${sp()}${members.join(`${sp()},${sp()}`)}${sp()}}`;
}

/** Every object reachable within `depth` levels, with the text its `data`/`info` were parsed from. */
function check(value: unknown, depth: number): number {
  if (depth > 4 || typeof value !== 'object' || value === null) return 0;
  let checked = 0;
  const children = Array.isArray(value) ? value : Object.entries(value).filter(([k]) => k !== 'data' && k !== 'info').map(([, v]) => v);
  if (!Array.isArray(value)) {
    for (const key of ['data', 'info'] as const) {
      if (!Object.hasOwn(value, key)) continue;
      const source = sourceOf(value, key);
      assert.notEqual(source, undefined, `no source for ${key}`);
      assert.deepEqual(JSON.parse(source!), (value as Record<string, unknown>)[key]);
      assert.equal(source, source!.trim(), 'no surrounding space');
      checked++;
    }
  }
  for (const child of children) checked += check(child, depth + 1);
  return checked;
}

test('generated documents: the same value as JSON.parse, and the source text of each payload member', () => {
  const r = rng(7);
  let checked = 0;
  for (let i = 0; i < 3000; i++) {
    const text = gen(r, 0);
    let expected: unknown;
    try {
      expected = JSON.parse(text);
    } catch {
      continue;
    }
    const value = parseKeepingPayloads(text);
    assert.deepEqual(value, expected, text);
    checked += check(value, 0);
  }
  assert.ok(checked > 1000, `only ${checked} payloads checked`);
});

test('payloads keep their digits, spacing and repeated keys; the last repeated member is the one kept', () => {
  const text = '{"channel":"c","data" :{"id":1234567890123456789, "a":[1.0,2.50]},"data":{"id":18446744073709551615,"k":1,"k":2} ,"info":1e400}';
  const value = parseKeepingPayloads(text) as Record<string, unknown>;
  assert.equal(payloadText(value, 'data'), '{"id":18446744073709551615,"k":1,"k":2}');
  assert.equal(payloadText(value, 'info'), '1e400');
  // A member changed after parsing is written from its value.
  value.data = { changed: true };
  assert.equal(payloadText(value, 'data'), '{"changed":true}');
  assert.equal(payloadText({ data: [1, 2] }, 'data'), '[1,2]');
  assert.equal(payloadText({}, 'data'), undefined);
});

test('invalid JSON throws as JSON.parse does; deep nesting is parsed without a deep search', () => {
  assert.throws(() => parseKeepingPayloads('{"data":'), SyntaxError);
  assert.throws(() => parseKeepingPayloads('{"data":1,}'), SyntaxError);
  const deep = `{"data":${'['.repeat(100_000)}${']'.repeat(100_000)},"x":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
  const started = process.hrtime.bigint();
  const value = parseKeepingPayloads(deep) as Record<string, unknown>;
  assert.equal(sourceOf(value, 'data')!.length, 200_000);
  assert.ok(process.hrtime.bigint() - started < 2_000_000_000n, 'linear, not quadratic');
});
