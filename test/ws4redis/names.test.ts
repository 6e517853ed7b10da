// The ws4redis vocabulary without a server: URL flags as ws4redis reads request.GET, channel names as
// its RedisStore writes them, safety rules, hook answers and cookies.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../../src/index.js';
import { ANONYMOUS, channelName, connectionChannels, targetChannels } from '../../src/dialects/ws4redis/channels.js';
import { parseAnswer, readCookie } from '../../src/dialects/ws4redis/identity.js';
import { SafetyRules } from '../../src/dialects/ws4redis/safety.js';
import { facilityOf, parseFlags } from '../../src/dialects/ws4redis/url.js';

test('flags are query keys: values ignored, trimmed, lower-cased, unknown ignored, each once', () => {
  assert.deepEqual(parseFlags('?subscribe-broadcast&publish-user&echo'), { flags: ['subscribe-broadcast', 'publish-user'], echo: true });
  assert.deepEqual(parseFlags('SUBSCRIBE-User=1&%20subscribe-group%20=x&bogus&subscribe-user&token=abc'), {
    flags: ['subscribe-user', 'subscribe-group'],
    echo: false,
  });
  assert.deepEqual(parseFlags(''), { flags: [], echo: false });
  assert.deepEqual(parseFlags('ECHO=false'), { flags: [], echo: true });
});

test('the facility is the decoded path after the prefix', () => {
  assert.equal(facilityOf('/ws/foobar', '/ws/'), 'foobar');
  assert.equal(facilityOf('/ws/caf%C3%A9/x', '/ws/'), 'café/x');
  assert.equal(facilityOf('/ws/%E0%A4%A', '/ws/'), '%E0%A4%A');
  // As Django's path_info: valid escapes decoded even beside a malformed one, bytes that are not
  // UTF-8 escaped again, anything else as written.
  assert.equal(facilityOf('/ws/bad%ZZ%20x', '/ws/'), 'bad%ZZ x');
  assert.equal(facilityOf('/ws/a%ffb%C3%A9%', '/ws/'), 'a%FFbé%');
  assert.equal(facilityOf('/ws/%C3%A9%e2%9c', '/ws/'), 'é%E2%9C');
  assert.equal(facilityOf('/other/foobar', '/ws/'), undefined);
  assert.equal(facilityOf('/ws', '/ws/'), undefined);
  assert.equal(facilityOf('/push/ws/f', '/push/ws/'), 'f');
});

test('channel names with and without WS4REDIS_PREFIX', () => {
  assert.equal(channelName('', 'foo', 'broadcast'), 'broadcast:foo');
  assert.equal(channelName('P', 'foo', 'broadcast'), 'P:broadcast:foo');
  assert.equal(channelName('P', 'foo', 'group', 'chatters'), 'P:group:chatters:foo');
  assert.equal(channelName('P', 'foo', 'user', 'john'), 'P:user:john:foo');
  assert.equal(channelName('P', 'foo', 'session', 'wnqd0gbw'), 'P:session:wnqd0gbw:foo');
  assert.deepEqual(targetChannels('', 'f', { broadcast: true, groups: ['a', 'b'], users: ['u', 'u'], sessions: ['s'] }), [
    'broadcast:f',
    'group:a:f',
    'group:b:f',
    'user:u:f',
    'session:s:f',
  ]);
});

test('a connection without a user or session gets no user or session channel', () => {
  const all = ['subscribe-broadcast', 'subscribe-user', 'subscribe-group', 'subscribe-session'] as const;
  assert.deepEqual(connectionChannels('', 'f', 'subscribe', all, ANONYMOUS), ['broadcast:f']);
  assert.deepEqual(connectionChannels('', 'f', 'subscribe', all, { user: 'john', groups: ['g1', 'g2'], session: 'k' }), [
    'broadcast:f',
    'group:g1:f',
    'group:g2:f',
    'user:john:f',
    'session:k:f',
  ]);
  assert.deepEqual(connectionChannels('', 'f', 'publish', all, { user: 'john', groups: [], session: 'k' }), []);
  assert.deepEqual(connectionChannels('X', 'f', 'publish', ['publish-user', 'publish-session'], { user: 'john', groups: [], session: 'k' }), [
    'X:user:john:f',
    'X:session:k:f',
  ]);
});

