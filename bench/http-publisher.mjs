// A cheap HTTP publisher for the benchmark: a few keep-alive connections that write each API call as
// one preformatted HTTP/1.1 request and read the responses with a minimal parser. Node's http client
// costs ~100 µs a call, enough at 5,000 calls/s to make the publisher, on the load generator's CPU,
// part of what is measured; the peers' publisher (ioredis, pipelined PUBLISH) costs a few µs.
// Requests are pipelined on each connection (HTTP/1.1 allows it; the server answers in order).
import { connect } from 'node:net';

/** Opens `conns` connections to 127.0.0.1:port; `post(path, body)` resolves with the response body (status 200) or rejects. */
export async function httpPublisher(port, headers, conns = 4) {
  const fixed = `HTTP/1.1\r\nHost: 127.0.0.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}Content-Type: application/json\r\n`;
  const head = (path, len) => `POST ${path} ${fixed}Content-Length: ${len}\r\n\r\n`;
  const sockets = await Promise.all(Array.from({ length: conns }, () => open(port)));
  let next = 0;
  return {
    post(path, body) {
      const s = sockets[next++ % sockets.length];
      return new Promise((resolve, reject) => {
        if (s.failed) return reject(s.failed);
        s.waiting.push({ resolve, reject });
        s.socket.write(head(path, Buffer.byteLength(body)) + body);
      });
    },
    close() {
      for (const s of sockets) s.socket.destroy();
    },
  };
}

function open(port) {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const s = { socket, waiting: [], buf: '', failed: undefined };
    socket.setNoDelay(true);
    socket.setEncoding('latin1');
    socket.on('connect', () => resolve(s));
    socket.on('data', (d) => {
      s.buf += d;
      // Each response: a status line, headers with Content-Length, and that many bytes of body.
      for (;;) {
        const end = s.buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const m = /content-length:\s*(\d+)/i.exec(s.buf.slice(0, end));
        const total = end + 4 + (m ? Number(m[1]) : 0);
        if (s.buf.length < total) return;
        const status = Number(s.buf.slice(9, 12));
        const body = s.buf.slice(end + 4, total);
        s.buf = s.buf.slice(total);
        const w = s.waiting.shift();
        if (!w) continue;
        if (status === 200) w.resolve(body);
        else w.reject(new Error(`HTTP ${status}`));
      }
    });
    const fail = (err) => {
      s.failed = err ?? new Error('connection closed');
      for (const w of s.waiting.splice(0)) w.reject(s.failed);
      reject(s.failed);
    };
    socket.on('error', fail);
    socket.on('close', () => fail());
  });
}
