// Token keys other than the HMAC secret: RSA and ECDSA public keys (PEM) and a JWKS endpoint (RSA,
// EC and Ed25519 keys found by `kid`); an algorithm is accepted only when its key is configured.
// Also: `meta` stays on the server.
import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { exportJWK, SignJWT } from 'jose';
import { openNamespace, sign, startNode, type TestNode } from '../helpers/herald.js';
import { RawClient } from '../helpers/raw.js';

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ed = generateKeyPairSync('ed25519');
const pem = (k: KeyObject) => k.export({ type: 'spki', format: 'pem' }).toString();

async function signWith(key: KeyObject, alg: string, claims: Record<string, unknown>, kid?: string): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader(kid ? { alg, kid } : { alg })
    .setExpirationTime(Math.floor(Date.now() / 1000) + 60)
    .sign(key);
}

/** Connects with `token`: 'ok' or the close code. */
async function outcome(node: TestNode, token: string): Promise<'ok' | number> {
  const r = await RawClient.open(node.wsUrl);
  r.send({ id: 1, connect: { token } });
  const reply = await Promise.race([r.reply(1).catch(() => undefined), r.closed]);
  const result = reply && 'connect' in reply ? 'ok' : (await r.waitClose()).code;
  r.close();
  return result;
}

let pemNode: TestNode;
let jwksNode: TestNode;
let jwksServer: Server;
let jwksHits = 0;
before(async () => {
  pemNode = await startNode({ client: { token: { hmac_secret_key: '', rsa_public_key: pem(rsa.publicKey), ecdsa_public_key: pem(ec.publicKey) } } });
  const keys = [
    { ...(await exportJWK(rsa.publicKey)), kid: 'rsa-1', alg: 'RS256', use: 'sig' },
    { ...(await exportJWK(ec.publicKey)), kid: 'ec-1', alg: 'ES256', use: 'sig' },
    { ...(await exportJWK(ed.publicKey)), kid: 'ed-1', alg: 'EdDSA', use: 'sig' },
  ];
  jwksServer = createServer((_req, res) => {
    jwksHits++;
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ keys }));
  });
  await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
  const { port } = jwksServer.address() as AddressInfo;
  jwksNode = await startNode({
    client: { token: { hmac_secret_key: '', jwks_public_endpoint: `http://127.0.0.1:${port}/jwks.json` } },
    channel: { namespaces: [openNamespace('news')] },
  });
});
after(async () => {
  await pemNode.close();
  await jwksNode.close();
  await new Promise<void>((resolve) => jwksServer.close(() => resolve()));
});

test('RSA and ECDSA public keys (PEM): RS*/ES* tokens connect; HS256 and wrong keys do not', async () => {
  for (const alg of ['RS256', 'RS384', 'RS512']) assert.equal(await outcome(pemNode, await signWith(rsa.privateKey, alg, { sub: 'a' })), 'ok', alg);
  assert.equal(await outcome(pemNode, await signWith(ec.privateKey, 'ES256', { sub: 'a' })), 'ok');
  assert.equal(await outcome(pemNode, await sign({ sub: 'a' }, { expIn: 60 })), 3500, 'no HMAC secret configured');
  const otherRsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  assert.equal(await outcome(pemNode, await signWith(otherRsa.privateKey, 'RS256', { sub: 'a' })), 3500);
  assert.equal(await outcome(pemNode, await signWith(ed.privateKey, 'EdDSA', { sub: 'a' })), 3500, 'EdDSA only through JWKS');
});

test('JWKS: keys found by kid (RSA, EC, Ed25519), fetched once and cached; unknown kid is invalid', async () => {
  assert.equal(await outcome(jwksNode, await signWith(rsa.privateKey, 'RS256', { sub: 'a' }, 'rsa-1')), 'ok');
  assert.equal(await outcome(jwksNode, await signWith(ec.privateKey, 'ES256', { sub: 'a' }, 'ec-1')), 'ok');
  assert.equal(await outcome(jwksNode, await signWith(ed.privateKey, 'EdDSA', { sub: 'a' }, 'ed-1')), 'ok');
  assert.equal(await outcome(jwksNode, await signWith(rsa.privateKey, 'RS256', { sub: 'a' }, 'nope')), 3500);
  const otherEc = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  assert.equal(await outcome(jwksNode, await signWith(otherEc.privateKey, 'ES256', { sub: 'a' }, 'ec-1')), 3500);
  assert.equal(await outcome(jwksNode, await sign({ sub: 'a' }, { expIn: 60 })), 3500, 'HS256 needs a secret');
  assert.ok(jwksHits >= 1 && jwksHits <= 2, `JWKS fetched ${jwksHits} times`);
});

test('JWKS subscription tokens: a $ channel opens with an RS256 token', async () => {
  const r = await RawClient.open(jwksNode.wsUrl);
  await r.connect({ token: await signWith(rsa.privateKey, 'RS256', { sub: 'alice' }, 'rsa-1') });
  const reply = await r.call('subscribe', { channel: '$news:1', token: await signWith(rsa.privateKey, 'RS256', { sub: 'alice', channel: '$news:1' }, 'rsa-1') });
  assert.ok(reply.subscribe, JSON.stringify(reply));
  r.close();
});

test('token meta is never sent to clients', async () => {
  const node = await startNode({ channel: { namespaces: [openNamespace('news', { allow_publish_for_client: true })] } });
  try {
    const r = await RawClient.open(node.wsUrl);
    await r.connect({ token: await sign({ sub: 'alice', meta: { secret: 'server-only' }, info: { name: 'A' } }) });
    await r.call('subscribe', { channel: 'news:m' });
    await r.call('publish', { channel: 'news:m', data: 1 });
    await r.waitFor((m) => m.push?.channel === 'news:m');
    assert.equal(r.frames.some((f) => f.includes('server-only')), false);
    assert.equal(r.frames.some((f) => f.includes('"name":"A"')), true, 'info is sent');
    r.close();
  } finally {
    await node.close();
  }
});

test('a connection closed while its subscription token is being verified leaves no subscription behind', async () => {
  // A JWKS endpoint that answers slowly: the subscribe is still verifying when the client leaves.
  const slowJwks = createServer((_req, res) => {
    void exportJWK(rsa.publicKey).then((jwk) =>
      setTimeout(() => res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ keys: [{ ...jwk, kid: 'k', alg: 'RS256' }] })), 300),
    );
  });
  await new Promise<void>((resolve) => slowJwks.listen(0, '127.0.0.1', resolve));
  const { port } = slowJwks.address() as AddressInfo;
  const node = await startNode({
    client: { subscription_token: { enabled: true, jwks_public_endpoint: `http://127.0.0.1:${port}/jwks` } },
    channel: { namespaces: [{ name: 'secret' }] },
  });
  try {
    const r = await RawClient.open(node.wsUrl);
    await r.connect({ token: await sign({ sub: 'alice' }, { expIn: 60 }) });
    r.send({ id: 2, subscribe: { channel: 'secret:gone', token: await signWith(rsa.privateKey, 'RS256', { sub: 'alice', channel: 'secret:gone' }, 'k') } });
    await new Promise((resolve) => setTimeout(resolve, 50));
    r.close();
    await new Promise((resolve) => setTimeout(resolve, 500)); // the verification has finished
    assert.deepEqual((await node.api.channels()).channels, {}, 'no channel kept for a closed connection');
    const info = (await node.api.info()).nodes[0]!;
    assert.equal(info.num_clients, 0);
    assert.equal(info.num_subs, 0);
  } finally {
    await node.close();
    await new Promise<void>((resolve) => slowJwks.close(() => resolve()));
  }
});