test('safety: default subscribe-broadcast only; facility rules; hook answers narrow further; anonymous refusal', () => {
  const requested = ['subscribe-broadcast', 'subscribe-user', 'publish-broadcast'] as const;
  const john = { user: 'john', groups: [], session: null };
  const defaults = new SafetyRules(loadConfig().ws4redis);
  assert.deepEqual(defaults.check('f', requested, john), { allowed: true, flags: ['subscribe-broadcast'] });

  const rules = new SafetyRules(
    loadConfig({
      values: {
        ws4redis: {
          allowed_channels: ['subscribe-broadcast', 'subscribe-user'],
          facilities: [
            { facility: 'chat*', allowed_channels: ['subscribe-broadcast', 'publish-broadcast'] },
            { facility: 'admin', allowed_channels: ['subscribe-broadcast'], refuse_anonymous: true },
          ],
        },
      },
    }).ws4redis,
  );
  assert.deepEqual(rules.check('news', requested, john), { allowed: true, flags: ['subscribe-broadcast', 'subscribe-user'] });
  assert.deepEqual(rules.check('chatroom', requested, john), { allowed: true, flags: ['subscribe-broadcast', 'publish-broadcast'] });
  assert.deepEqual(rules.check('chatroom', requested, john, ['publish-broadcast', 'subscribe-user']), { allowed: true, flags: ['publish-broadcast'] });
  assert.deepEqual(rules.check('news', requested, john, []), { allowed: true, flags: [] });
  assert.equal(rules.check('admin', requested, ANONYMOUS).allowed, false);
  assert.equal(rules.check('admin', requested, john).allowed, true);
});

test('hook answers: identities, defaults, and what is malformed', () => {
  assert.deepEqual(parseAnswer('{"user": "john", "groups": ["a"], "session": "k", "channels": ["subscribe-user"]}'), {
    identity: { user: 'john', groups: ['a'], session: 'k' },
    channels: ['subscribe-user'],
  });
  assert.deepEqual(parseAnswer('{"user": null}'), { identity: { user: null, groups: [], session: null } });
  assert.deepEqual(parseAnswer('{"user": "", "session": "", "groups": null, "channels": null}'), { identity: { user: null, groups: [], session: null } });
  assert.deepEqual(parseAnswer('{"user": 42}'), { identity: { user: '42', groups: [], session: null } });
  assert.equal(parseAnswer('nope'), 'not JSON');
  assert.equal(parseAnswer('[]'), 'not a JSON object');
  assert.match(parseAnswer('{"user": {"name": "x"}}') as string, /"user"/);
  assert.match(parseAnswer('{"groups": "a"}') as string, /"groups"/);
  assert.match(parseAnswer('{"groups": [1]}') as string, /"groups"/);
  assert.match(parseAnswer('{"session": true}') as string, /"session"/);
  assert.match(parseAnswer('{"channels": "subscribe-user"}') as string, /"channels"/);
});

test('cookies are read by name, quoted or escaped', () => {
  assert.equal(readCookie('a=1; herald_token=abc.def; b=2', 'herald_token'), 'abc.def');
  assert.equal(readCookie('herald_token="x%20y"', 'herald_token'), 'x y');
  assert.equal(readCookie('xherald_token=1', 'herald_token'), '');
  assert.equal(readCookie(undefined, 'herald_token'), '');
});

test('config: disabled by default, safe defaults, errors name the key', () => {
  const c = loadConfig().ws4redis;
  assert.equal(c.enabled, false);
  assert.deepEqual(c.allowed_channels, ['subscribe-broadcast']);
  assert.equal(c.expire, 3_600_000);
  assert.equal(c.path_prefix, '/ws/');
  assert.throws(() => loadConfig({ values: { ws4redis: { allowed_channels: ['subscribe-all' as never] } } }), /ws4redis\.allowed_channels\.0/);
  assert.throws(() => loadConfig({ values: { ws4redis: { path_prefix: '/ws' } } }), /ws4redis\.path_prefix: must start and end with "\/"/);
  assert.throws(() => loadConfig({ values: { ws4redis: { identity_hook: { url: 'ftp://x' } } } }), /ws4redis\.identity_hook\.url/);
  assert.throws(() => loadConfig({ values: { ws4redis: { bogus: 1 } as never } }), /ws4redis: unknown key\(s\) "bogus"/);
  const env = loadConfig({ env: { HERALD_WS4REDIS_ENABLED: 'true', HERALD_WS4REDIS_PREFIX: '123', HERALD_WS4REDIS_ALLOWED_CHANNELS: '["subscribe-user"]' } }).ws4redis;
  assert.equal(env.prefix, '123');
  assert.deepEqual(env.allowed_channels, ['subscribe-user']);
});
