import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryEngine } from '../../src/engine/memory.js';
import { engineContract } from './contract.js';

engineContract({ name: 'memory', create: async (opts) => new MemoryEngine(opts) });

// What expired is freed a slice at a time: a walk over many channels does not stop the node for its
// whole length, and it frees them all.

test('the memory engine frees expired streams 10,000 entries a turn, all of them by the end of the walk', async () => {
  const engine = new MemoryEngine({ historyMetaTtlMs: 3_600_000, idempotentResultTtlMs: 60_000 });
  await engine.start({ onPublication: () => 0 });
  try {
    const streams = (engine as unknown as { streams: Map<string, unknown> }).streams;
    for (let i = 0; i < 25_000; i++) await engine.publish(`s:${i}`, { data: Buffer.from('1'), history: { size: 1, ttlMs: 20, metaTtlMs: 20 } });
    assert.equal(streams.size, 25_000);
    await new Promise((r) => setTimeout(r, 50));
    (engine as unknown as { sweep(): void }).sweep();
    assert.equal(streams.size, 15_000, 'one turn frees one slice');
    for (let i = 0; i < 10 && streams.size > 0; i++) await new Promise((r) => setImmediate(r));
    assert.equal(streams.size, 0);
  } finally {
    await engine.close();
  }
});
