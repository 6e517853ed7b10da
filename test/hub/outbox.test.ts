// The outbox over a real socket: messages queued in one turn go out in order, each text or binary as
// queued, joined into one frame only where the dialect allows it and only when all are text.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { WebSocket, WebSocketServer } from 'ws';
import { Outbox } from '../../src/hub/outbox.js';

interface Frame {
  data: string;
  binary: boolean;
}

/**
 * A server socket with an outbox and the client that reads it. `turn(messages)` queues the messages
 * in one turn (text or binary as given) and resolves with the frames the client then received.
 */
async function pair(separator: Buffer | null): Promise<{
  turn: (messages: Frame[]) => Promise<Frame[]>;
  turnOf: (make: () => Buffer[]) => Promise<Frame[]>;
  close: () => Promise<void>;
}> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const serverSide = new Promise<WebSocket>((r) => wss.once('connection', (ws) => r(ws)));
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`);
  let frames: Frame[] = [];
  client.on('message', (data: Buffer, binary: boolean) => frames.push({ data: data.toString('latin1'), binary }));
  await new Promise<void>((r, j) => (client.once('open', () => r()), client.once('error', j)));
  const ws = await serverSide;
  const outbox = new Outbox(ws, { maxBytes: 1 << 20, separator, onOverflow: () => assert.fail('no overflow expected') });
  // Runs `queue` (which pushes one turn's messages) and resolves with the frames the client got.
  const collect = async (queue: () => void) => {
    frames = [];
    queue();
    for (let i = 0; i < 200 && frames.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 50)); // and nothing more
    return frames;
  };
  const turn = (messages: Frame[]) => collect(() => messages.forEach((m) => outbox.push(Buffer.from(m.data, 'latin1'), m.binary)));
  // `make` gives the text messages of a turn as buffers (which this keeps no reference to).
  const turnOf = (make: () => Buffer[]) => collect(() => make().forEach((b) => outbox.push(b)));
  const close = async () => {
    client.close();
    await new Promise<void>((r) => wss.close(() => r()));
  };
  return { turn, turnOf, close };
}

const text = (data: string): Frame => ({ data, binary: false });
const bin = (data: string): Frame => ({ data, binary: true });

test('one message, then several in one turn: in order, text and binary as queued (frame per message)', async () => {
  const { turn, close } = await pair(null);
  try {
    // Each message is its own frame, as queued: alone; binary first, then text, alternating; text
    // then binary; a lone binary one.
    for (const messages of [
      [text('alone')],
      [bin('\xff1'), text('t2'), bin('\xfe3'), text('t4')],
      [text('t5'), bin('\xfd6')],
      [bin('\xfc7')],
    ]) {
      assert.deepEqual(await turn(messages), messages);
    }
  } finally {
    await close();
  }
});

test('without a separator, text messages of one turn go out as a frame each, in order, whatever their size', async () => {
  const { turn, close } = await pair(null);
  try {
    // The first of each turn is written at once; the rest of the turn in one write, one frame each
    // (2- and 4-byte headers among them); with more than 16 KiB queued, a write per frame.
    const sizes = [1, 125, 126, 1000, 3];
    assert.deepEqual(await turn(sizes.map((n, i) => text(String(i).repeat(n)))), sizes.map((n, i) => text(String(i).repeat(n))));
    const large = [text('s'), text('L'.repeat(20_000)), text('t'), text('M'.repeat(70_000)), text('u')];
    assert.deepEqual(await turn(large), large);
    assert.deepEqual(await turn([text('v'), text('w')]), [text('v'), text('w')]);
  } finally {
    await close();
  }
});

test('without a separator, sockets given the same messages in one turn share their bytes; one given others gets its own', async () => {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const port = (wss.address() as AddressInfo).port;
  const clients: WebSocket[] = [];
  const frames: string[][] = [];
  const outboxes: Outbox[] = [];
  try {
    for (let i = 0; i < 4; i++) {
      const serverSide = new Promise<WebSocket>((r) => wss.once('connection', (ws) => r(ws)));
      const client = new WebSocket(`ws://127.0.0.1:${port}`);
      const got: string[] = [];
      client.on('message', (data: Buffer) => got.push(data.toString('latin1')));
      await new Promise<void>((r, j) => (client.once('open', () => r()), client.once('error', j)));
      clients.push(client);
      frames.push(got);
      outboxes.push(new Outbox(await serverSide, { maxBytes: 1 << 20, separator: null, onOverflow: () => assert.fail('no overflow expected') }));
    }
    const m = ['first', 'one', 'two', 'three', 'other'].map((t) => Buffer.from(t));
    // One turn: each socket's first message is written at once; the rest wait for the flush, where the
    // first two sockets flush the same three messages, the third the first two of them, the fourth two
    // of them and another.
    const queued = [
      [m[0]!, m[1]!, m[2]!, m[3]!],
      [m[0]!, m[1]!, m[2]!, m[3]!],
      [m[0]!, m[1]!, m[2]!],
      [m[0]!, m[1]!, m[2]!, m[4]!],
    ];
    queued.forEach((messages, i) => messages.forEach((b) => outboxes[i]!.push(b)));
    const want = queued.map((messages) => messages.map((b) => b.toString('latin1')));
    for (let i = 0; i < 200 && frames.some((got, k) => got.length < want[k]!.length); i++) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 50)); // and nothing more
    assert.deepEqual(frames, want);
  } finally {
    for (const c of clients) c.terminate();
    await new Promise<void>((r) => wss.close(() => r()));
  }
});

