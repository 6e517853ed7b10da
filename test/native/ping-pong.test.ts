// Server pings: `{}` every client.ping_interval, a client that does not answer `{}` within
// pong_timeout is closed with 3012; centrifuge-js answers and stays connected; with
// `?cf_ws_frame_ping_pong=true` WebSocket ping frames replace protocol pings.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { client, record, startNode, userToken, type TestNode } from '../helpers/herald.js';
import { RawClient, sleep } from '../helpers/raw.js';

let node: TestNode;
before(async () => {
  node = await startNode({
    client: { ping_interval: '1s', pong_timeout: '500ms' },
    channel: { namespaces: [{ name: 'news', allow_subscribe_for_client: true }] },
  });
});
after(() => node.close());

async function raw(query = '', ws = {}): Promise<{ r: RawClient; result: Record<string, any> }> {
  const r = await RawClient.open(node.wsUrl + query, { ws });
  const result = await r.connect({ token: await userToken('alice') });
  return { r, result };
}

test('pings, pongs and the 3012 close, all at once (one ping interval costs a second)', async () => {
  const silent = await raw();
  const polite = await raw();
  assert.equal(silent.result.ping, 1);
  assert.equal(silent.result.pong, true);
  // The polite client answers every ping with the empty command.
  let pings = 0;
  polite.r.ws.on('message', (data: Buffer) => {
    for (const line of data.toString().split('\n')) {
      if (line === '{}') {
        pings++;
        polite.r.send({});
      }
    }
  });
  const sdk = client(node, { token: await userToken('bob') });
  const log = record(sdk, 'connecting', 'connected', 'disconnected');
  const sub = sdk.newSubscription('news:ping');
  sub.subscribe();
  sdk.connect();
  await sub.ready(2000);

  // The silent one gets a ping (the first comes at half to one interval), then the close.
  const started = Date.now();
  await silent.r.waitFor((m) => Object.keys(m).length === 0, 2000, 'a ping');
  assert.equal(silent.r.frames.find((f) => f === '{}'), '{}', 'the ping is the empty reply {}');
  const closed = await silent.r.waitClose(2000);
  assert.equal(closed.code, 3012);
  assert.ok(Date.now() - started < 2000);

  await sleep(2600);
  assert.ok(pings >= 2, `the polite client got ${pings} pings`);
  assert.equal(polite.r.closeInfo, undefined, 'answering pings keeps the connection');
  assert.equal(sdk.state, 'connected');
  assert.deepEqual(log.map(([e]) => e), ['connecting', 'connected'], 'centrifuge-js answered every ping');
  // Both still receive.
  await polite.r.call('subscribe', { channel: 'news:ping2' });
  await node.api.publish('news:ping2', 'p');
  await polite.r.waitFor((m) => m.push?.channel === 'news:ping2');
  polite.r.close();
  sdk.disconnect();
});

test('a ping nearly due goes in the same frame as a publication, never later than the interval', async () => {
  // Its own node: a 2 s interval lets a ping go up to 200 ms early, far more than the gaps between
  // this test's publications even on a busy machine.
  const busy = await startNode({
    client: { ping_interval: '2s', pong_timeout: '1s' },
    channel: { namespaces: [{ name: 'news', allow_subscribe_for_client: true }] },
  });
  try {
    const r = await RawClient.open(busy.wsUrl);
    await r.connect({ token: await userToken('alice') });
    const connectedAt = Date.now();
    const pingTimes: number[] = [];
    r.ws.on('message', (data: Buffer) => {
      if (!data.toString().split('\n').includes('{}')) return;
      pingTimes.push(Date.now());
      r.send({});
    });
    await r.call('subscribe', { channel: 'news:busy' });
    // A publication every 20 ms or so for 6.6 s: three or four pings fall in that time.
    while (Date.now() - connectedAt < 6600) {
      await busy.herald.publish('news:busy', { at: Date.now() });
      await sleep(20);
    }
    const pingFrames = r.frames.filter((f) => f.split('\n').includes('{}'));
    assert.ok(pingFrames.length >= 3, `${pingFrames.length} pings in 6.6 s at a 2 s interval`);
    // A stalled turn of this test could leave the window without a publication, and that ping would
    // go alone; without early pings every ping would.
    const alone = pingFrames.filter((f) => !f.includes('"push":{"channel":"news:busy"'));
    assert.ok(alone.length <= 1, `pings sent alone instead of with a publication: ${alone.length} of ${pingFrames.length}`);
    // Early, not late: never more than one interval apart (plus a little for timers and this busy
    // test), so the client's watchdog never misses one; and at most a tenth of an interval early.
    const gaps = pingTimes.map((t, i) => t - (i === 0 ? connectedAt : pingTimes[i - 1]!));
    assert.ok(gaps.every((g) => g <= 2000 + 250), `gaps between pings: ${gaps.join(', ')} ms`);
    assert.ok(gaps.slice(1).every((g) => g >= 1800 - 250), `gaps between pings: ${gaps.join(', ')} ms`);
    // Pings that only ever waited for their interval would be 2,000 ms or more apart.
    assert.ok(gaps.slice(1).some((g) => g < 1950), `no ping went early: gaps ${gaps.join(', ')} ms`);
    assert.equal(r.closeInfo, undefined, 'the pongs to early pings are accepted');
    r.close();
  } finally {
    await busy.close();
  }
});

test('cf_ws_frame_ping_pong=true: no ping/pong in the connect result, WebSocket ping frames instead', async () => {
  const framed = await raw('?cf_ws_frame_ping_pong=true');
  assert.equal('ping' in framed.result, false);
  assert.equal('pong' in framed.result, false);
  let framePings = 0;
  framed.r.ws.on('ping', () => framePings++);
  // A client that does not answer ping frames is closed the same way.
  const mute = await raw('?cf_ws_frame_ping_pong=true', { autoPong: false });
  const closed = await mute.r.waitClose(2500);
  assert.equal(closed.code, 3012);
  await sleep(1200);
  assert.ok(framePings >= 1, 'ping frames arrive');
  assert.equal(framed.r.frames.includes('{}'), false, 'no protocol pings');
  assert.equal(framed.r.closeInfo, undefined, 'ws answers ping frames: the connection stays');
  framed.r.close();
});

test('a pong timeout as long as the ping interval or longer: an unanswered ping still closes with 3012 (the next ping does not push its deadline back)', async () => {
  const slow = await startNode({ client: { ping_interval: '1s', pong_timeout: '1500ms' } });
  try {
    const r = await RawClient.open(slow.wsUrl);
    await r.connect({ token: await userToken('carol') });
    // First ping 0.5–1 s after connect, its deadline 1.5 s after it; pings keep coming every second.
    const closed = await r.waitClose(4000);
    assert.equal(closed.code, 3012);
    assert.ok(r.messages.filter((m) => Object.keys(m).length === 0).length >= 1, 'it was pinged');
  } finally {
    await slow.close();
  }
});
