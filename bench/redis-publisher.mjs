// A cheap Redis publisher for the benchmark: one connection; each PUBLISH is written as RESP, the
// commands of one burst go out in one write, and the replies are matched to them in order. ioredis
// costs ~40 µs a call (command objects, promises, its queues), which at 5,000 calls/s made the
// publisher the busiest process on the load generator's CPU, beside Redis and the load generator.
import { connect } from 'node:net';

/** Connects to Redis on 127.0.0.1:port; `publish(channel, payload)` resolves with the receiver count. */
export async function redisPublisher(port) {
  const socket = connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  socket.setEncoding('latin1');
  const waiting = [];
  let out = '';
  let failed;
  let buf = '';
  const flush = () => {
    if (out && !failed) socket.write(out);
    out = '';
  };
  socket.on('data', (d) => {
    buf += d;
    // PUBLISH answers one line: `:<receivers>` or `-<error>`.
    let start = 0;
    for (let end = buf.indexOf('\r\n'); end >= 0; end = buf.indexOf('\r\n', start)) {
      const line = buf.slice(start, end);
      start = end + 2;
      const w = waiting.shift();
      if (!w) continue;
      if (line[0] === '-') w.reject(new Error(`redis: ${line.slice(1)}`));
      else w.resolve(Number(line.slice(1)));
    }
    buf = buf.slice(start);
  });
  const fail = (err) => {
    failed ??= err ?? new Error('redis connection closed');
    for (const w of waiting.splice(0)) w.reject(failed);
  };
  socket.on('error', fail);
  socket.on('close', () => fail());
  await new Promise((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return {
    publish(channel, payload) {
      if (failed) return Promise.reject(failed);
      if (!out) process.nextTick(flush);
      out += `*3\r\n$7\r\nPUBLISH\r\n$${Buffer.byteLength(channel)}\r\n${channel}\r\n$${Buffer.byteLength(payload)}\r\n${payload}\r\n`;
      return new Promise((resolve, reject) => waiting.push({ resolve, reject }));
    },
    close() {
      socket.destroy();
    },
  };
}