test('with a separator, text messages of one turn join into one frame; a binary one keeps frames apart', async () => {
  const { turn, close } = await pair(Buffer.from('\n'));
  try {
    // The first message of a turn to an idle connection is written at once, alone; the rest of the
    // turn waits for the flush and goes in one frame.
    assert.deepEqual(await turn([text('a'), text('b'), text('c'), text('d')]), [text('a'), text('b\nc\nd')]);
    assert.deepEqual(await turn([text('e'), text('f'), bin('\xff'), text('g')]), [text('e'), text('f'), bin('\xff'), text('g')]);
    assert.deepEqual(await turn([text('h')]), [text('h')]);
  } finally {
    await close();
  }
});

test('turns of different lengths, a burst among them: each turn sends exactly its own messages', async () => {
  const { turn, close } = await pair(Buffer.from('\n'));
  try {
    const burst = Array.from({ length: 40 }, (_, i) => text(`m${i}`));
    // Each turn's first message is written at once (the connection is idle), the rest in one frame.
    assert.deepEqual(await turn([text('a'), text('b'), text('c'), text('d')]), [text('a'), text('b\nc\nd')]);
    // Shorter than the turn before: nothing of that turn comes along.
    assert.deepEqual(await turn([text('e'), text('f'), text('g')]), [text('e'), text('f\ng')]);
    assert.deepEqual(await turn([text('h')]), [text('h')]);
    assert.deepEqual(await turn(burst), [burst[0]!, text(burst.slice(1).map((m) => m.data).join('\n'))]);
    assert.deepEqual(await turn([text('i'), text('j'), text('k')]), [text('i'), text('j\nk')]);
  } finally {
    await close();
  }
});

test('a message written is no longer held by the outbox, nor its frame by the pass', async () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const { turnOf, close } = await pair(Buffer.from('\n'));
  try {
    const refs: WeakRef<Buffer>[] = [];
    const tracked = (data: string) => {
      const b = Buffer.from(data);
      refs.push(new WeakRef(b));
      return b;
    };
    // Several at once (an outbox keeps the slots of such a turn for the next), then fewer.
    // The first of each turn is written at once, alone.
    const sent = async (...data: string[]) => assert.deepEqual(await turnOf(() => data.map(tracked)), [text(data[0]!), text(data.slice(1).join('\n'))]);
    await sent('a', 'b', 'c', 'd', 'e');
    await sent('f', 'g', 'h');
    // A collection in a turn of its own: deref() keeps its target alive to the end of the turn.
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, 20));
      gc();
      await new Promise((r) => setTimeout(r, 20));
      if (refs.every((r) => r.deref() === undefined)) break;
    }
    // The outbox is still open and in use: what it wrote is garbage all the same.
    assert.deepEqual(
      refs.map((r) => r.deref() === undefined),
      Array(8).fill(true),
    );
  } finally {
    await close();
  }
});

