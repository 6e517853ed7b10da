// The `herald` command: flags -> config -> a running node, stopped cleanly on SIGINT/SIGTERM.
import { parseArgs } from 'node:util';
import { createHerald } from './herald.js';
import { envName, loadConfig, parseScalar, stringKeyPaths } from './config/load.js';
import { listeningUrl } from './server/listen.js';
import { VERSION } from './version.js';

const HELP = `herald ${VERSION}: real-time push gateway

Usage: herald [options]

Options:
  -c, --config FILE      JSON config file (see docs/configuration.md)
  -p, --port N           port to listen on (default 8000)
      --address ADDR     address to bind (default 0.0.0.0)
      --api-key KEY      server API key (http_api.key)
      --log-level LEVEL  fatal|error|warn|info|debug|trace|silent
      --demo             serve the demo pages and run the demo jobs
      --set KEY=VALUE    set any config key by dotted path, e.g. --set client.ping_interval=10s
  -h, --help             show this help
  -v, --version          print the version

Every key can also be set by environment variable: ${envName('client.token.hmac_secret_key')} sets
client.token.hmac_secret_key. Precedence: defaults < file < environment < flags.
`;

/** Runs the CLI with the given arguments (without node and script). */
export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string', short: 'c' },
      port: { type: 'string', short: 'p' },
      address: { type: 'string' },
      'api-key': { type: 'string' },
      'log-level': { type: 'string' },
      demo: { type: 'boolean' },
      set: { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  if (values.version) {
    process.stdout.write(`${VERSION}\n`);
    return;
  }
  const overrides: Record<string, unknown> = {};
  if (values.port !== undefined) overrides.port = parseScalar(values.port);
  if (values.address !== undefined) overrides.address = values.address;
  if (values['api-key'] !== undefined) overrides['http_api.key'] = values['api-key'];
  if (values['log-level'] !== undefined) overrides.log_level = values['log-level'];
  if (values.demo) overrides['demo.enabled'] = true;
  const textKeys = stringKeyPaths();
  for (const pair of values.set ?? []) {
    const i = pair.indexOf('=');
    if (i <= 0) throw new Error(`--set expects KEY=VALUE, got "${pair}"`);
    const key = pair.slice(0, i);
    overrides[key] = textKeys.has(key) ? pair.slice(i + 1) : parseScalar(pair.slice(i + 1));
  }
  const config = loadConfig({ file: values.config, env: process.env, overrides });
  const herald = createHerald({ config });
  const started = herald.start();
  // Signals are handled from the start: one during startup (which may wait for Redis) stops the
  // node as soon as it has started.
  let stopping = false;
  // Exit 1 always says why on stderr: a second signal, the shutdown timeout, or a failed close.
  const stop = (signal: string) => {
    if (stopping) {
      process.stderr.write(`herald: ${signal} again, exiting now (exit 1)\n`);
      process.exit(1);
    }
    stopping = true;
    process.stderr.write(`herald: ${signal}, shutting down\n`);
    const timer = setTimeout(() => {
      process.stderr.write(`herald: not stopped within shutdown_timeout (${config.shutdown_timeout} ms), exiting now (exit 1)\n`);
      process.exit(1);
    }, config.shutdown_timeout);
    timer.unref();
    started
      .catch(() => undefined)
      .then(() => herald.close())
      .then(
        () => process.exit(0),
        (err: unknown) => {
          process.stderr.write(`herald: shutdown failed: ${(err as Error)?.message ?? String(err)} (exit 1)\n`);
          process.exit(1);
        },
      );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  await started;
  if (stopping) return;
  const url = listeningUrl(config.address, herald.port);
  process.stderr.write(`herald ${VERSION} listening on ${url}` + (config.demo.enabled ? ` (demo pages at ${url}/)` : '') + '\n');
}

