import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { RedisEngine, type RedisEngineOptions } from '../../src/engine/redis.js';
import { FUNCTION_LIBRARY, FUNCTION_LIBRARY_VERSION } from '../../src/engine/redis-functions.js';
import { until } from '../helpers/herald.js';
import { RedisProcess } from '../helpers/redis.js';
import { engineContract } from './contract.js';

let redis: RedisProcess;
before(async () => {
  redis = await RedisProcess.start();
});
after(() => redis.stop());

/** An engine on the test's Redis (not started). */
const engineOn = (prefix: string, extra: Partial<RedisEngineOptions> = {}) =>
  new RedisEngine({
    historyMetaTtlMs: 3_600_000,
    idempotentResultTtlMs: 60_000,
    url: redis.url,
    prefix,
    commandTimeoutMs: 5000,
    shardedPubsub: true,
    log: pino({ level: 'silent' }),
    ...extra,
  });

engineContract({ name: 'redis', create: async (opts) => engineOn('contract', opts) });

test("the Redis engine's own names are reserved: its prefix followed by '{' or '.'", () => {
  const engine = engineOn('contract');
  assert.deepEqual(
    ['contract{x}.p', 'contract.control', 'contract{nodes}.z', 'contract', 'contractual', 'x.contract.control', 'herald.control'].map((n) => engine.reservedName(n)),
    [true, true, true, false, false, false, false],
  );
});

test("the live nodes: a node whose own announcement expired is listed again as soon as it announces; others' expired ones go; a withdrawal waits for an announcement under way", async () => {
  const engine = engineOn('announce');
  const other = engineOn('announce');
  await engine.start({ onPublication: () => undefined, node: 'n1' });
  await other.start({ onPublication: () => undefined, node: 'n2' });
  try {
    const listed = async () => (await engine.nodes()).map((n) => n.uid).sort();
    await engine.announce({ uid: 'self' }, 50);
    await other.announce({ uid: 'gone' }, 50);
    await new Promise((r) => setTimeout(r, 120));
    await engine.announce({ uid: 'self' }, 60_000);
    assert.deepEqual(await listed(), ['self'], 'listed again at once; the other expired one dropped');
    const r = redis.client();
    try {
      assert.deepEqual(await r.hkeys('announce.{nodes}.h'), ['self'], "the expired one's info is gone too");
    } finally {
      r.disconnect();
    }
    // A withdrawal issued while an announcement is on its way is not undone by it.
    const announcing = other.announce({ uid: 'leaving' }, 60_000);
    await other.withdraw('leaving');
    await announcing;
    await other.announce({ uid: 'leaving' }, 60_000); // a timer that fired late: not announced again
    assert.deepEqual(await listed(), ['self']);
  } finally {
    await engine.close();
    await other.close();
  }
});

