// Loaded into each Node server in s3 (NODE_OPTIONS=--require=...): on SIGUSR2 it runs two full
// garbage collections and appends one JSON line to $BENCH_GC_FILE with the process's resident memory
// and live JS heap, so s3 can tell what a server holds per idle connection from the garbage its setup
// left that no collection had freed yet. A line at start says the server can be asked.
'use strict';
const { appendFileSync } = require('node:fs');
const { setFlagsFromString } = require('node:v8');
const { runInNewContext } = require('node:vm');

const file = process.env.BENCH_GC_FILE;
if (file) {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc');
  appendFileSync(file, `${JSON.stringify({ ready: true })}\n`);
  process.on('SIGUSR2', () => {
    gc();
    gc();
    const { rss, heapUsed } = process.memoryUsage();
    appendFileSync(file, `${JSON.stringify({ rss, heapUsed })}\n`);
  });
}
