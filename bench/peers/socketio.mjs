// Socket.IO 4 with the Redis adapter, the usual choice for pushing to many sockets across nodes.
// A client emits "subscribe" with a room name (acknowledged); publishers use the Redis emitter.
import { createServer } from 'node:http';
import { createAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';
import { Server } from 'socket.io';

const port = Number(process.env.PORT);
const pub = new Redis(Number(process.env.REDIS_PORT), '127.0.0.1');
const sub = pub.duplicate();
const http = createServer();
const io = new Server(http, { transports: ['websocket'], perMessageDeflate: false, adapter: createAdapter(pub, sub) });
io.on('connection', (socket) => {
  socket.on('subscribe', (room, ack) => {
    socket.join(room);
    if (typeof ack === 'function') ack();
  });
});
http.listen(port, '127.0.0.1', () => console.log('LISTENING'));
