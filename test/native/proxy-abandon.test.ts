// A proxy call whose client leaves is abandoned: the request to the backend is cancelled at once
// (not held until its timeout), so clients that give up during a slow backend's stall do not hold
// the backend's turns (64 calls at a time per proxy) against the clients that stay.
import assert from 'node:assert/strict';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { client, once, startNode, until, type TestNode } from '../helpers/herald.js';
import { RawClient, sleep } from '../helpers/raw.js';

let backend: Server;
let node: TestNode;
/** Requests the backend holds without answering (the slow ones), and how many were cancelled. */
const held: ServerResponse[] = [];
let cancelled = 0;

before(async () => {
  backend = createServer((req, res) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (text += c));
    req.on('end', () => {
      const body = JSON.parse(text) as { data?: { slow?: boolean } };
      if (!body.data?.slow) return void res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"result":{"user":"quick"}}');
      held.push(res);
      res.on('close', () => {
        if (!res.writableEnded) cancelled++;
      });
    });
  });
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(backend.address() as AddressInfo).port}`;
  node = await startNode({ client: { proxy: { connect: { endpoint: `${url}/connect`, timeout: '9s' } } } });
});
after(async () => {
  await node.close();
  for (const res of held) res.destroy();
  backend.close();
});

test('clients that leave while the connect proxy stalls free its turns at once; a client that stays is answered', async () => {
  // 70 clients whose backend calls stall (more than the 64 turns), and which then leave.
  const leavers = await Promise.all(Array.from({ length: 70 }, () => RawClient.open(node.wsUrl)));
  for (const raw of leavers) raw.send({ id: 1, connect: { data: { slow: true } } });
  await until(() => held.length === 64, 3000, '64 calls under way (the others wait for a turn)');
  for (const raw of leavers) raw.close();
  await until(() => cancelled === 64, 2000, 'the 64 requests cancelled');

  const started = Date.now();
  const c = client(node, { data: { slow: false } });
  c.connect();
  await once(c, 'connected', 8000);
  assert.ok(Date.now() - started < 4000, `connected in ${Date.now() - started} ms, not after the stalled calls' 9 s timeout`);
  await sleep(200);
  assert.equal(held.length, 64, 'the 6 calls that were waiting for a turn were never made');
  c.disconnect();
});
