// Not a gateway: the least memory any Node server must hold per idle WebSocket. It answers the
// upgrade handshake by hand and keeps the bare net.Socket, with no WebSocket library and no
// per-connection state of its own. The benchmark measures it in s3 only, as the floor under every
// Node server's bytes per connection.
import { createHash } from 'node:crypto';
import { createServer } from 'node:net';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const held = new Set();
const server = createServer((socket) => {
  let head = '';
  const onData = (chunk) => {
    head += chunk.toString('latin1');
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) return;
    socket.off('data', onData);
    const key = /^sec-websocket-key:\s*(\S+)/im.exec(head.slice(0, end))?.[1] ?? '';
    const accept = createHash('sha1').update(key + GUID).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    head = '';
    socket.on('data', () => {}); // whatever the client sends is read and dropped
  };
  socket.on('data', onData);
  socket.on('error', () => socket.destroy());
  socket.on('close', () => held.delete(socket));
  held.add(socket);
});
server.listen(Number(process.env.PORT), '127.0.0.1', () => console.log('LISTENING'));
