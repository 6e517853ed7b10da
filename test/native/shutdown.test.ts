// A node that shuts down closes every native socket with 3001 (shutdown, reconnect): connected
// clients and sockets whose client has not sent its connect command yet alike.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startNode, userToken } from '../helpers/herald.js';
import { RawClient } from '../helpers/raw.js';
import { SessionRegistry } from '../../src/dialects/native/registry.js';

test('shutdown closes connected and still-opening sockets with 3001; sockets closed earlier are not held', async () => {
  const node = await startNode();
  const connected = await RawClient.open(node.wsUrl);
  await connected.connect({ token: await userToken('alice') });
  const opening = await RawClient.open(node.wsUrl); // upgraded, never sends connect
  const gone = await RawClient.open(node.wsUrl); // closes before connecting
  gone.ws.close();
  await gone.closed;
  await node.close();
  const [a, b] = await Promise.all([connected.closed, opening.closed]);
  assert.equal(a.code, 3001);
  assert.equal(b.code, 3001);
});

test('the registry: an opening session is in everySession() until it connects or ends, and only once; sizes and lookups by user', () => {
  const r = new SessionRegistry();
  const s1 = { id: 'c1', user: 'u' };
  const s2 = { id: 'c2', user: 'u' };
  const s3 = { id: 'c3', user: '' };
  r.open(s1);
  r.open(s2);
  r.open(s3);
  assert.deepEqual(r.everySession(), [s1, s2, s3]);
  assert.equal(r.size, 0, 'opening sessions are not connected clients');
  r.add(s2);
  r.add(s2); // twice: counted once
  assert.deepEqual(r.everySession(), [s2, s1, s3]);
  assert.equal(r.size, 1);
  assert.deepEqual(r.find('u'), [s2]);
  r.add(s1);
  assert.equal(r.size, 2);
  assert.equal(r.users, 1);
  assert.deepEqual(r.find('u', 'c1'), [s1]);
  assert.deepEqual(r.find('nobody'), []);
  r.remove(s2);
  r.remove(s2); // twice: nothing more
  assert.equal(r.size, 1);
  assert.deepEqual(r.find('u'), [s1]);
  r.remove(s1);
  assert.deepEqual(r.everySession(), [s3]);
  assert.equal(r.users, 0);
  r.remove(s3); // ended before connecting
  assert.deepEqual(r.everySession(), []);
  assert.equal(r.size, 0);
});
