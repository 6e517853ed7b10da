// Payloads reach subscribers and history as the publisher wrote them, as Centrifugo keeps them (raw
// JSON): 64-bit integers, long decimals, exponents and repeated keys are not re-serialised, from the
// server API (each form of it) and from a client's publish. `b64data` must be base64 of something.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { API_KEY, openNamespace, startNode, type TestNode } from '../helpers/herald.js';
import { RawClient } from '../helpers/raw.js';

let node: TestNode;
const sockets: RawClient[] = [];

before(async () => {
  node = await startNode({
    client: { allow_anonymous_connect_without_token: true },
    channel: { namespaces: [openNamespace('chat', { allow_publish_for_client: true, allow_publish_for_anonymous: true, history_size: 10, history_ttl: '1m' })] },
  });
});

after(async () => {
  for (const s of sockets) s.close();
  await node?.close();
});

/** POSTs a body as written to the server API; returns the answer's text. */
async function api(path: string, body: string): Promise<string> {
  const res = await fetch(`${node.url}${path}`, { method: 'POST', headers: { 'X-API-Key': API_KEY }, body });
  assert.equal(res.status, 200);
  return res.text();
}

async function subscriber(channel: string): Promise<RawClient> {
  const s = await RawClient.open(node.wsUrl);
  sockets.push(s);
  await s.connect();
  const reply = await s.call('subscribe', { channel });
  assert.equal(reply.error, undefined, JSON.stringify(reply));
  return s;
}

/** Asserts that the n-th publication push the socket received carries `data` as written, in the frame as sent. */
async function assertPushed(s: RawClient, channel: string, n: number, data: string): Promise<void> {
  await s.waitFor(() => s.pushes(channel).length > n, 3000, `publication ${n + 1}`);
  const prefix = `{"push":{"channel":${JSON.stringify(channel)},"pub":{"data":`;
  const line = s.frames.flatMap((f) => f.split('\n')).filter((l) => l.startsWith(prefix))[n]!;
  const rest = line.slice(prefix.length);
  assert.ok(rest.startsWith(data) && ',}'.includes(rest[data.length]!), `publication ${n + 1}: expected data ${data} in ${line}`);
}

const PAYLOADS = [
  '{"id":1234567890123456789,"x":9007199254740993,"amount":0.10000000000000001}',
  '{"n":12345678901234567890123,"e":1E+2,"neg":-0.0,"dup":1,"dup":2}',
  '[1.0, 2.50, {"nested" : {"deep":1e400}}]',
  '"text with \\"quotes\\" and \\u00e9"',
  '18446744073709551615',
];

test('the server API publishes `data` as it was written, in each of its forms', async () => {
  const s = await subscriber('chat:api');
  let n = 0;
  for (const data of PAYLOADS) {
    await api('/api/publish', `{"channel":"chat:api","data":${data}}`);
    await assertPushed(s, 'chat:api', n++, data);
  }
  await api('/api', `{"method":"publish","params":{"channel":"chat:api","data":${PAYLOADS[0]}}}`);
  await assertPushed(s, 'chat:api', n++, PAYLOADS[0]);
  await api('/api/broadcast', `{"channels":["chat:api"],"data":${PAYLOADS[1]}}`);
  await assertPushed(s, 'chat:api', n++, PAYLOADS[1]);
  await api('/api/batch', `{"commands":[{"publish":{"channel":"chat:api","data":${PAYLOADS[2]}}},{"publish":{"channel":"chat:api","data":${PAYLOADS[3]}}}]}`);
  await assertPushed(s, 'chat:api', n++, PAYLOADS[2]);
  await assertPushed(s, 'chat:api', n++, PAYLOADS[3]);
  // The legacy form with several commands, one a line.
  await api('/api', `{"method":"publish","params":{"channel":"chat:api","data":${PAYLOADS[4]}}}\n{"method":0,"params":{"channel":"chat:api","data":${PAYLOADS[3]}}}`);
  await assertPushed(s, 'chat:api', n++, PAYLOADS[4]);
  await assertPushed(s, 'chat:api', n++, PAYLOADS[3]);

  // History gives back the same text.
  const history = await api('/api/history', '{"channel":"chat:api","limit":-1}');
  for (const data of PAYLOADS) assert.ok(history.includes(`"data":${data}`), `history lacks ${data}: ${history}`);
});

test("a client's publish reaches subscribers with `data` as the client wrote it", async () => {
  const s = await subscriber('chat:client');
  const publisher = await RawClient.open(node.wsUrl);
  sockets.push(publisher);
  await publisher.connect();
  let n = 0;
  for (const data of PAYLOADS) {
    const id = publisher.id();
    publisher.sendRaw(`{"id":${id},"publish":{"channel":"chat:client","data":${data}}}`);
    const reply = await publisher.reply(id);
    assert.equal(reply.error, undefined, JSON.stringify(reply));
    await assertPushed(s, 'chat:client', n++, data);
  }
});

test('b64data: not base64, or nothing once decoded, is a bad request (107); base64 is published', async () => {
  const s = await subscriber('chat:b64');
  for (const b64 of ['!!!', 'aGVsbG8', 'aGVs bG8=', '====', 'A===', `${'QUFB'.repeat(1_250_000)}!!!!`]) {
    const answer = JSON.parse(await api('/api/publish', JSON.stringify({ channel: 'chat:b64', b64data: b64 })));
    assert.equal(answer.error?.code, 107, `${b64.slice(0, 20)}: ${JSON.stringify(answer)}`);
  }
  const empty = JSON.parse(await api('/api/publish', '{"channel":"chat:b64","b64data":""}'));
  assert.equal(empty.error?.code, 107, 'no data at all');
  const ok = JSON.parse(await api('/api/publish', JSON.stringify({ channel: 'chat:b64', b64data: Buffer.from('{"via":"b64"}').toString('base64') })));
  assert.equal(ok.error, undefined);
  await assertPushed(s, 'chat:b64', 0, '{"via":"b64"}');
  assert.equal(s.closeInfo, undefined, 'the subscriber is still connected');
});
