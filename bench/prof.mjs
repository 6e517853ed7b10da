#!/usr/bin/env node
// Summarises a V8 .cpuprofile (from BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR"): the functions
// with the most self time, and the most inclusive time, so a change can be aimed at what costs.
//   node bench/prof.mjs FILE.cpuprofile [top=25] [FROM-TO]
// With FROM-TO, only the samples from FROM to TO seconds before the profile's end count (the
// measurement, not the setup nor the shutdown); a timeline of busy time per second is printed first.
import { readFileSync } from 'node:fs';

const [file, topArg, windowArg] = process.argv.slice(2);
if (!file) {
  console.error('usage: node bench/prof.mjs FILE.cpuprofile [top]');
  process.exit(2);
}
const top = Number(topArg ?? 25);
const prof = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const [from, to] = windowArg === undefined ? [Infinity, 0] : windowArg.split('-').map(Number);
const idle = new Set(prof.nodes.filter((n) => n.callFrame.functionName === '(idle)').map((n) => n.id));
const hits = new Map();
const busy = [];
const all = [];
let at = prof.startTime;
for (let i = 0; i < prof.samples.length; i++) {
  const dt = prof.timeDeltas[i] ?? 0;
  at += dt;
  const before = (prof.endTime - at) / 1e6;
  const sec = Math.floor(before);
  all[sec] = (all[sec] ?? 0) + dt;
  if (!idle.has(prof.samples[i])) busy[sec] = (busy[sec] ?? 0) + dt;
  if (before <= from && before >= to) hits.set(prof.samples[i], (hits.get(prof.samples[i]) ?? 0) + dt);
}
if (windowArg !== undefined) {
  const line = [];
  for (let s = Math.min(all.length - 1, 40); s >= 0; s--) if (all[s]) line.push(`-${s}s ${Math.round((100 * (busy[s] ?? 0)) / all[s])}%`);
  console.log(`busy per second before the end: ${line.join(', ')}`);
}
const total = [...hits.values()].reduce((a, b) => a + b, 0);
const label = (n) => {
  const f = n.callFrame;
  const where = f.url ? `${f.url.replace(/^.*\/(node_modules|dist)\//, '$1/').replace(/^node:/, '')}:${f.lineNumber + 1}` : '';
  return `${f.functionName || '(anonymous)'} ${where}`.trim();
};
const self = new Map();
const incl = new Map();
for (const [id, t] of hits) {
  const l = label(byId.get(id));
  self.set(l, (self.get(l) ?? 0) + t);
  // Inclusive: count each distinct function once per stack.
  const seen = new Set();
  for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
    const cl = label(byId.get(cur));
    if (seen.has(cl)) continue;
    seen.add(cl);
    incl.set(cl, (incl.get(cl) ?? 0) + t);
  }
}
const show = (title, m) => {
  console.log(`\n${title} (of ${(total / 1000).toFixed(0)} ms sampled)`);
  for (const [l, t] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${((100 * t) / total).toFixed(1).padStart(5)}%  ${l}`);
};
show('self time', self);
show('inclusive time', incl);
