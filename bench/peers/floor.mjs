// Not a gateway: the least any Node server must spend per WebSocket. It answers the upgrade handshake
// by hand and keeps the bare net.Socket, with no WebSocket library and no state of its own beyond a
// set of sockets. The benchmark measures it as a reference, never as a peer:
// - without REDIS_PORT (s3): the memory every Node server holds per idle WebSocket;
// - with REDIS_PORT (s1, s2): the CPU and latency of fan-out itself. A client picks its channel by
//   URL path (as with the naive peer); each Redis message is framed once (by ws's framing function,
//   the one thing taken from it) and written to every socket of its channel with one socket.write,
//   with no queue, no limit and no coalescing.
import { createHash } from 'node:crypto';
import { createServer } from 'node:net';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const redisPort = process.env.REDIS_PORT ? Number(process.env.REDIS_PORT) : undefined;
/** Channel -> its sockets (one channel, '', when there is no Redis). */
const rooms = new Map();
let sub;

if (redisPort !== undefined) {
  const { Redis } = await import('ioredis');
  // ws's framing only (none of its sockets): a whole unmasked text frame, in one buffer.
  const { Sender } = await import('ws');
  const frame = (payload) => Buffer.concat(Sender.frame(payload, { fin: true, rsv1: false, opcode: 0x1, mask: false, readOnly: true }));
  sub = new Redis(redisPort, '127.0.0.1');
  sub.on('messageBuffer', (channel, message) => {
    const sockets = rooms.get(channel.toString());
    if (!sockets) return;
    const f = frame(message);
    for (const socket of sockets) socket.write(f);
  });
  await new Promise((resolve) => sub.once('ready', resolve));
}

function join(socket, channel) {
  let sockets = rooms.get(channel);
  if (!sockets) {
    rooms.set(channel, (sockets = new Set()));
    sub?.subscribe(channel);
  }
  sockets.add(socket);
  socket.on('close', () => {
    sockets.delete(socket);
    if (sockets.size === 0) {
      rooms.delete(channel);
      sub?.unsubscribe(channel);
    }
  });
}

const server = createServer((socket) => {
  socket.setNoDelay(true);
  let head = '';
  const onData = (chunk) => {
    head += chunk.toString('latin1');
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) return;
    socket.off('data', onData);
    const request = head.slice(0, end);
    const key = /^sec-websocket-key:\s*(\S+)/im.exec(request)?.[1] ?? '';
    const path = /^GET (\S+)/.exec(request)?.[1] ?? '/';
    const accept = createHash('sha1').update(key + GUID).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    head = '';
    socket.on('data', () => {}); // whatever the client sends is read and dropped
    join(socket, sub ? decodeURIComponent(path.slice(1)) : '');
  };
  socket.on('data', onData);
  socket.on('error', () => socket.destroy());
});
server.listen(Number(process.env.PORT), '127.0.0.1', () => console.log('LISTENING'));
