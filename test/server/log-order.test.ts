// Log lines reach stdout whole, once each and in order, even when whatever reads stdout falls behind
// (a full pipe) at the moment the node stops: an operator's log shows `herald stopping` before
// `herald stopped`, and every line before them.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import WebSocket from 'ws';
import { testConfig } from '../helpers/herald.js';
import { listeningPort } from '../helpers/process.js';
import { tempFile } from '../helpers/temp.js';

const BIN = new URL('../../../bin/herald.js', import.meta.url).pathname;
const ATTEMPTS = 600; // each refused connection logs a line of about 165 bytes: past a 64 KiB pipe

test('with stdout not read while the node logs and stops, every line comes out once, in order', async () => {
  const file = tempFile('herald.json', JSON.stringify(testConfig({ log_level: 'info' })));
  const proc = spawn(process.execPath, [BIN, '--config', file], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH } });
  try {
    // stdout is not read yet: its pipe fills.
    proc.stdout!.pause();
    let err = '';
    proc.stderr!.on('data', (d) => (err += d));
    const port = await listeningPort(proc, () => err);
    // Connections without a token, each refused with a log line; not waited for one by one.
    const sockets: WebSocket[] = [];
    for (let i = 0; i < ATTEMPTS; i++) {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/connection/websocket`);
      ws.on('open', () => ws.send('{"id":1,"connect":{}}'));
      ws.on('error', () => undefined);
      sockets.push(ws);
    }
    // Until the node stops refusing them (it waits on its full stdout pipe) or has refused them all,
    // seen from here as the close frames it sent (a socket is then closing); a busy machine takes
    // longer than a quiet one (bounded).
    const refusedSoFar = () => sockets.filter((ws) => ws.readyState >= WebSocket.CLOSING).length;
    const end = Date.now() + 20_000;
    for (let seen = -1, since = Date.now(); Date.now() < end; await new Promise((r) => setTimeout(r, 50))) {
      const now = refusedSoFar();
      if (now === ATTEMPTS) break;
      if (now !== seen) (seen = now), (since = Date.now());
      else if (now > 0 && Date.now() - since > 1000) break;
    }
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    proc.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    // Now the reader catches up.
    let out = '';
    proc.stdout!.on('data', (d) => (out += d));
    proc.stdout!.resume();
    const code = await exited;
    await new Promise((r) => setTimeout(r, 100));
    for (const ws of sockets) ws.terminate();
    assert.equal(code, 0, err);
    const lines = out.split('\n').filter(Boolean);
    const msgs = lines.map((l) => (JSON.parse(l) as { msg: string }).msg);
    const refused = msgs.filter((m) => m.startsWith('connection without token refused')).length;
    // The node wrote more than the pipe holds before it began to stop: it waited on a full pipe.
    const before = out.slice(0, out.indexOf('"herald stopping"')).length;
    assert.ok(before > 64 * 1024, `enough lines to fill the pipe (${refused} refused, ${before} bytes)`);
    const stopping = msgs.indexOf('herald stopping');
    const stopped = msgs.indexOf('herald stopped');
    assert.ok(stopping >= 0 && stopped > stopping, `stopping then stopped, in: ${msgs.slice(-5).join(' | ')}`);
    assert.equal(stopped, msgs.length - 1, 'nothing after `herald stopped`');
    assert.equal(msgs.indexOf('herald started'), 0);
  } finally {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  }
});
