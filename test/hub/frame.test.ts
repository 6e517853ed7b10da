// The outbox writes whole WebSocket frames it builds itself: each must read back, through `ws`'s own
// client-side parser, as the same message of the same type, whatever length form its header takes.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { frame } from '../../src/hub/outbox.js';

interface Parser {
  on(event: 'message', fn: (data: Buffer, isBinary: boolean) => void): void;
  on(event: 'error', fn: (err: Error) => void): void;
  write(chunk: Buffer): boolean;
}
// `ws` exports its frame parser, untyped: the same code a Node client of Herald runs.
const { Receiver } = createRequire(import.meta.url)('ws') as {
  Receiver: new (options: { isServer: boolean; maxPayload: number }) => Parser;
};

function parse(bytes: Buffer): Promise<{ data: Buffer; isBinary: boolean }> {
  return new Promise((resolve, reject) => {
    const receiver = new Receiver({ isServer: false, maxPayload: 0 });
    receiver.on('message', (data, isBinary) => resolve({ data, isBinary }));
    receiver.on('error', reject);
    receiver.write(bytes);
  });
}

test('frames of every header length form parse back to the same text or binary message', async () => {
  // 7-bit lengths, the 16-bit form from 126 and the 64-bit form from 65536 bytes, at their edges.
  for (const length of [0, 1, 125, 126, 127, 65535, 65536, 70_000]) {
    const text = Buffer.from('x'.repeat(length));
    const got = await parse(frame(text));
    assert.equal(got.isBinary, false, `text of ${length} bytes`);
    assert.ok(got.data.equals(text), `text of ${length} bytes`);

    const binary = Buffer.alloc(length, 0xfe);
    const gotBinary = await parse(frame(binary, 0x2));
    assert.equal(gotBinary.isBinary, true, `binary of ${length} bytes`);
    assert.ok(gotBinary.data.equals(binary), `binary of ${length} bytes`);
  }
});

test('a frame is a new buffer: later changes to the payload do not reach it', async () => {
  const payload = Buffer.from('{"a":1}');
  const f = frame(payload);
  payload.fill(0x20);
  assert.equal((await parse(f)).data.toString(), '{"a":1}');
});
