// The Webdis ACL, enforced alike on WebSocket and HTTP: the default (pub/sub and PING only), rules by
// IP/CIDR (IPv4-mapped IPv6 included) and HTTP Basic auth, enabled/disabled lists, "*", whole-name
// matching, and later rules overriding earlier ones; and the config checks of webdis.*.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { loadConfig } from '../../src/index.js';
import { configError } from '../helpers/herald.js';
import { Acl } from '../../src/dialects/webdis/acl.js';
import { http, httpStatus, startWebdis, WdClient, type WebdisNode } from './helpers.js';

const RULES = [
  { ip: '127.0.0.1', enabled: ['GET'] },
  { ip: '10.0.0.0/8', enabled: ['*'] },
  { http_basic_auth: 'admin:secret', enabled: ['*'], disabled: ['FLUSHALL'] },
  { http_basic_auth: 'reader:pw', enabled: ['get', 'EXISTS'], disabled: ['PUBLISH', 'SUBSCRIBE'] },
  { disabled: ['GETSET'] },
  { ip: '127.0.0.0/8', http_basic_auth: 'later:pw', disabled: ['GET'] },
];

const basic = (credentials: string) => `Basic ${Buffer.from(credentials).toString('base64')}`;

let node: WebdisNode;
let mapped: WebdisNode;
const clients: WdClient[] = [];

before(async () => {
  node = await startWebdis({ webdis: { acl: RULES } });
  // Listening on the IPv4-mapped loopback: clients show up as ::ffff:127.0.0.1.
  mapped = await startWebdis({ webdis: { address: '::ffff:127.0.0.1', acl: [{ ip: '127.0.0.1/32', enabled: ['GET'] }] } });
});

after(async () => {
  for (const c of clients) c.close();
  await node?.close();
  await mapped?.close();
});

/** Whether a command passes the ACL (the memory engine answers allowed ones with its error). */
type Verdict = 'allowed' | 'forbidden';

async function overWebSocket(n: WebdisNode, authorization: string | undefined, commands: string[][]): Promise<Verdict[]> {
  const c = await WdClient.open(n.wsBase + '/.json', authorization ? { headers: { Authorization: authorization } } : {});
  clients.push(c);
  const out: Verdict[] = [];
  for (const cmd of commands) {
    const reply = await c.call(...cmd);
    out.push(reply.error === true && reply.message === 'Forbidden' ? 'forbidden' : 'allowed');
    // Leave subscribed mode so the next command is judged by the ACL alone.
    if (Array.isArray(reply[cmd[0]!]) && reply[cmd[0]!][0] === 'subscribe') await c.call('UNSUBSCRIBE', cmd[1]!);
  }
  c.close();
  return out;
}

async function overHttp(n: WebdisNode, authorization: string | undefined, commands: string[][]): Promise<Verdict[]> {
  const out: Verdict[] = [];
  for (const cmd of commands) {
    if (cmd[0] === 'SUBSCRIBE') {
      // A comet stream: judged by its status line.
      out.push((await httpStatus(n.webdisPort, `/${cmd.join('/')}`, authorization ? { Authorization: authorization } : {})) === 403 ? 'forbidden' : 'allowed');
      continue;
    }
    const r = await http(n.webdisPort, 'GET', `/${cmd.join('/')}`, { headers: authorization ? { Authorization: authorization } : {} });
    if (r.status === 403) assert.equal(r.body.length, 0, 'a 403 has an empty body');
    out.push(r.status === 403 ? 'forbidden' : 'allowed');
  }
  return out;
}

const COMMANDS = [['GET', 'k'], ['SET', 'k', 'v'], ['GETSET', 'k', 'v'], ['FLUSHALL'], ['EXISTS', 'k'], ['PUBLISH', 'c', 'm'], ['PING'], ['SUBSCRIBE', 'c'], ['MULTI']];

const CASES: Array<[string, string | undefined, Verdict[]]> = [
  //                                            GET          SET          GETSET       FLUSHALL     EXISTS       PUBLISH      PING         SUBSCRIBE    MULTI
  ['local, no credentials', undefined, ['allowed', 'forbidden', 'forbidden', 'forbidden', 'forbidden', 'allowed', 'allowed', 'allowed', 'forbidden']],
  ['admin', basic('admin:secret'), ['allowed', 'allowed', 'forbidden', 'forbidden', 'allowed', 'allowed', 'allowed', 'allowed', 'forbidden']],
  ['reader', basic('reader:pw'), ['allowed', 'forbidden', 'forbidden', 'forbidden', 'allowed', 'forbidden', 'allowed', 'forbidden', 'forbidden']],
  ['wrong password', basic('admin:nope'), ['allowed', 'forbidden', 'forbidden', 'forbidden', 'forbidden', 'allowed', 'allowed', 'allowed', 'forbidden']],
  ['a later rule disables GET', basic('later:pw'), ['forbidden', 'forbidden', 'forbidden', 'forbidden', 'forbidden', 'allowed', 'allowed', 'allowed', 'forbidden']],
];

