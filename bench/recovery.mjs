// Scenario s4: clients cut off while publications continue, then back: does every client get every
// missed publication exactly once, in order, and how long does it take? Raw WebSocket clients speak
// the native protocol as centrifuge-js does (subscribe with recover, offset, epoch).
import WebSocket from 'ws';
import { setTimeout as sleep } from 'node:timers/promises';

const CHANNEL = 'recov:bench';

function open(port) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/connection/websocket`);
    ws.on('open', () => resolve(ws));
    ws.on('error', reject);
  });
}

/** One client: subscribes (recovering when it has a position) and records publication offsets. */
class Client {
  offsets = [];
  epoch = '';
  offset = 0;
  recovered = null;
  ws = null;

  async subscribe(port) {
    this.ws = await open(port);
    const recover = this.epoch ? { recover: true, offset: this.offset, epoch: this.epoch } : {};
    const reply = new Promise((resolve) => {
      this.ws.on('message', (data) => {
        for (const line of data.toString().split('\n')) {
          if (line === '{}') {
            this.ws.send('{}');
            continue;
          }
          const msg = JSON.parse(line);
          if (msg.id === 2) {
            const r = msg.subscribe;
            this.epoch = r.epoch;
            if (r.was_recovering) this.recovered = r.recovered === true;
            for (const p of r.publications ?? []) this.take(p.offset);
            if (!r.was_recovering) this.offset = r.offset ?? 0;
            resolve();
          } else if (msg.push?.pub) this.take(msg.push.pub.offset);
        }
      });
    });
    // With the benchmark's --tokens, connects with its token (the one the load generator uses).
    const connect = process.env.LOADGEN_TOKEN ? { token: process.env.LOADGEN_TOKEN } : {};
    this.ws.send(`${JSON.stringify({ connect, id: 1 })}\n${JSON.stringify({ subscribe: { channel: CHANNEL, ...recover }, id: 2 })}`);
    await reply;
  }

  take(offset) {
    this.offsets.push(offset);
    if (offset > this.offset) this.offset = offset;
  }

  cut() {
    this.ws.terminate();
  }
}

async function apiPublish(port, apiKey, data) {
  const res = await fetch(`http://127.0.0.1:${port}/api/publish`, {
    method: 'POST',
    headers: { 'X-API-Key': apiKey },
    body: JSON.stringify({ channel: CHANNEL, data }),
  });
  const body = await res.json();
  if (body.error) throw new Error(`publish: ${JSON.stringify(body.error)}`);
  return body.result.offset;
}

/** Runs s4 against a Herald node. */
export async function recoveryScenario({ port, apiKey, clients: n, messages, cutSeconds }) {
  const clients = Array.from({ length: n }, () => new Client());
  for (let i = 0; i < n; i += 100) await Promise.all(clients.slice(i, i + 100).map((c) => c.subscribe(port)));
  let first = 0;
  for (let i = 0; i < 10; i++) first = await apiPublish(port, apiKey, { warm: i });
  const warmStart = first - 9;
  const end = Date.now() + 10_000;
  while (clients.some((c) => c.offset < first) && Date.now() < end) await sleep(20);
  for (const c of clients) c.cut();
  const gap = (cutSeconds * 1000) / messages;
  let last = first;
  for (let i = 0; i < messages; i++) {
    last = await apiPublish(port, apiKey, { missed: i });
    await sleep(gap);
  }
  const t0 = performance.now();
  for (let i = 0; i < n; i += 100) await Promise.all(clients.slice(i, i + 100).map((c) => c.subscribe(port)));
  while (clients.some((c) => c.offset < last) && performance.now() - t0 < 30_000) await sleep(5);
  const timeToRecover = performance.now() - t0;
  let missing = 0;
  let duplicates = 0;
  let outOfOrder = 0;
  for (const c of clients) {
    const seen = new Set();
    let prev = 0;
    for (const o of c.offsets) {
      if (seen.has(o)) duplicates++;
      else seen.add(o);
      if (o < prev) outOfOrder++;
      prev = o;
    }
    for (let o = warmStart; o <= last; o++) if (!seen.has(o)) missing++;
    c.ws.terminate();
  }
  return {
    clients: n,
    missed_messages: messages,
    recovered_true: clients.filter((c) => c.recovered === true).length,
    missing,
    duplicates,
    out_of_order: outOfOrder,
    time_to_recover_ms: Math.round(timeToRecover),
  };
}