test('a SUBSCRIBE that times out while Redis is paused leaves Redis without the subscription once it runs', async () => {
  // Redis answers nobody for 6.5 s: the engine gives up on the SUBSCRIBE after 2 s and tells the
  // subscriber so. Redis runs the SUBSCRIBE when the pause ends; the engine's UNSUBSCRIBE, sent after
  // it, must run after it, or Redis would go on sending the channel's messages for nothing.
  const engine = engineOn('paused', { commandTimeoutMs: 10_000 }); // longer than the pause: the subscribe's own timeout is what fails
  const got: string[] = [];
  await engine.start({ onPublication: (channel) => void got.push(channel) });
  const admin = redis.client();
  const ours = async () => ((await admin.call('PUBSUB', 'CHANNELS', 'paused*')) as string[]).filter((c) => c.includes('late'));
  try {
    const start = Date.now();
    await admin.call('CLIENT', 'PAUSE', '6500', 'ALL');
    await assert.rejects(engine.subscribe('late'), /redis subscribe failed: timed out/);
    // Once the pause is over, Redis runs what was queued; asked only then (the admin waits too).
    while (Date.now() < start + 6500 || (await ours()).length > 0) {
      assert.ok(Date.now() < start + 10_000, `still subscribed: ${await ours()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    // The channel works when wanted again.
    await engine.subscribe('late');
    assert.equal((await ours()).length, 1);
    await engine.publish('late', { data: Buffer.from('1') });
    await until(() => got.includes('late'));
  } finally {
    admin.disconnect();
    await engine.close();
  }
});

test('a channel subscribed again before its UNSUBSCRIBE reached Redis stays subscribed (as after a cluster failover, where ioredis can send them out of order)', async () => {
  const engine = engineOn('overtaken');
  const got: string[] = [];
  await engine.start({ onPublication: (channel, pub) => void got.push(`${channel} ${pub.data.toString()}`) });
  // The UNSUBSCRIBE is held back 300 ms on its way to Redis, as ioredis's queue of a reconnecting
  // cluster connection holds it, so the SUBSCRIBE made after it reaches Redis first.
  const sub = (engine as unknown as { sub: { unsubscribe: (...names: string[]) => Promise<unknown> } }).sub;
  const unsubscribe = sub.unsubscribe.bind(sub);
  sub.unsubscribe = async (...names: string[]) => {
    await new Promise((r) => setTimeout(r, 300));
    return unsubscribe(...names);
  };
  try {
    await engine.subscribe('room');
    const leaving = engine.unsubscribe('room');
    await new Promise((r) => setTimeout(r, 50)); // the UNSUBSCRIBE is on its way
    await engine.subscribe('room');
    await leaving; // Redis has run the UNSUBSCRIBE now
    // Published again until one arrives: Redis holds the channel once the engine has subscribed it again.
    const end = Date.now() + 3000;
    for (let i = 1; !got.some((g) => g.startsWith('room ')); i++) {
      assert.ok(Date.now() < end, 'a publication after the overtaken UNSUBSCRIBE');
      await engine.publish('room', { data: Buffer.from(String(i)) });
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await engine.close();
  }
});

test("a foreign publisher's payload that looks like a join without a client is a publication, not a join", async () => {
  const engine = engineOn('foreign');
  const pubs: string[] = [];
  const joins: string[] = [];
  await engine.start({ onPublication: (_c, pub) => void pubs.push(pub.data.toString()), onJoinLeave: (_c, kind, info) => void joins.push(`${kind} ${info.client}`) });
  const admin = redis.client();
  try {
    await engine.subscribe('room');
    for (const text of ['{"j":"join","i":{}}\n', '{"j":"leave","i":[]}\n', '{"j":"join","i":{"c":""}}\n']) await admin.call('PUBLISH', 'foreign{room}.p', text);
    await admin.call('PUBLISH', 'foreign{room}.p', '{"j":"join","i":{"u":"","c":"x1"}}\n');
    await until(() => pubs.length === 3 && joins.length === 1, 3000, 'three publications and one join');
    assert.deepEqual(joins, ['join x1']);
  } finally {
    admin.disconnect();
    await engine.close();
  }
});

test('an older function library installed by an earlier build (after Redis lost its functions) is replaced at the next announcement', async () => {
  const engine = engineOn('recheck');
  await engine.start({ onPublication: () => 0 });
  const admin = redis.client();
  try {
    await engine.announce({ uid: 'n1' }, 10_000);
    assert.equal(Number(await admin.call('FCALL', 'herald_version', '0')), FUNCTION_LIBRARY_VERSION);
    // What an earlier build installs: the same library name and functions, an older version (every call still works).
    const older = FUNCTION_LIBRARY.replace(`return ${FUNCTION_LIBRARY_VERSION} end`, `return ${FUNCTION_LIBRARY_VERSION - 1} end`);
    assert.notEqual(older, FUNCTION_LIBRARY);
    await admin.call('FUNCTION', 'LOAD', 'REPLACE', older);
    assert.equal(Number(await admin.call('FCALL', 'herald_version', '0')), FUNCTION_LIBRARY_VERSION - 1);
    await engine.announce({ uid: 'n1' }, 10_000);
    await until(async () => Number(await admin.call('FCALL', 'herald_version', '0')) === FUNCTION_LIBRARY_VERSION, 3000, 'this build\'s library back');
  } finally {
    admin.disconnect();
    await engine.close();
  }
});
