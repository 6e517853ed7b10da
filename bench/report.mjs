// Turns a run's rows into the headline table of docs/performance.md (between the markers), with
// ratios against the best peer in the same run.
import { readFileSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';

const DOC = new URL('../docs/performance.md', import.meta.url).pathname;
const START = '<!-- bench:start -->';
const END = '<!-- bench:end -->';
const PEERS = ['naive', 'socketio', 'webdis'];
const HERALD = ['herald-memory', 'herald-redis', 'herald-webdis', 'herald-baseline', 'herald-redis-baseline'];
/**
 * References that are not gateways (bare sockets, one write per delivery, no limits), each with how
 * the headline table names it: shown, and in the ratio table as what the targets would ask even of
 * them, never a "best peer".
 */
const FLOOR_LABELS = {
  floor: 'reference: bare `net.Socket`s, one write per delivery',
  'floor-c': 'reference: the same in C, one epoll loop',
};
const FLOORS = Object.keys(FLOOR_LABELS);

const fmt = (v, d = 1) => (v === null || v === undefined || Number.isNaN(v) ? '–' : typeof v === 'number' ? v.toFixed(d) : String(v));

/** A server's measured rows (not errors) of one scenario. */
function measured(rows, scenario, server) {
  return rows.filter((r) => r.scenario === scenario && r.server === server && !r.error);
}

const sustains = (r) => !r.error && r.loss === 0 && r.p99_ms <= 100;

/** The highest s1 delivery rate a server sustained with p99 <= 100 ms and no loss (the issue's rule). */
function sustained(rows, server) {
  const ok = rows.filter((r) => r.scenario === 's1' && r.server === server && sustains(r));
  return ok.length ? Math.max(...ok.map((r) => r.target_deliveries_per_s)) : 0;
}

/**
 * The highest s1 rate sustained with every lower rate sustained too: below `sustained` when a rate
 * went over the line and a higher one came back under it (a p99 that sits near the line).
 */
function sustainedThrough(rows, server) {
  const steps = rows.filter((r) => r.scenario === 's1' && r.server === server).sort((a, b) => a.target_deliveries_per_s - b.target_deliveries_per_s);
  let rate = 0;
  for (const r of steps) {
    if (!sustains(r)) break;
    rate = r.target_deliveries_per_s;
  }
  return rate;
}

/** A sustained figure (as shown), with the one through every lower rate in brackets where it differs. */
const sustainedCell = (all, through) => (through === all ? all : `${all} (${through} through every lower rate)`);

/** The s1 row nearest to 50,000 deliveries a second. */
function at50k(rows, server) {
  const s1 = measured(rows, 's1', server);
  return s1.find((r) => r.target_deliveries_per_s === 50_000 && r.deliveries_per_s > 0) ?? null;
}

/**
 * A server's s2 result: the mean p99 over the rounds that measured it (every round's p99 is kept, to
 * show the spread) and the loss summed over them; the run's warm-up pass (`warm_up`) is not counted.
 */
function s2Of(rows, server) {
  const got = measured(rows, 's2', server).filter((r) => !r.warm_up);
  if (!got.length) return null;
  const p99s = got.map((r) => r.p99_ms);
  return { p99_ms: p99s.reduce((a, b) => a + b, 0) / p99s.length, p99s, loss: got.reduce((a, r) => a + r.loss, 0) };
}

/** The s2 cell: the mean p99, and each round's when there were several. */
const s2Cell = (s2) => (!s2 ? '–' : s2.p99s.length > 1 ? `${fmt(s2.p99_ms)} (${s2.p99s.map((v) => fmt(v)).join(', ')})` : fmt(s2.p99_ms));

/**
 * s3 per idle connection: the server's own resident growth, and with what it made its Redis hold
 * (shown only for runs that read Redis, from 2026-11-24T05-33 on).
 */
const s3Own = (r) => r?.bytes_per_connection;
const s3WithRedis = (r) => r && r.bytes_per_connection + (r.redis_bytes_per_connection ?? 0);

/** The s3 cell: the server's figure, what it made Redis hold, and the socket count where it differs. */
function s3Cell(r, usual) {
  if (!r) return '–';
  const redis = r.redis_bytes_per_connection !== undefined ? ` + ${r.redis_bytes_per_connection.toLocaleString('en')} in Redis` : '';
  const at = r.connections !== usual ? ` (${r.connections.toLocaleString('en')} sockets)` : '';
  return `${r.bytes_per_connection.toLocaleString('en')}${redis}${at}`;
}

/** The headline's lines (the tables and the run they come from) for a run's rows. */
export function reportLines(rows, file) {
  const machine = rows.find((r) => r.scenario === 'machine') ?? {};
  const servers = [...HERALD, ...PEERS, ...FLOORS].filter((s) => rows.some((r) => r.server === s));
  const lines = [];
  lines.push(`Run: \`${basename(file)}\` — ${machine.cpu ?? '?'}, ${machine.cpus ?? '?'} CPUs, Node ${machine.node ?? '?'}, ${machine.redis ?? ''}${machine.quick ? ' (quick mode: fewer sockets, shorter steps)' : ''}.`);
  lines.push('Server on CPU 0; load generator, publisher and Redis on CPU 1.');
  lines.push('');
  const rounds = Math.max(1, ...rows.filter((r) => r.scenario === 's2').map((r) => r.round ?? 1));
  const s2Title = rounds > 1 ? `s2 p99 (ms), mean of ${rounds} rounds (each round)` : 's2 p99 (ms)';
  const s3Rows = rows.filter((r) => r.scenario === 's3' && !r.error);
  const redisRead = s3Rows.some((r) => r.redis_bytes_per_connection !== undefined);
  const usualConns = Math.max(0, ...s3Rows.map((r) => r.connections ?? 0));
  const s3Title = redisRead ? 's3 bytes/idle connection (+ what it made Redis hold)' : 's3 bytes/idle connection';
  lines.push(`| server | s1 sustained deliveries/s (p99 ≤ 100 ms, no loss) | s1 p99 at 50k/s (ms) | s1 CPU µs/delivery at 50k/s (of it in the kernel) | ${s2Title} | s2 loss | ${s3Title} | s4 missing / duplicates |`);
  lines.push('|---|---|---|---|---|---|---|---|');
  for (const s of servers) {
    const err = rows.find((r) => r.server === s && r.error);
    const r50 = at50k(rows, s);
    const s2 = s2Of(rows, s);
    const s3 = measured(rows, 's3', s)[0];
    const s4 = measured(rows, 's4', s)[0];
    const cpu = r50 ? `${fmt(r50.server_cpu_us_per_delivery, 2)}${r50.server_sys_us_per_delivery != null ? ` (${fmt(r50.server_sys_us_per_delivery, 2)})` : ''}` : '–';
    lines.push(
      `| ${s}${FLOORS.includes(s) ? ` (${FLOOR_LABELS[s]})` : ''}${err ? ` (error in ${err.scenario}: ${err.error.slice(0, 120).replace(/[:;,\s]+$/, '')})` : ''} | ${measured(rows, 's1', s).length ? sustainedCell(sustained(rows, s).toLocaleString('en'), sustainedThrough(rows, s).toLocaleString('en')) : '–'} | ${fmt(r50?.p99_ms)} | ${cpu} | ${s2Cell(s2)} | ${s2 ? s2.loss : '–'} | ${s3Cell(s3, usualConns)} | ${s4 ? `${s4.missing} / ${s4.duplicates}` : 'n/a'} |`,
    );
  }
  const peers = servers.filter((s) => PEERS.includes(s));
  /** The best peer's value of `f` (undefined when no peer has one). */
  const best = (f, better) => peers.map(f).filter((v) => v !== null && v !== undefined && !Number.isNaN(v)).reduce((acc, v) => (acc === undefined || better(v, acc) ? v : acc), undefined);
  const ratio = (a, b) => (a === undefined || a === null || !b ? '–' : `${(a / b).toFixed(2)}×`);
  if (peers.length) {
    const bestSustained = best((s) => sustained(rows, s), (a, b) => a > b);
    const bestThrough = best((s) => sustainedThrough(rows, s), (a, b) => a > b);
    const bestP99 = best((s) => at50k(rows, s)?.p99_ms, (a, b) => a < b);
    const bestCpu = best((s) => at50k(rows, s)?.server_cpu_us_per_delivery, (a, b) => a < b);
    const bestS2 = best((s) => s2Of(rows, s)?.p99_ms, (a, b) => a < b);
    const bestS3 = best((s) => s3Own(measured(rows, 's3', s)[0]), (a, b) => a < b);
    const bestS3Redis = best((s) => s3WithRedis(measured(rows, 's3', s)[0]), (a, b) => a < b);
    lines.push('');
    lines.push('Ratios against the best peer in this run (target in brackets):');
    lines.push('');
    lines.push(`| server | sustained rate (≥ 5×) | p99 at 50k/s (≤ 0.5×) | CPU/delivery at 50k/s (≤ 0.5×) | s2 p99 (≤ 1×) | s3 memory${redisRead ? ", the server's" : ''} (≤ 0.5×) |${redisRead ? ' s3 memory with its Redis (≤ 0.5×) |' : ''}`);
    lines.push(`|---|---|---|---|---|---|${redisRead ? '---|' : ''}`);
    for (const s of servers.filter((x) => HERALD.includes(x) || FLOORS.includes(x))) {
      const r50 = at50k(rows, s);
      const s2 = s2Of(rows, s);
      const s3 = measured(rows, 's3', s)[0];
      lines.push(`| ${FLOORS.includes(s) ? `${s} (reference)` : s} | ${sustainedCell(ratio(sustained(rows, s), bestSustained), ratio(sustainedThrough(rows, s), bestThrough))} | ${ratio(r50?.p99_ms, bestP99)} | ${ratio(r50?.server_cpu_us_per_delivery, bestCpu)} | ${ratio(s2?.p99_ms, bestS2)} | ${ratio(s3Own(s3), bestS3)} |${redisRead ? ` ${ratio(s3WithRedis(s3), bestS3Redis)} |` : ''}`);
    }
  }
  const gcRows = servers.map((s) => measured(rows, 's3', s)[0]).filter((r) => r?.bytes_per_connection_after_gc !== undefined);
  if (gcRows.length) {
    lines.push('');
    lines.push('s3 again after a full garbage collection (Node servers, the same sockets, read just after):');
    lines.push('');
    lines.push('| server | bytes/idle connection (above) | after a full collection (against the best peer) | of it live JS heap |');
    lines.push('|---|---|---|---|');
    const n = (v) => v.toLocaleString('en');
    // A server that is not a Node process (Webdis) has nothing to collect: its figure stands as read.
    const bestAfterGc = best((s) => {
      const r = measured(rows, 's3', s)[0];
      return r?.bytes_per_connection_after_gc ?? r?.bytes_per_connection;
    }, (a, b) => a < b);
    for (const r of gcRows) {
      const vs = bestAfterGc && !PEERS.includes(r.server) ? ` (${ratio(r.bytes_per_connection_after_gc, bestAfterGc)})` : '';
      lines.push(`| ${r.server} | ${n(r.bytes_per_connection)} | ${n(r.bytes_per_connection_after_gc)}${vs} | ${n(r.heap_bytes_per_connection_after_gc)} |`);
    }
  }
  const setupRows = servers.map((s) => measured(rows, 's3', s)[0]).filter((r) => r?.setup_cpu_us_per_connection !== undefined);
  if (setupRows.length) {
    // Against the best peer by the server's own CPU, and by the server's with its Redis's (Webdis
    // hands each socket's subscription to a Redis connection of its own, whose work is in Redis).
    const own = (r) => r?.setup_cpu_us_per_connection;
    const withRedis = (r) => r && r.setup_cpu_us_per_connection + (r.redis_setup_cpu_us_per_connection ?? 0);
    const bestOwn = best((s) => own(measured(rows, 's3', s)[0]), (a, b) => a < b);
    const bestWithRedis = best((s) => withRedis(measured(rows, 's3', s)[0]), (a, b) => a < b);
    lines.push('');
    lines.push("s3's setup, a connection storm (200 sockets connecting at a time, each subscribing once open): CPU per connection until all were subscribed:");
    lines.push('');
    lines.push("| server | the server's, µs/connection (against the best peer) | its Redis's | the server's with its Redis's (against the best peer) |");
    lines.push('|---|---|---|---|');
    for (const r of setupRows) {
      const vs = (v, b) => (b && !PEERS.includes(r.server) ? ` (${ratio(v, b)})` : '');
      const n = (v) => v.toLocaleString('en');
      lines.push(`| ${r.server} | ${n(own(r))}${vs(own(r), bestOwn)} | ${r.redis_setup_cpu_us_per_connection === undefined ? '–' : n(r.redis_setup_cpu_us_per_connection)} | ${n(withRedis(r))}${vs(withRedis(r), bestWithRedis)} |`);
    }
  }
  return lines;
}

/** Rewrites the headline of docs/performance.md (between the markers) from a run's rows. */
export function writeReport(rows, file) {
  const lines = reportLines(rows, file);
  const doc = readFileSync(DOC, 'utf8');
  const a = doc.indexOf(START);
  const b = doc.indexOf(END);
  if (a < 0 || b < 0) throw new Error(`docs/performance.md lacks the ${START} / ${END} markers`);
  writeFileSync(DOC, doc.slice(0, a + START.length) + '\n' + lines.join('\n') + '\n' + doc.slice(b));
}

// `node bench/report.mjs bench/results/<file>.jsonl` rebuilds the headline from a saved run;
// with `--print` it prints the tables instead, and docs/performance.md is left as it is.
if (process.argv[1] && process.argv[1].endsWith('report.mjs')) {
  let cli;
  try {
    cli = parseArgs({ options: { print: { type: 'boolean' } }, allowPositionals: true });
  } catch {}
  if (cli?.positionals.length !== 1) {
    console.error('usage: node bench/report.mjs [--print] bench/results/<file>.jsonl');
    process.exit(2);
  }
  const [file] = cli.positionals;
  const rows = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  if (cli.values.print) console.log(reportLines(rows, file).join('\n'));
  else writeReport(rows, file);
}
