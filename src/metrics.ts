// Prometheus metrics of one node (prom-client), served at `metrics.path` when `metrics.enabled`.
// Hot-path numbers are plain counters on the hub, read only when Prometheus scrapes.
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import { deltaCounts } from './dialects/native/delta.js';
import type { Hub } from './hub/hub.js';

/** What the metrics read. */
export interface MetricsSources {
  readonly hub: Hub;
  readonly connections: () => number;
  readonly users: () => number;
  /** Connections refused since start, by dialect, then by the limit that refused them. */
  readonly refused: () => Readonly<Record<string, Readonly<Record<string, number>>>>;
  /** Native subscriptions told to resubscribe since start, by why. */
  readonly resyncs: Readonly<Record<string, number>>;
}

/** A node's metrics registry and the counters other parts increment. */
export class NodeMetrics {
  readonly registry = new Registry();
  /** Server API calls by method and outcome. */
  readonly apiCalls: Counter<'method' | 'result'>;

  constructor(sources: MetricsSources) {
    const r = this.registry;
    collectDefaultMetrics({ register: r, prefix: 'herald_' });
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({ name, help, registers: [r], collect() { this.set(read()); } });
    gauge('herald_connections', 'Client connections on this node.', sources.connections);
    gauge('herald_users', 'Distinct users connected to this node.', sources.users);
    gauge('herald_channels', 'Channels with at least one subscriber on this node.', () => sources.hub.channelCount());
    gauge('herald_subscriptions', 'Channel subscriptions on this node.', () => sources.hub.subscriptionCount());
    // Counters kept by the hub, read as counters (Prometheus then handles a restart as a reset).
    const counter = (name: string, help: string, read: () => number) =>
      new Counter({
        name,
        help,
        registers: [r],
        collect() {
          this.reset();
          this.inc(read());
        },
      });
    counter('herald_hub_publications_total', 'Publications fanned out to local subscribers since start.', () => sources.hub.publications);
    counter('herald_hub_deliveries_total', 'Publications handed to local subscribers since start (one per subscriber).', () => sources.hub.deliveries);
    // Counted by the process (the delta caches are shared by every node it runs): one node in production.
    counter('herald_delta_diffs_total', 'Fossil deltas computed by this process since start (each shared by the subscriptions holding the same base).', () => deltaCounts.diffs);
    new Counter({
      name: 'herald_connections_refused_total',
      help: 'Connections refused by a limit (connection_limit, connection_rate_limit, and the native user_connection_limit), by dialect.',
      labelNames: ['dialect', 'limit'],
      registers: [r],
      collect() {
        this.reset();
        for (const [dialect, counts] of Object.entries(sources.refused())) {
          for (const [limit, n] of Object.entries(counts)) this.inc({ dialect, limit }, n);
        }
      },
    });
    new Counter({
      name: 'herald_insufficient_state_total',
      help:
        'Subscriptions told to resubscribe and recover (unsubscribe 2500; server-side ones: close 3010), by why: a gap or another epoch in the stream, ' +
        'the position check, channel_position_max_time_lag, or the engine losing its delivery path.',
      labelNames: ['reason'],
      registers: [r],
      collect() {
        this.reset();
        for (const [reason, n] of Object.entries(sources.resyncs)) this.inc({ reason }, n);
      },
    });
    this.apiCalls = new Counter({ name: 'herald_api_calls_total', help: 'Server API calls.', labelNames: ['method', 'result'], registers: [r] });
  }
}
