// Fossil delta compression over the Redis engine: a publication marked for delta on one node (the
// API's `delta`) is marked on every node (the envelope carries it) and in the history a client
// recovers from; centrifuge-js on another node decodes what was published.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { deltaCounts } from '../../src/dialects/native/delta.js';
import { client, collect, openNamespace, startNode, until, userToken, type TestNode } from '../helpers/herald.js';
import { RawClient, type Msg } from '../helpers/raw.js';
import { RedisProcess } from '../helpers/redis.js';

const board = (step: number) => ({ step, rows: Array.from({ length: 30 }, (_, i) => ({ name: `row ${i}`, value: i === step % 30 ? step : i })) });

describe('delta compression on the Redis engine', () => {
  let redis: RedisProcess;
  let a: TestNode;
  let b: TestNode;

  before(async () => {
    redis = await RedisProcess.start();
    const config = {
      engine: { type: 'redis' as const, redis: { url: redis.url } },
      channel: {
        namespaces: [
          openNamespace('d', { history_size: 50, history_ttl: '60s', allow_recovery: true, allowed_delta_types: ['fossil'] }),
          openNamespace('cache', { history_size: 1, history_ttl: '60s', force_recovery: true, force_recovery_mode: 'cache', allowed_delta_types: ['fossil'], delta_publish: true }),
        ],
      },
    };
    [a, b] = await Promise.all([startNode(config), startNode(config)]);
  });
  after(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await redis?.stop();
  });

  test('published with delta on node B: deltas on node A, live and recovered from history', async () => {
    const c = client(a, { token: await userToken('u1') });
    const sub = c.newSubscription('d:x', { delta: 'fossil' });
    const got = collect(sub);
    sub.subscribe();
    c.connect();
    await sub.ready(3000);
    const raw = await RawClient.open(a.wsUrl);
    await raw.connect({ token: await userToken('u2') });
    const subscribed = (await raw.call('subscribe', { channel: 'd:x', delta: 'fossil', recoverable: true })).subscribe as Msg;
    assert.equal(subscribed.delta, true);

    await b.api.publish('d:x', board(1), { delta: true });
    await b.api.publish('d:x', board(2));
    for (let i = 3; i <= 5; i++) await b.api.publish('d:x', board(i), { delta: true });
    await until(() => got.length === 5 && raw.pushes('d:x').length === 5, 5000, 'five publications on node A');
    assert.deepEqual(got, [1, 2, 3, 4, 5].map(board));
    // The first has no base; the second was not published with delta.
    assert.deepEqual(
      raw.pushes('d:x').map((p) => p.delta),
      [undefined, undefined, true, true, true],
    );
    assert.ok(sub.deltaStats().numDeltaPayloads === 3, JSON.stringify(sub.deltaStats()));
    raw.close();

    // Recovering from offset 1 on node B: the flags come back from Redis's history.
    const again = await RawClient.open(b.wsUrl);
    await again.connect({ token: await userToken('u2') });
    const rec = (await again.call('subscribe', { channel: 'd:x', delta: 'fossil', recoverable: true, recover: true, offset: 1, epoch: subscribed.epoch }))
      .subscribe as Msg;
    assert.equal(rec.recovered, true);
    assert.deepEqual(
      (rec.publications as Msg[]).map((p) => [p.offset, p.delta]),
      [
        [2, undefined],
        [3, true],
        [4, true],
        [5, true],
      ],
    );
    again.close();
    c.disconnect();
  });

  test('subscribers whose base came from Redis history (each its own copy) share one delta of the next publication', async () => {
    await b.api.publish('cache:x', board(1));
    const clients = await Promise.all(
      Array.from({ length: 10 }, async () => {
        const raw = await RawClient.open(a.wsUrl);
        await raw.connect({ token: await userToken('u3') });
        const reply = (await raw.call('subscribe', { channel: 'cache:x', delta: 'fossil', recover: true, offset: 0, epoch: '' })).subscribe as Msg;
        assert.equal((reply.publications as Msg[]).length, 1, 'the latest, from history');
        return raw;
      }),
    );
    const before = deltaCounts.diffs;
    await b.api.publish('cache:x', board(2));
    await until(() => clients.every((c) => c.pushes('cache:x').length === 1), 5000, 'the next publication everywhere');
    assert.ok(clients.every((c) => c.pushes('cache:x')[0]!.delta === true));
    assert.equal(deltaCounts.diffs - before, 1, 'one delta for the ten');
    for (const c of clients) c.close();
  });
});
