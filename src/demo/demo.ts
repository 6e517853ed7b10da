// The demo "server-side jobs". They publish through Herald's HTTP API with HeraldApi, exactly as a
// user's backend would: a long job reporting progress (seed 000) and a dashboard value that changes
// at random intervals (seed 004).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { HeraldApi } from '../api/client.js';
import { readBody } from '../server/body.js';

/** Channel of the dashboard value. */
export const DASHBOARD_CHANNEL = 'dashboard:variable';
/** Namespace of job progress channels (`jobs:<id>`). */
export const JOBS_NAMESPACE = 'jobs';

/** The progress messages of the demo job (the seed's three, then the end). */
export const JOB_MESSAGES = [
  'You have started a server side function',
  'Function running, please wait......',
  'Function still running, almost done.......',
];

/** Most demo jobs running at once: a page (or anything else) posting jobs in a loop gets 429 past it. */
export const MAX_JOBS = 20;

/** The demo's background work and its one route, `POST /demo/jobs`. */
export class Demo {
  private dashboardTimer: NodeJS.Timeout | undefined;
  private variable = 0;
  private stopped = false;
  private readonly jobTimers = new Set<NodeJS.Timeout>();
  /** Jobs under way: at most MAX_JOBS (each publishes for a few seconds). */
  private running = 0;

  constructor(
    private readonly api: HeraldApi,
    private readonly options: { readonly stepDelayMs: number; readonly dashboardMaxIntervalMs: number },
    private readonly log: Logger,
  ) {}

  /** Starts the dashboard ticker. */
  start(): void {
    this.tick();
  }

  stop(): void {
    this.stopped = true;
    if (this.dashboardTimer) clearTimeout(this.dashboardTimer);
    for (const t of this.jobTimers) clearTimeout(t);
  }

  /** `POST /demo/jobs` with `{"job": "<id>"}`: runs a job publishing to `jobs:<id>`; answers 202 at once. */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'POST') {
      res.writeHead(405, { Allow: 'POST', 'Content-Type': 'text/plain' }).end('POST only\n');
      return;
    }
    const body = await readBody(req, 1024);
    if (!body) {
      res.writeHead(413, { 'Content-Type': 'text/plain', Connection: 'close' }).end('request body too large\n');
      return;
    }
    let job: unknown;
    try {
      job = (JSON.parse(body.toString('utf8')) as { job?: unknown }).job;
    } catch {
      job = undefined;
    }
    if (typeof job !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(job)) {
      res.writeHead(400, { 'Content-Type': 'text/plain' }).end('expected {"job": "<1-64 letters, digits, - or _>"}\n');
      return;
    }
    if (this.running >= MAX_JOBS) {
      res.writeHead(429, { 'Content-Type': 'text/plain', 'Retry-After': '5' }).end(`${MAX_JOBS} demo jobs are running: try again when one is done\n`);
      return;
    }
    const channel = `${JOBS_NAMESPACE}:${job}`;
    res.writeHead(202, { 'Content-Type': 'application/json' }).end(JSON.stringify({ channel }));
    this.runJob(channel);
  }

  private runJob(channel: string): void {
    const steps = [...JOB_MESSAGES.map((text) => ({ text, done: false })), { text: 'done', done: true }];
    let i = 0;
    this.running++;
    const next = () => {
      if (this.stopped || i >= steps.length) {
        this.running--;
        return;
      }
      const step = steps[i++]!;
      const timer = setTimeout(() => {
        this.jobTimers.delete(timer);
        this.api
          .publish(channel, { step: i, of: steps.length, text: step.text, done: step.done })
          .catch((err) => this.log.warn({ err, channel }, 'demo job publish failed'))
          .finally(next);
      }, this.options.stepDelayMs);
      this.jobTimers.add(timer);
    };
    next();
  }

  private tick(): void {
    if (this.stopped) return;
    this.dashboardTimer = setTimeout(() => {
      this.variable += Math.floor(Math.random() * 10) + 1;
      this.api
        .publish(DASHBOARD_CHANNEL, { variable: this.variable, at: new Date().toISOString() })
        .catch((err) => this.log.warn({ err }, 'demo dashboard publish failed'))
        .finally(() => this.tick());
    }, Math.random() * this.options.dashboardMaxIntervalMs);
  }
}
