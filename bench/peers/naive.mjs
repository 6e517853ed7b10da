// The naive gateway a team would write first (seed 002's sketch): ws + ioredis, one Redis SUBSCRIBE per
// channel, and a loop of ws.send over the channel's sockets. A client picks its channel by URL path.
import { Redis } from 'ioredis';
import { WebSocketServer } from 'ws';

const port = Number(process.env.PORT);
const sub = new Redis(Number(process.env.REDIS_PORT), '127.0.0.1');
const rooms = new Map();
sub.on('message', (channel, message) => {
  const sockets = rooms.get(channel);
  if (sockets) for (const ws of sockets) ws.send(message);
});
// Serve once Redis is ready: a SUBSCRIBE sent while ioredis still runs its ready check (INFO) can
// fail that check and end the process.
await new Promise((resolve) => sub.once('ready', resolve));
const wss = new WebSocketServer({ port, host: '127.0.0.1', perMessageDeflate: false });
wss.on('connection', (ws, req) => {
  const channel = decodeURIComponent((req.url ?? '/').slice(1));
  let sockets = rooms.get(channel);
  if (!sockets) {
    rooms.set(channel, (sockets = new Set()));
    sub.subscribe(channel);
  }
  sockets.add(ws);
  ws.on('close', () => {
    sockets.delete(ws);
    if (sockets.size === 0) {
      rooms.delete(channel);
      sub.unsubscribe(channel);
    }
  });
});
wss.on('listening', () => console.log('LISTENING'));
