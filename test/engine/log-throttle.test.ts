// A warning repeated by every retry of a connection, or by every request while the engine is away, is
// logged once per interval, with a count of the repeats it left out; different warnings are each logged.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { throttledWarn } from '../../src/engine/log-throttle.js';
import { HeraldError, logFailure } from '../../src/errors.js';

test('a repeated warning is logged once per interval, then with the number of repeats left out', async () => {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  const warn = throttledWarn(log, 200);
  for (let i = 0; i < 100; i++) warn('pub/sub Connection is closed.', { role: 'pub/sub' }, 'redis pub/sub connection error');
  warn('commands ECONNREFUSED', { role: 'commands' }, 'redis commands connection error');
  assert.deepEqual(lines.map((l) => [l.msg, l.repeated]), [
    ['redis pub/sub connection error', undefined],
    ['redis commands connection error', undefined],
  ]);
  await new Promise((r) => setTimeout(r, 250));
  warn('pub/sub Connection is closed.', { role: 'pub/sub' }, 'redis pub/sub connection error');
  assert.equal(lines.length, 3);
  assert.equal(lines[2]!.repeated, 99);
  assert.equal(lines[2]!.level, 40);
});

test('requests failing while the engine is away: one warning per message per 5 s; other failures each logged as errors', () => {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  const away = new HeraldError('HERALD_ERR_ENGINE', 'redis unavailable: Connection is closed.');
  for (let i = 0; i < 500; i++) logFailure(log, away, { channel: `c${i}` }, 'subscribe failed');
  for (let i = 0; i < 200; i++) logFailure(log, away, { method: 'publish' }, 'API method failed');
  for (let i = 0; i < 3; i++) logFailure(log, new Error('bug'), { method: 'publish' }, 'API method failed');
  assert.deepEqual(
    lines.map((l) => [l.level, l.msg]),
    [
      [40, 'subscribe failed: engine unavailable'],
      [40, 'API method failed: engine unavailable'],
      [50, 'API method failed'],
      [50, 'API method failed'],
      [50, 'API method failed'],
    ],
  );
});
