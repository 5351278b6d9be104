// The cluster bench's load: clients spread round-robin over the nodes, in 1:1 pairs (random,
// the same for every setup; or both partners on one node; or on two different nodes), sending
// at a fixed aggregate rate. Measures the messages sent in the window after the warm-up: ack
// latency (send -> relay ok), delivery latency (send -> arrival at the partner), and the
// throughput actually delivered.
import { connectClient, type TestClient } from '../support/relay.ts';
import { seededRandom } from '../support/random.ts';

export interface LoadOptions {
  clients: number;
  /** Messages per second, all clients together. */
  rate: number;
  seconds: number;
  warmupSeconds: number;
  bodyBytes: number;
  /**
   * Who sends to whom. "random" (default): random pairs, so with n nodes about (n-1)/n of the
   * messages cross nodes. "local": both partners on the same node, so nothing crosses.
   * "cross": partners on different nodes, so every message crosses (needs two nodes or more).
   */
  pairs?: Pairs;
}

export type Pairs = 'random' | 'local' | 'cross';

export interface LoadResult {
  sent: number;
  delivered: number;
  /** Messages delivered between measureStart and the end (the CPU interval). */
  deliveredInInterval: number;
  lost: number;
  /** Measured messages delivered per second, up to the last one's arrival. */
  throughput: number;
  ackP50: number;
  ackP99: number;
  deliveryP50: number;
  deliveryP99: number;
}

interface Sent {
  at: number;
  ack?: number;
  delivered?: number;
  measured: boolean;
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Partners by client index; client k is connected to node k % nodes. A client left without a partner sends nothing. */
export function pairUp(clients: number, nodes: number, pairs: Pairs): Map<number, number> {
  if (pairs === 'cross' && nodes < 2) throw new Error('pairs across nodes need two nodes or more');
  const order = Array.from({ length: clients }, (_, i) => i);
  if (pairs === 'random') {
    const rand = seededRandom(12345);
    for (let i = order.length - 1; i > 0; i -= 1) {
      const j = Math.floor(rand() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
  } else if (pairs === 'local') {
    // Node by node: neighbours in this order share a node.
    order.sort((a, b) => (a % nodes) - (b % nodes) || a - b);
  }
  // "cross": neighbours k and k+1 are on nodes k % n and (k+1) % n, never the same.
  const partner = new Map<number, number>();
  for (let i = 0; i + 1 < order.length; i += 2) {
    const [a, b] = [order[i]!, order[i + 1]!];
    if (pairs === 'local' && a % nodes !== b % nodes) continue;
    partner.set(a, b);
    partner.set(b, a);
  }
  return partner;
}

export async function runLoad(urls: string[], o: LoadOptions, hooks: { connected?(): Promise<void>; measureStart(): Promise<void>; measureEnd(): Promise<void> }): Promise<LoadResult> {
  const records = new Map<string, Sent>();
  let delivered = 0;
  let counting = false;
  let deliveredInInterval = 0;
  const onDeliver = (batch: { kind: string; id?: string }[]) => {
    const t = performance.now();
    for (const e of batch) {
      const record = e.kind === 'message' && e.id ? records.get(e.id) : undefined;
      if (!record || record.delivered !== undefined) continue;
      record.delivered = t;
      delivered += 1;
      if (counting) deliveredInInterval += 1;
    }
    return { ok: true as const };
  };

  const clients: TestClient[] = [];
  for (let i = 0; i < o.clients; i += 20) {
    const group = Array.from({ length: Math.min(20, o.clients - i) }, (_, j) => connectClient(urls[(i + j) % urls.length]!, { name: `bench ${i + j}`, onDeliver }));
    clients.push(...(await Promise.all(group)));
  }
  const partner = pairUp(clients.length, urls.length, o.pairs ?? 'random');

  // Every client connected and quiet: the caller may measure what the relays cost idle.
  await hooks.connected?.();
  const body = 'x'.repeat(o.bodyBytes);
  const started = performance.now();
  const windowStart = o.warmupSeconds * 1000;
  const windowEnd = windowStart + o.seconds * 1000;
  let count = 0;
  let measureStarted: Promise<void> | null = null;
  for (;;) {
    const elapsed = performance.now() - started;
    if (elapsed >= windowEnd) break;
    if (elapsed >= windowStart && !measureStarted) {
      measureStarted = hooks.measureStart().then(() => {
        counting = true;
      });
    }
    const due = Math.floor((o.rate * elapsed) / 1000);
    while (count < due) {
      const from = count % clients.length;
      const to = partner.get(from);
      const client = clients[from]!;
      count += 1;
      if (to === undefined) continue;
      const id = `b${count.toString(36)}x${from.toString(36)}`.padEnd(8, '0');
      const record: Sent = { at: performance.now(), measured: elapsed >= windowStart };
      records.set(id, record);
      void client.send(clients[to]!.id, body, id).then(
        (answer) => {
          if (answer.ok) record.ack = performance.now();
        },
        () => undefined,
      );
    }
    await pause(5);
  }
  await measureStarted;
  const measured = [...records.values()].filter((r) => r.measured);
  const drainBy = performance.now() + 15_000;
  while (measured.some((r) => r.delivered === undefined) && performance.now() < drainBy) await pause(20);
  counting = false;
  await hooks.measureEnd();
  for (const c of clients) c.close();

  const arrived = measured.filter((r) => r.delivered !== undefined);
  const lastArrival = Math.max(...arrived.map((r) => r.delivered ?? 0)) - started - windowStart;
  return {
    sent: measured.length,
    delivered,
    deliveredInInterval,
    lost: measured.length - arrived.length,
    throughput: arrived.length / (Math.max(lastArrival, o.seconds * 1000) / 1000),
    ackP50: percentile(measured.flatMap((r) => (r.ack === undefined ? [] : [r.ack - r.at])), 50),
    ackP99: percentile(measured.flatMap((r) => (r.ack === undefined ? [] : [r.ack - r.at])), 99),
    deliveryP50: percentile(arrived.map((r) => (r.delivered ?? 0) - r.at), 50),
    deliveryP99: percentile(arrived.map((r) => (r.delivered ?? 0) - r.at), 99),
  };
}
