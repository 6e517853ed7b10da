// The same-origin rule compares a browser's Origin with the Host header of the request Herald gets:
// behind a reverse proxy that is the Host the proxy sends (nginx sends the upstream's name unless
// told `proxy_set_header Host $http_host`), and the refusal's log line says which Host it compared.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { startNode } from '../helpers/herald.js';
import { upgradeAnswer } from '../helpers/raw.js';

/** The status of a WebSocket upgrade sent with these Origin and Host headers. */
const upgrade = async (port: number, origin: string, host: string) =>
  (await upgradeAnswer(`ws://127.0.0.1:${port}/connection/websocket`, { Origin: origin, Host: host })).status;

test('a page\'s own origin is allowed when the Host passed on is the page\'s; with the upstream\'s name as Host it is refused, and the log names that Host', async () => {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  const node = await startNode({}, logger);
  try {
    const page = 'https://app.example.com';
    assert.equal(await upgrade(node.port, page, 'app.example.com'), 101, 'Host passed on (nginx: proxy_set_header Host $http_host)');
    assert.equal(await upgrade(node.port, page, 'herald-upstream'), 403, "nginx's default: the upstream's name");
    const line = lines.find((l) => l.msg === 'websocket origin not allowed (see client.allowed_origins)');
    assert.deepEqual([line?.origin, line?.host], [page, 'herald-upstream']);
  } finally {
    await node.close();
  }
  const listed = await startNode({ client: { allowed_origins: ['https://app.example.com'] } });
  try {
    assert.equal(await upgrade(listed.port, 'https://app.example.com', 'herald-upstream'), 101, 'or the origin is listed');
  } finally {
    await listed.close();
  }
});
