// Test support: the steady load of D1 (RELIABILITY.md), shared by the tests that run it
// against different relays (D1 steady, D3 durable). Clients in random 1:1 pairs send 200-byte
// bodies at a fixed aggregate rate for a fixed time through one relay over SQLite; then every
// outbox drains and every message arrives. Callers assert on what it leaves: the clients
// (for the total-queue check), `sent`, and the relay.
import { eventually, startRelay, type TestRelay } from './relay.ts';
import { FailoverClient } from './failover.ts';

export interface SteadyOptions {
  clients: number;
  /** Messages a second, across all clients. */
  rate: number;
  seconds: number;
  /** For the relay; the per-address connection cap is opened up for the clients by default. */
  relay?: Parameters<typeof startRelay>[0];
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class SteadyLoad {
  readonly options: SteadyOptions;
  relay: TestRelay | undefined;
  readonly people: FailoverClient[] = [];
  /** Messages handed to the clients' outboxes. */
  sent = 0;

  constructor(options: SteadyOptions) {
    this.options = options;
  }

  /** Starts the relay (no clients yet). */
  async start(): Promise<TestRelay> {
    // Every client comes from 127.0.0.1: the per-address cap is opened up, nothing else.
    this.relay = await startRelay({ maxConnectionsPerAddress: this.options.clients + 10, ...this.options.relay });
    return this.relay;
  }

  /** Connects every client, 20 at a time, to the relay start() began (or another one's `url`). */
  async connect(url = this.relay?.url): Promise<void> {
    if (!url) throw new Error('start() the relay first, or give its url');
    const count = this.options.clients;
    this.people.push(...Array.from({ length: count }, (_, i) => new FailoverClient([url], { name: `p${i}` })));
    for (let i = 0; i < count; i += 20) await Promise.all(this.people.slice(i, i + 20).map((p) => p.connect()));
  }

  /** Sends at the rate for the time, then waits until every outbox drained and every message arrived. */
  async run(): Promise<void> {
    const { clients, rate, seconds } = this.options;
    // Random 1:1 pairs.
    const order = this.people.map((p, i) => ({ p, key: Math.sin(i * 12.9898) })).sort((a, b) => a.key - b.key).map((x) => x.p);
    const pairs = Array.from({ length: clients / 2 }, (_, i) => [order[2 * i]!, order[2 * i + 1]!] as const);
    const body = 'b'.repeat(200);
    const started = Date.now();
    for (;;) {
      const elapsed = Math.min(Date.now() - started, seconds * 1000);
      const due = Math.floor((elapsed * rate) / 1000);
      for (; this.sent < due; this.sent += 1) {
        const [a, b] = pairs[this.sent % pairs.length]!;
        const [from, to] = Math.floor(this.sent / pairs.length) % 2 === 0 ? [a, b] : [b, a];
        from.send(to.id, `${this.sent} ${body}`);
      }
      if (elapsed >= seconds * 1000) break;
      await pause(10);
    }
    await eventually(() => this.people.every((p) => p.pending === 0), 'every outbox to drain', 30_000);
    await eventually(() => this.people.reduce((n, p) => n + p.history.length, 0) >= this.sent, 'every message to arrive', 30_000);
  }

  /** Error codes the relay answered with (E_…): refusals. Answer timeouts are retried, not counted here. */
  refusals(): string[] {
    return this.people.flatMap((p) => [...p.errors.keys()]).filter((k) => k.startsWith('E_'));
  }

  /** The relay's answer times to ok'd sends, from every client, in ms, sorted. */
  ackTimes(): number[] {
    return this.people.flatMap((p) => p.ackMs).sort((a, b) => a - b);
  }

  /** Each message's time from its sender queueing it to its first arrival, in ms, sorted. */
  deliveryTimes(): number[] {
    return this.people.flatMap((p) => p.deliveryMs).sort((a, b) => a - b);
  }

  async close(): Promise<void> {
    for (const p of this.people.splice(0)) p.close();
    await this.relay?.stop();
    this.relay = undefined;
  }
}

/** The q-quantile (0..1) of sorted values; NaN when there are none. */
export const quantile = (sorted: readonly number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
