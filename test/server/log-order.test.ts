// Log lines reach stdout whole, once each and in order, even when whatever reads stdout falls behind
// (a full pipe) at the moment the node stops: an operator's log shows `herald stopping` before
// `herald stopped`, and every line before them.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import WebSocket from 'ws';
import { testConfig } from '../helpers/herald.js';
import { listeningPort } from '../helpers/process.js';
import { tempFile } from '../helpers/temp.js';

const BIN = new URL('../../../bin/herald.js', import.meta.url).pathname;
const ATTEMPTS = 1000; // each refused connection logs a line of about 200 bytes: past what a pipe holds (about 250 here)

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
    // Until the node stops refusing them because it waits on its full stdout: the close frames stop
    // coming (a socket is then closing) and its main thread sleeps outside the event loop's poll (the
    // logger retrying a write the full pipe refused), twice 300 ms apart. How many lines fill the pipe
    // depends on the kernel (a child's stdio is a socket pair, its room counted per write), and a busy
    // machine may pause the node without its pipe being full, so neither a count nor a quiet spell is
    // enough on its own (bounded).
    const refusedSoFar = () => sockets.filter((ws) => ws.readyState >= WebSocket.CLOSING).length;
    const waitingOnStdout = () => {
      const state = readFileSync(`/proc/${proc.pid}/stat`, 'utf8').split(') ')[1]![0];
      const wchan = readFileSync(`/proc/${proc.pid}/wchan`, 'utf8');
      return state === 'S' && !/epoll|ep_poll/.test(wchan);
    };
    let blocked = false;
    const end = Date.now() + 20_000;
    for (let seen = -1, calm = 0; !blocked && Date.now() < end; await new Promise((r) => setTimeout(r, 300))) {
      const now = refusedSoFar();
      if (now === ATTEMPTS) break; // all refused: the pipe never filled
      calm = now === seen && now > 0 && waitingOnStdout() ? calm + 1 : 0;
      seen = now;
      blocked = calm >= 2;
    }
    const refusedBefore = refusedSoFar();
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
    // The node was stopped while it waited on its full stdout, with lines still to write.
    assert.ok(blocked && refusedBefore < ATTEMPTS, `the node waited on its full stdout (${refusedBefore} of ${ATTEMPTS} refused)`);
    assert.ok(refused >= refusedBefore, `every refusal logged (${refused} lines, ${refusedBefore} refused before the stop)`);
    const stopping = msgs.indexOf('herald stopping');
    const stopped = msgs.indexOf('herald stopped');
    assert.ok(stopping >= 0 && stopped > stopping, `stopping then stopped, in: ${msgs.slice(-5).join(' | ')}`);
    assert.equal(stopped, msgs.length - 1, 'nothing after `herald stopped`');
    assert.equal(msgs.indexOf('herald started'), 0);
  } finally {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  }
});