/** A server socket and the client reading it; `close` ends both. */
async function connected(): Promise<{ ws: WebSocket; client: WebSocket; close: () => Promise<void> }> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const serverSide = new Promise<WebSocket>((r) => wss.once('connection', (ws) => r(ws)));
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`);
  await new Promise<void>((r, j) => (client.once('open', () => r()), client.once('error', j)));
  const ws = await serverSide;
  const close = async () => {
    client.terminate();
    await new Promise<void>((r) => wss.close(() => r()));
  };
  return { ws, client, close };
}

test('a message larger than the limit goes out to a client that has sent everything; a burst past the limit, or a client that stops reading, is cut off', async () => {
  const { ws, client, close } = await connected();
  let received = 0;
  client.on('message', (data: Buffer) => (received += data.length));
  let overflows = 0;
  const limit = 64 * 1024;
  const outbox = new Outbox(ws, { maxBytes: limit, separator: null, onOverflow: () => overflows++ });
  const arrived = async (bytes: number) => {
    for (let i = 0; i < 500 && received < bytes; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(received, bytes);
  };
  try {
    // One message four times the limit: taken and sent whole.
    assert.equal(outbox.push(Buffer.alloc(4 * limit, 0x61)), true);
    await arrived(4 * limit);
    // Again, once it was sent.
    assert.equal(outbox.push(Buffer.alloc(2 * limit, 0x62)), true);
    await arrived(6 * limit);
    assert.equal(overflows, 0);

    // The client stops reading: once what was written stays unsent and more waits, it is cut off.
    (client as unknown as { _socket: { pause(): void } })._socket.pause();
    let pushed = 0;
    for (let i = 0; i < 4096 && overflows === 0; i++) {
      outbox.push(Buffer.alloc(limit / 2, 0x63));
      pushed++;
      await new Promise((r) => setImmediate(r));
    }
    assert.equal(overflows, 1, `cut off after ${pushed} messages`);
    assert.equal(outbox.push(Buffer.from('more')), false);
  } finally {
    await close();
  }
});

test('a burst past the limit in one turn goes out whole to a client that reads, up to eight times the limit; one that stops reading is cut off, holding at most that', async () => {
  const { ws, client, close } = await connected();
  // Payload bytes received, separators left out (the burst may go out as several joined frames).
  let received = 0;
  client.on('message', (data: Buffer) => (received += data.length - data.toString('latin1').split('\n').length + 1));
  let overflows = 0;
  const limit = 64 * 1024;
  const outbox = new Outbox(ws, { maxBytes: limit, separator: Buffer.from('\n'), onOverflow: () => overflows++ });
  try {
    // Six times the limit in one turn (an API batch, a Redis pipeline read at once): taken, and the
    // reader gets all of it.
    const burst = 6 * limit;
    for (let i = 0; i < 24; i++) assert.equal(outbox.push(Buffer.alloc(limit / 4, 0x64)), true, `message ${i}`);
    for (let i = 0; i < 500 && received < burst; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(received, burst, 'every message');
    assert.equal(overflows, 0);

    // More than eight times the limit in one turn: cut off there, what waits stays bounded. The
    // connection is idle when the turn begins, so its first message is written at once (the kernel
    // takes it whole here); the next 32 are held: eight times the limit.
    let taken = 0;
    for (let i = 0; i < 64 && outbox.push(Buffer.alloc(limit / 4, 0x66)); i++) taken++;
    assert.equal(taken, 33, 'one written, eight times the limit held, then cut off');
    assert.equal(overflows, 1);
  } finally {
    await close();
  }
});

test('a client that reads everything is never cut off, with a message past the limit and another in the same turn, again and again', async () => {
  const { ws, client, close } = await connected();
  let received = 0;
  client.on('message', (data: Buffer) => (received += data.length));
  let overflows = 0;
  const limit = 1 << 20;
  const outbox = new Outbox(ws, { maxBytes: limit, separator: Buffer.from('\n'), onOverflow: () => overflows++ });
  try {
    // Each round, in one turn: six times the limit (written at once, the socket still holding most
    // of it) and a small message, which finds the socket over the limit right after a write. Rounds
    // 400 ms apart: a stall clock left running from one round would cut the client off in a later one.
    let expected = 0;
    for (let round = 0; round < 6; round++) {
      assert.equal(outbox.push(Buffer.alloc(6 * limit, 0x61)), true, `round ${round}: the large message`);
      assert.equal(outbox.push(Buffer.from('small')), true, `round ${round}: the small one`);
      expected += 6 * limit + 'small'.length;
      for (let i = 0; i < 500 && received < expected; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(received, expected, `round ${round}: all of it arrived`);
      assert.equal(overflows, 0, `round ${round}: not cut off`);
      await new Promise((r) => setTimeout(r, 400));
    }
  } finally {
    await close();
  }
});

test('a client that stops reading while messages keep coming is cut off, holding at most eight times the limit', async () => {
  const { ws, client, close } = await connected();
  let overflows = 0;
  const limit = 64 * 1024;
  const outbox = new Outbox(ws, { maxBytes: limit, separator: Buffer.from('\n'), onOverflow: () => overflows++ });
  try {
    (client as unknown as { _socket: { pause(): void } })._socket.pause();
    let held = 0;
    let turns = 0;
    for (; turns < 1000 && overflows === 0; turns++) {
      for (let i = 0; i < 4 && outbox.push(Buffer.alloc(limit / 4, 0x65)); i++) held = Math.max(held, ws.bufferedAmount);
      await new Promise((r) => setTimeout(r, 1));
    }
    assert.equal(overflows, 1, `cut off after ${turns} turns`);
    assert.ok(held <= 8 * limit, `held ${held} bytes unsent, limit ${limit}`);
    assert.equal(outbox.push(Buffer.from('more')), false);
  } finally {
    await close();
  }
});

test('a client that stops reading is cut off within about a second of taking nothing, however little comes', async () => {
  const { ws, client, close } = await connected();
  let cutAt = 0;
  const limit = 64 * 1024;
  const outbox = new Outbox(ws, { maxBytes: limit, separator: Buffer.from('\n'), onOverflow: () => (cutAt = Date.now()) });
  try {
    (client as unknown as { _socket: { pause(): void } })._socket.pause();
    // Fill what the kernel takes and past the limit, then a small message every 50 ms.
    let sent = 0;
    for (let i = 0; i < 400 && ws.bufferedAmount <= limit && outbox.push(Buffer.alloc(limit / 4, 0x67)); i++) {
      sent += limit / 4;
      await new Promise((r) => setTimeout(r, 1));
    }
    assert.ok(ws.bufferedAmount > limit, 'the socket holds more than the limit unsent');
    const over = Date.now();
    for (let i = 0; i < 100 && !cutAt; i++) {
      outbox.push(Buffer.from('tick'));
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(cutAt > 0, 'cut off');
    const after = cutAt - over;
    assert.ok(after >= 900 && after < 2500, `cut off ${after} ms after it stopped taking anything (${sent} bytes sent)`);
  } finally {
    await close();
  }
});

/** `n` server sockets, each with an outbox, and their clients; `close` ends them all. */
async function many(n: number): Promise<{ outboxes: Outbox[]; written: () => number[]; received: () => number; close: () => Promise<void> }> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const servers: WebSocket[] = [];
  wss.on('connection', (ws) => servers.push(ws));
  const port = (wss.address() as AddressInfo).port;
  let received = 0;
  const clients = await Promise.all(
    Array.from({ length: n }, async () => {
      const c = new WebSocket(`ws://127.0.0.1:${port}`);
      c.on('message', () => received++);
      await new Promise<void>((r, j) => (c.once('open', () => r()), c.once('error', j)));
      return c;
    }),
  );
  for (let i = 0; i < 200 && servers.length < n; i++) await new Promise((r) => setTimeout(r, 10));
  const outboxes = servers.map((ws) => new Outbox(ws, { maxBytes: 1 << 20, separator: Buffer.from('\n'), onOverflow: () => assert.fail('no overflow expected') }));
  // Bytes each server socket has been given to write so far (whether or not the kernel has them yet).
  const written = () => servers.map((ws) => (ws as unknown as { _socket: { bytesWritten: number } })._socket.bytesWritten);
  const close = async () => {
    for (const c of clients) c.terminate();
    await new Promise<void>((r) => wss.close(() => r()));
  };
  return { outboxes, written, received: () => received, close };
}

