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
  const { r } = await raw();
  r.ws.on('message', (data: Buffer) => {
    if (data.toString().split('\n').includes('{}')) r.send({});
  });
  await r.call('subscribe', { channel: 'news:busy' });
  const connectedAt = Date.now();
  // A publication every 25 ms for 3.2 s (more often than the 100 ms a ping may go early): two or
  // three pings fall in that time.
  for (let i = 0; i < 128; i++) {
    await node.api.publish('news:busy', i);
    await sleep(25);
  }
  const pingFrames = r.frames.filter((f) => f.split('\n').includes('{}'));
  assert.ok(pingFrames.length >= 2, `${pingFrames.length} pings in 3.2 s at a 1 s interval`);
  // A slow turn of this test may leave a window without a publication, and that ping goes alone;
  // without early pings every ping would.
  const alone = pingFrames.filter((f) => !f.includes('"push":{"channel":"news:busy"'));
  assert.ok(alone.length <= 1 && pingFrames.length - alone.length >= 2, `pings sent alone instead of with a publication: ${alone.length} of ${pingFrames.length}`);
  // Early, not late: at most one interval apart, so the client's watchdog never misses one.
  assert.ok(pingFrames.length <= Math.ceil((Date.now() - connectedAt) / 900) + 1, 'no more pings than an early one per interval');
  assert.equal(r.closeInfo, undefined, 'the pongs to early pings are accepted');
  r.close();
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
