// The native dialect's publication push, written once per publication on the hot path: the exact
// bytes for every optional field, one line per message, and the stand-in for a non-JSON payload.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodePublicationPush, NON_JSON_PUSH } from '../../src/dialects/native/codec.js';

test('encodePublicationPush: the push of a plain publication, of one with every field, and of empty tags', () => {
  assert.equal(
    encodePublicationPush('news', { offset: 0, data: Buffer.from('{"a":1}') }).toString(),
    '{"push":{"channel":"news","pub":{"data":{"a":1}}}}',
  );
  const full = encodePublicationPush('chat:"x"', {
    offset: 7,
    data: Buffer.from('{\n  "text": "hi\\nthere"\n}'),
    info: { user: 'u1', client: 'c1', connInfo: '{"n":1}', chanInfo: '[2]' },
    tags: { k: 'v', q: '"' },
  });
  const text = full.toString();
  assert.equal(
    text,
    '{"push":{"channel":"chat:\\"x\\"","pub":{"data":{  "text": "hi\\nthere"},"info":{"user":"u1","client":"c1","conn_info":{"n":1},"chan_info":[2]},"offset":7,"tags":{"k":"v","q":"\\""}}}}',
  );
  assert.ok(!text.includes('\n'), 'one line: the frame joins messages by newline');
  assert.deepEqual(JSON.parse(text).push.pub.data, { text: 'hi\nthere' });
  assert.equal(
    encodePublicationPush('n', { offset: 0, data: Buffer.from('"s"'), info: { user: '', client: 'c' }, tags: {} }).toString(),
    '{"push":{"channel":"n","pub":{"data":"s","info":{"user":"","client":"c"}}}}',
  );
});

test('encodePublicationPush: a payload that is not JSON gives the stand-in that closes a JSON client', () => {
  assert.equal(encodePublicationPush('n', { offset: 1, data: Buffer.from('plain text') }), NON_JSON_PUSH);
  assert.equal(encodePublicationPush('n', { offset: 1, data: Buffer.from([0xff, 0x00]) }), NON_JSON_PUSH);
});