test('a message to an idle connection is written in the call that queues it; the rest of its turn waits for the flush, in one frame', async () => {
  const { turnOf, close } = await pair(Buffer.from('\n'));
  const { outboxes, written, close: closeMany } = await many(1);
  try {
    const [outbox] = outboxes;
    const before = written()[0]!;
    outbox!.push(Buffer.from('now'));
    const after = written()[0]!;
    assert.ok(after > before, 'written before push returned');
    outbox!.push(Buffer.from('later'));
    assert.equal(written()[0], after, 'the second of the turn waits for the flush');
    await new Promise((r) => setImmediate(r));
    assert.ok(written()[0]! > after, 'and goes at the turn end');
    // Seen by a client: the first alone, the rest of the turn joined.
    assert.deepEqual(await turnOf(() => [Buffer.from('x'), Buffer.from('y'), Buffer.from('z')]), [text('x'), text('y\nz')]);
  } finally {
    await close();
    await closeMany();
  }
});

test('at most 256 connections a turn are written at once; while a pass of the flush is under way, none is', async () => {
  const n = 301;
  const { outboxes, written, received, close } = await many(n);
  try {
    const start = written();
    const moved = (from: number[]) => written().filter((w, i) => w > from[i]!).length;
    // One publication to 300 idle connections in one turn (a quiet fan-out channel): 256 written at
    // once, the other 44 in the flush.
    for (let i = 0; i < 300; i++) outboxes[i]!.push(Buffer.from('one'));
    assert.equal(moved(start), 256);
    // A second one in the same turn: every connection has it queued, so the flush's pass takes two
    // slices of 256 outboxes, a turn of the loop apart.
    for (let i = 0; i < 300; i++) outboxes[i]!.push(Buffer.from('two'));
    const afterPushes = written();
    let midPass: number[] | undefined;
    let wroteMidPass: boolean | undefined;
    // Runs after the flush's first slice (queued after it, in the same turn), before its second.
    setImmediate(() => {
      midPass = written();
      outboxes[300]!.push(Buffer.from('idle, during the pass'));
      wroteMidPass = written()[300] !== midPass[300];
    });
    // Frames: the 256 written at once and then their second messages, alone; the other 44 connections'
    // two messages joined in one frame; the idle connection's one.
    const frames = 256 * 2 + 44 + 1;
    for (let i = 0; i < 300 && received() < frames; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(wroteMidPass, false, 'an idle connection is not written at once while a pass is under way');
    assert.equal(moved(afterPushes), n, 'every connection wrote in the pass');
    assert.ok(written().filter((w, i) => w > midPass![i]!).length > 0, 'the pass went on after the check');
    await new Promise((r) => setTimeout(r, 50)); // and nothing more
    assert.equal(received(), frames);
  } finally {
    await close();
  }
});