for (const [who, authorization, expected] of CASES) {
  test(`ACL over WebSocket and HTTP: ${who}`, async () => {
    assert.deepEqual(await overWebSocket(node, authorization, COMMANDS), expected, 'WebSocket');
    assert.deepEqual(await overHttp(node, authorization, COMMANDS), expected, 'HTTP');
  });
}

test('an IPv4 rule matches a client seen as ::ffff:127.0.0.1', async () => {
  assert.deepEqual(await overWebSocket(mapped, undefined, [['GET', 'k'], ['SET', 'k', 'v']]), ['allowed', 'forbidden']);
  assert.deepEqual(await overHttp(mapped, undefined, [['GET', 'k'], ['SET', 'k', 'v']]), ['allowed', 'forbidden']);
});

test('the default ACL: pub/sub and PING only', async () => {
  const allowed = new Acl([]).permissions('127.0.0.1', undefined);
  for (const c of ['SUBSCRIBE', 'psubscribe', 'UNSUBSCRIBE', 'PUNSUBSCRIBE', 'PUBLISH', 'PING']) assert.equal(allowed(c), true, c);
  for (const c of ['GET', 'SET', 'DEL', 'KEYS', 'FLUSHALL', 'CONFIG', 'EVAL', 'MULTI', 'SSUBSCRIBE']) assert.equal(allowed(c), false, c);
});

test('rules: CIDR v4 and v6, whole-name matching, "*" in disabled, disabled wins within a rule', () => {
  const acl = new Acl([
    { ip: '192.168.0.0/16', enabled: ['GETSET'], disabled: [] },
    { ip: 'fd00::/8', enabled: ['*'], disabled: ['CONFIG'] },
    { ip: '::1', enabled: ['SET'], disabled: ['SET'] },
    { ip: '172.16.0.1', enabled: [], disabled: ['*'] },
  ]);
  const lan = acl.permissions('192.168.3.4', undefined);
  assert.equal(lan('GETSET'), true);
  assert.equal(lan('GET'), false, 'enabling GETSET does not enable GET');
  assert.equal(acl.permissions('::ffff:192.168.3.4', undefined)('GETSET'), true);
  assert.equal(acl.permissions('192.169.0.1', undefined)('GETSET'), false);
  const v6 = acl.permissions('fd12::1', undefined);
  assert.equal(v6('HSET'), true);
  assert.equal(v6('CONFIG'), false);
  assert.equal(v6('EXEC'), false, 'always refused');
  assert.equal(acl.permissions('::1', undefined)('SET'), false, 'disabled wins within a rule');
  const shut = acl.permissions('172.16.0.1', undefined);
  assert.equal(shut('PING'), false);
  assert.equal(shut('SUBSCRIBE'), false);
  assert.equal(acl.permissions(undefined, 'Basic !!!')('PING'), true, 'a garbled header is no credentials');
});

const valuesError = (values: Record<string, unknown>) => configError(() => loadConfig({ values: values as never }));

test('webdis config: off by default; bad ACL entries and settings are named', () => {
  const c = loadConfig();
  assert.equal(c.webdis.enabled, false);
  assert.equal(c.webdis.port, 7379);
  assert.deepEqual(c.webdis.acl, []);
  assert.match(valuesError({ webdis: { acl: [{ ip: '10.0.0.0/33' }] } }), /webdis\.acl\.0\.ip: bad prefix length/);
  assert.match(valuesError({ webdis: { acl: [{ ip: 'localhost' }] } }), /webdis\.acl\.0\.ip: expected an IP address or CIDR/);
  assert.match(valuesError({ webdis: { acl: [{ http_basic_auth: 'nocolon' }] } }), /webdis\.acl\.0\.http_basic_auth: expected "user:password"/);
  assert.match(valuesError({ webdis: { acl: [{ enable: ['GET'] }] } }), /webdis\.acl\.0: unknown key\(s\) "enable"/);
  assert.match(valuesError({ webdis: { enabled: true, listen: false } }), /webdis\.path_prefix: set a path prefix/);
  assert.match(valuesError({ webdis: { path_prefix: 'webdis/' } }), /webdis\.path_prefix/);
  assert.match(valuesError({ webdis: { port: 70000 } }), /webdis\.port/);
});
