// The outbox over a real socket: messages queued in one turn go out in order, each text or binary as
// queued, joined into one frame only where the dialect allows it and only when all are text.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { Outbox } from '../../src/hub/outbox.js';

interface Frame {
  data: string;
  binary: boolean;
}

/** A server socket with an outbox and the client that reads it; `frames` fills as frames arrive. */
async function pair(separator: Buffer | null): Promise<{ outbox: Outbox; frames: Frame[]; close: () => Promise<void> }> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const serverSide = new Promise<WebSocket>((r) => wss.once('connection', (ws) => r(ws)));
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`);
  const frames: Frame[] = [];
  client.on('message', (data: Buffer, binary: boolean) => frames.push({ data: data.toString('latin1'), binary }));
  await new Promise<void>((r, j) => (client.once('open', () => r()), client.once('error', j)));
  const ws = await serverSide;
  const outbox = new Outbox(ws, { maxBytes: 1 << 20, separator, onOverflow: () => assert.fail('no overflow expected') });
  const close = async () => {
    client.close();
    await new Promise<void>((r) => wss.close(() => r()));
  };
  return { outbox, frames, close };
}

async function received(frames: Frame[], n: number): Promise<Frame[]> {
  for (let i = 0; i < 200 && frames.length < n; i++) await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, 50)); // and nothing more
  return frames;
}

const text = (s: string) => Buffer.from(s);
const bin = (s: string) => Buffer.from(s, 'latin1');

test('one message, then several in one turn: in order, text and binary as queued (frame per message)', async () => {
  const { outbox, frames, close } = await pair(null);
  try {
    outbox.push(text('alone'));
    assert.deepEqual(await received(frames, 1), [{ data: 'alone', binary: false }]);

    frames.length = 0;
    // A binary message first, then text, alternating: each keeps its kind, in order.
    outbox.push(bin('\xff1'), true);
    outbox.push(text('t2'));
    outbox.push(bin('\xfe3'), true);
    outbox.push(text('t4'));
    assert.deepEqual(await received(frames, 4), [
      { data: '\xff1', binary: true },
      { data: 't2', binary: false },
      { data: '\xfe3', binary: true },
      { data: 't4', binary: false },
    ]);

    frames.length = 0;
    outbox.push(text('t5'));
    outbox.push(bin('\xfd6'), true);
    assert.deepEqual(await received(frames, 2), [
      { data: 't5', binary: false },
      { data: '\xfd6', binary: true },
    ]);

    frames.length = 0;
    outbox.push(bin('\xfc7'), true);
    assert.deepEqual(await received(frames, 1), [{ data: '\xfc7', binary: true }]);
  } finally {
    await close();
  }
});

test('with a separator, text messages of one turn join into one frame; a binary one keeps frames apart', async () => {
  const { outbox, frames, close } = await pair(Buffer.from('\n'));
  try {
    outbox.push(text('a'));
    outbox.push(text('b'));
    outbox.push(text('c'));
    assert.deepEqual(await received(frames, 1), [{ data: 'a\nb\nc', binary: false }]);

    frames.length = 0;
    outbox.push(text('d'));
    outbox.push(bin('\xff'), true);
    assert.deepEqual(await received(frames, 2), [
      { data: 'd', binary: false },
      { data: '\xff', binary: true },
    ]);

    frames.length = 0;
    outbox.push(text('e'));
    assert.deepEqual(await received(frames, 1), [{ data: 'e', binary: false }]);
  } finally {
    await close();
  }
});
