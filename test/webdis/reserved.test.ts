// On the Redis engine, Webdis clients share Redis's pub/sub namespace with Herald itself. They can
// neither read nor forge a Herald channel's traffic, nor send the nodes' control messages: PUBLISH and
// SUBSCRIBE of Herald's own names are refused (403) whatever the ACL says, and patterns do not match
// them. Names that merely start with the same letters stay open.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { client, collect, once, openNamespace, until } from '../helpers/herald.js';
import { RedisProcess } from '../helpers/redis.js';
import { http, httpStatus, OPEN_LOCAL, startWebdis, WdClient, type WebdisNode } from './helpers.js';

let redis: RedisProcess;
let node: WebdisNode;
const sockets: WdClient[] = [];

before(async () => {
  redis = await RedisProcess.start();
  node = await startWebdis({
    engine: { type: 'redis', redis: { url: redis.url } },
    client: { allow_anonymous_connect_without_token: true },
    channel: { namespaces: [openNamespace('jobs')] },
  });
});

after(async () => {
  for (const s of sockets) s.close();
  await node?.close();
  await redis?.stop();
});

async function open(n: WebdisNode = node): Promise<WdClient> {
  const s = await WdClient.open(`${n.wsBase}/.json`);
  sockets.push(s);
  return s;
}

const FORBIDDEN = { error: true, message: 'Forbidden', http_status: 403 };

for (const [label, acl] of [
  ['the default ACL', undefined],
  ['an ACL opening every command', OPEN_LOCAL],
] as const) {
  test(`with ${label}, a Webdis client cannot read, forge or control Herald's own channels`, async () => {
    const n = acl ? await startWebdis({ engine: { type: 'redis', redis: { url: redis.url } }, client: { allow_anonymous_connect_without_token: true }, channel: { namespaces: [openNamespace('jobs')] }, webdis: { acl: [...acl] } }) : node;
    try {
      const native = client(n);
      const sub = native.newSubscription('jobs:1');
      const got = collect(sub);
      sub.subscribe();
      native.connect();
      await once(sub, 'subscribed');

      const spy = await open(n);
      assert.deepEqual(await spy.call('PSUBSCRIBE', '*'), { PSUBSCRIBE: ['psubscribe', '*', 1] });
      assert.deepEqual(await spy.call('PSUBSCRIBE', 'herald*'), { PSUBSCRIBE: ['psubscribe', 'herald*', 2] });

      const other = await open(n);
      for (const name of ['herald{jobs:1}.p', 'herald.control']) {
        assert.deepEqual(await other.call('PUBLISH', name, '{"forged":true}'), FORBIDDEN, name);
      }
      assert.deepEqual(await other.call('PUBLISH', 'herald.control', '{"method":"disconnect","params":{"user":""}}'), FORBIDDEN);
      assert.deepEqual(await other.call('SUBSCRIBE', 'herald{jobs:1}.p'), FORBIDDEN);
      assert.deepEqual(await other.call('SUBSCRIBE', 'news', 'herald.control'), FORBIDDEN);
      assert.equal((await http(n.webdisPort, 'GET', '/PUBLISH/herald.control/x')).status, 403);
      assert.equal(await httpStatus(n.webdisPort, `/SUBSCRIBE/${encodeURIComponent('herald{jobs:1}.p')}`), 403);

      await n.api.publish('jobs:1', { secret: 'for subscribers of jobs:1 only' });
      await until(() => got.length === 1, 5000, 'the native publication');
      assert.deepEqual(got, [{ secret: 'for subscribers of jobs:1 only' }], 'nothing forged reached the native subscriber');
      assert.equal(native.state, 'connected', 'no control message reached the node');

      // The spy's next frames are the plain channel's, matched by both patterns: nothing of Herald's came before them.
      const receivers = (await other.call('PUBLISH', 'heraldry', 'open')).PUBLISH;
      assert.ok(Number.isInteger(receivers) && receivers >= 1, `PUBLISH answered ${receivers}`);
      const matched = [await spy.json(), await spy.json()].map((f) => JSON.stringify(f)).sort();
      assert.deepEqual(matched, [
        JSON.stringify({ PSUBSCRIBE: ['pmessage', '*', 'heraldry', 'open'] }),
        JSON.stringify({ PSUBSCRIBE: ['pmessage', 'herald*', 'heraldry', 'open'] }),
      ]);
      await spy.quiet(200);
      assert.deepEqual(await other.call('SUBSCRIBE', 'heraldry'), { SUBSCRIBE: ['subscribe', 'heraldry', 1] });
    } finally {
      if (n !== node) await n.close();
    }
  });
}

test("with ws4redis on, its channels are not Webdis's: no PUBLISH, SUBSCRIBE or pattern match; with it off they are ordinary channels", async () => {
  const both = await startWebdis({ ws4redis: { enabled: true, allowed_channels: ['subscribe-broadcast', 'subscribe-user', 'publish-broadcast'] }, webdis: { acl: [...OPEN_LOCAL] } });
  const plain = await startWebdis({ webdis: { acl: [...OPEN_LOCAL] } });
  try {
    // A ws4redis page on the broadcast channel of `chat`.
    const page = new WebSocket(`ws://127.0.0.1:${both.port}/ws/chat?subscribe-broadcast`);
    const received: string[] = [];
    page.on('message', (d: Buffer) => received.push(d.toString()));
    await once(page, 'open');
    const spy = await open(both);
    assert.deepEqual(await spy.call('PSUBSCRIBE', '*'), { PSUBSCRIBE: ['psubscribe', '*', 1] });
    const other = await open(both);
    assert.deepEqual(await other.call('PUBLISH', 'broadcast:chat', 'forged'), FORBIDDEN);
    assert.deepEqual(await other.call('SUBSCRIBE', 'user:alice:chat'), FORBIDDEN);
    assert.equal((await http(both.webdisPort, 'GET', '/PUBLISH/broadcast:chat/forged')).status, 403);
    assert.equal(await httpStatus(both.webdisPort, '/SUBSCRIBE/session:abc:chat'), 403);
    // What ws4redis's own publisher sends reaches the page, and not the Webdis pattern.
    const publisher = new WebSocket(`ws://127.0.0.1:${both.port}/ws/chat?publish-broadcast`);
    await once(publisher, 'open');
    publisher.send('for the page');
    await until(() => received.length === 1, 5000, 'the page to receive');
    assert.deepEqual(received, ['for the page']);
    await other.call('PUBLISH', 'news', 'for webdis');
    assert.deepEqual(await spy.json(), { PSUBSCRIBE: ['pmessage', '*', 'news', 'for webdis'] });
    await spy.quiet(200);
    page.terminate();
    publisher.terminate();

    const ordinary = await open(plain);
    assert.deepEqual(await ordinary.call('SUBSCRIBE', 'user:alice:chat'), { SUBSCRIBE: ['subscribe', 'user:alice:chat', 1] });
  } finally {
    await both.close();
    await plain.close();
  }
});
