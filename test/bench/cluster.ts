// Cluster bench: the same load against one relay over SQLite, one node over Redis, and two
// and three Redis nodes, in one run. Prints throughput, ack and delivery latency (p50/p99),
// relay CPU per delivered message (process.cpuUsage of the relay processes / deliveries),
// Redis's own CPU, and the ratios to the single SQLite relay.
//
// CPU per message depends on how much load a process carries (a busier event loop handles
// more messages per wake-up and per write), so the same total load over n nodes costs more
// per message even where nothing crosses nodes. What Redis routing adds is therefore also
// measured apart from that: n nodes against one SQLite node carrying 1/n of the load (the
// same load per process), and the same two nodes with every pair within a node against every
// pair across nodes (the same processes and load; only the routing differs).
//
//   node --experimental-strip-types --disable-warning=ExperimentalWarning test/bench/cluster.ts [--clients 200] [--rate 1500] [--seconds 8] [--rounds 3]
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { tempDir } from '../support/relay.ts';
import { startRedis, type TestRedis } from '../cluster/support/redis.ts';
import { RELAY_V8_FLAGS } from './procs.ts';
import { table } from './stats.ts';
import { runLoad, type LoadOptions, type LoadResult, type Pairs } from './cluster-load.ts';

export interface ClusterBenchOptions extends LoadOptions {
  /** Which setups to run. */
  setups: Setup[];
  /**
   * Each setup runs this many times, the order rotating each round, and the median run (by
   * CPU per delivered message) is reported: other work on a shared machine disturbs less.
   */
  rounds: number;
}
export interface Setup {
  name: string;
  store: 'sqlite' | 'redis';
  nodes: number;
  /** Who sends to whom (cluster-load.ts); default random pairs. */
  pairs?: Pairs;
  /** The share of the offered rate this setup gets; default 1. */
  rateShare?: number;
}
export interface SetupResult extends LoadResult {
  setup: Setup;
  /** CPU per delivered message of every round, µs, in round order. */
  cpuRounds: number[];
  /** Relay processes' CPU (user + system) over the measured interval, ms. */
  relayCpuMs: number;
  cpuPerDeliveredUs: number;
  /**
   * The same, less what the relay processes spend idle (heartbeats, timers, the adapter's
   * stream reads) over as long, measured with every client connected and quiet just before:
   * what a delivered message itself costs, which is what routing through Redis adds to.
   */
  netCpuPerDeliveredUs: number;
  netRounds: number[];
  /** Relay processes' CPU per second while idle, ms. */
  idleCpuMsPerSecond: number;
  /** redis-server's CPU over the same interval, ms (not counted in cpuPerDeliveredUs). */
  redisCpuMs: number;
}

const SQLITE = '1 node, SQLite';
const TWO = '2 nodes, Redis';
const THREE = '3 nodes, Redis';
const HALF = '1 node, SQLite, 1/2 the rate';
const THIRD = '1 node, SQLite, 1/3 the rate';
const WITHIN = '2 nodes, Redis, every pair within a node';
const ACROSS = '2 nodes, Redis, every pair across nodes';

// Compared setups run next to each other (roundOrder() keeps neighbours together): this
// machine's speed drifts by tens of per cent over minutes, less over seconds.
export const DEFAULT_SETUPS: Setup[] = [
  { name: SQLITE, store: 'sqlite', nodes: 1 },
  { name: '1 node, Redis', store: 'redis', nodes: 1 },
  { name: HALF, store: 'sqlite', nodes: 1, rateShare: 1 / 2 },
  { name: TWO, store: 'redis', nodes: 2 },
  { name: THIRD, store: 'sqlite', nodes: 1, rateShare: 1 / 3 },
  { name: THREE, store: 'redis', nodes: 3 },
  { name: WITHIN, store: 'redis', nodes: 2, pairs: 'local' },
  { name: ACROSS, store: 'redis', nodes: 2, pairs: 'cross' },
];

/** The comparisons printed under the table (when both setups ran); `target`: judged against the issue's +30 %. */
const COMPARISONS: { subject: string; reference: string; what: string; target?: true }[] = [
  { subject: TWO, reference: HALF, what: 'a node of two against one node with the same load per process (Redis routing and store, cores aside)', target: true },
  { subject: THREE, reference: THIRD, what: 'a node of three against one node with the same load per process', target: true },
  { subject: ACROSS, reference: WITHIN, what: 'routing alone: the same two nodes and load, every message between nodes against none' },
  { subject: '1 node, Redis', reference: SQLITE, what: 'the store in Redis instead of SQLite, one node' },
  { subject: TWO, reference: SQLITE, what: 'the same total load over two nodes (each process carries half)' },
  { subject: THREE, reference: SQLITE, what: 'the same total load over three nodes (each process carries a third)' },
  { subject: HALF, reference: SQLITE, what: 'one node at half the rate: what carrying less load costs a process by itself' },
];

const Cpu = z.object({ cpu: z.object({ user: z.number(), system: z.number() }) });

interface NodeProc {
  url: string;
  cpuMs(): Promise<number>;
  stop(): Promise<void>;
}

function ask(child: ChildProcess, cmd: 'cpu' | 'stop'): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`relay node did not answer ${cmd}`)), 30_000);
    child.once('message', (answer) => {
      clearTimeout(timer);
      resolve(answer);
    });
    child.send({ cmd });
  });
}

async function startNodeProc(env: Record<string, string>): Promise<NodeProc> {
  const child = fork(join(import.meta.dirname, 'cluster-node.ts'), [], {
    // BENCH_PROFILE_DIR=<dir>: each node writes a V8 CPU profile there (summarise with profile-summary.ts).
    execArgv: ['--experimental-strip-types', '--disable-warning=ExperimentalWarning', ...RELAY_V8_FLAGS, ...(process.env.BENCH_PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}`] : [])],
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /READY (\d+)/.exec(out);
      if (match) resolve(Number(match[1]));
    });
    child.once('exit', (code) => reject(new Error(`relay node exited with ${code}`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    async cpuMs() {
      const { cpu } = Cpu.parse(await ask(child, 'cpu'));
      return (cpu.user + cpu.system) / 1000;
    },
    async stop() {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      await ask(child, 'stop');
      await exited;
    },
  };
}

/** CPU time of another process from /proc (Linux), ms; 0 where it cannot be read. */
function procCpuMs(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime + stime, in 100 Hz ticks
  } catch {
    return 0;
  }
}

async function runSetup(setup: Setup, redis: TestRedis, options: LoadOptions, index: number): Promise<SetupResult> {
  const dir = tempDir('parley-cluster-bench-');
  const env = { BENCH_STORE: setup.store, BENCH_DIR: dir.path, BENCH_REDIS_URL: redis.url, BENCH_PREFIX: `bench${index}:` };
  const nodes: NodeProc[] = [];
  try {
    for (let i = 0; i < setup.nodes; i += 1) nodes.push(await startNodeProc(env));
    const cpu = async () => (await Promise.all(nodes.map((n) => n.cpuMs()))).reduce((a, b) => a + b, 0);
    let before = { relay: 0, redis: 0, at: 0 };
    let after = before;
    let idleCpuMsPerSecond = 0;
    const load = await runLoad(nodes.map((n) => n.url), { ...options, rate: options.rate * (setup.rateShare ?? 1), ...(setup.pairs ? { pairs: setup.pairs } : {}) }, {
      connected: async () => {
        const start = { cpu: await cpu(), at: performance.now() };
        await new Promise((resolve) => setTimeout(resolve, IDLE_MS));
        idleCpuMsPerSecond = ((await cpu()) - start.cpu) / ((performance.now() - start.at) / 1000);
      },
      measureStart: async () => {
        before = { relay: await cpu(), redis: procCpuMs(redis.pid()), at: performance.now() };
      },
      // Before the clients leave: the interval is the load and its drain, nothing else.
      measureEnd: async () => {
        after = { relay: await cpu(), redis: procCpuMs(redis.pid()), at: performance.now() };
      },
    });
    const relayCpuMs = after.relay - before.relay;
    const redisCpuMs = after.redis - before.redis;
    const idleMs = (idleCpuMsPerSecond * (after.at - before.at)) / 1000;
    const cpuPerDeliveredUs = load.deliveredInInterval > 0 ? (relayCpuMs * 1000) / load.deliveredInInterval : NaN;
    const netCpuPerDeliveredUs = load.deliveredInInterval > 0 ? ((relayCpuMs - idleMs) * 1000) / load.deliveredInInterval : NaN;
    return { ...load, setup, relayCpuMs, redisCpuMs, cpuPerDeliveredUs, cpuRounds: [cpuPerDeliveredUs], netCpuPerDeliveredUs, netRounds: [netCpuPerDeliveredUs], idleCpuMsPerSecond };
  } finally {
    for (const n of nodes) await n.stop().catch(() => undefined);
    dir.remove();
  }
}

/**
 * The order of the setups in a round: neighbours (0 and 1, 2 and 3, ...) stay together, the
 * pairs rotate from round to round, and every other round each pair runs the other way round,
 * so that neither of two compared setups always runs first.
 */
export function roundOrder(count: number, round: number): number[] {
  const pairs: number[][] = [];
  for (let i = 0; i < count; i += 2) pairs.push(i + 1 < count ? [i, i + 1] : [i]);
  const shift = round % pairs.length;
  return [...pairs.slice(shift), ...pairs.slice(0, shift)].flatMap((pair) => (round % 2 === 1 ? pair.reverse() : pair));
}

export async function runClusterBench(partial: Partial<ClusterBenchOptions> = {}): Promise<SetupResult[]> {
  const options: ClusterBenchOptions = { clients: 200, rate: 1500, seconds: 8, warmupSeconds: 2, bodyBytes: 200, setups: DEFAULT_SETUPS, rounds: 3, ...partial };
  const redis = await startRedis({ appendfsync: 'everysec' });
  try {
    const runs = options.setups.map((): SetupResult[] => []);
    let n = 0;
    for (let round = 0; round < options.rounds; round += 1) {
      for (const i of roundOrder(options.setups.length, round)) runs[i]!.push(await runSetup(options.setups[i]!, redis, options, n++));
    }
    return runs.map((list) => {
      // The median round by the figure the target is judged on.
      const sorted = [...list].sort((a, b) => a.netCpuPerDeliveredUs - b.netCpuPerDeliveredUs);
      const median = sorted[Math.floor((sorted.length - 1) / 2)]!;
      return { ...median, cpuRounds: list.map((r) => r.cpuPerDeliveredUs), netRounds: list.map((r) => r.netCpuPerDeliveredUs) };
    });
  } finally {
    await redis.remove();
  }
}

/** How long the relays are watched idle, with every client connected, before the load. */
const IDLE_MS = 2_000;

const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : '-');
/** A ratio as a signed percentage: 1.3 -> "+30%". */
const signed = (ratio: number) => (Number.isFinite(ratio) ? `${ratio >= 1 ? '+' : ''}${fmt((ratio - 1) * 100, 0)}%` : '-');

/**
 * The median of the per-round ratios of two setups' figures. A round runs compared setups
 * next to each other (roundOrder()), so their ratio drifts less than either figure does.
 */
function pairedMedian(subject: number[], reference: number[]): { ratio: number; paired: number[] } {
  const paired = subject.map((c, i) => c / (reference[i] ?? NaN)).sort((x, y) => x - y);
  return { ratio: paired[Math.floor((paired.length - 1) / 2)] ?? NaN, paired };
}

export function formatResults(results: SetupResult[], options: LoadOptions): string {
  const base = results[0];
  const lines = [
    `Cluster bench: ${options.clients} clients in 1:1 pairs (random unless the setup says), ${options.rate} msg/s offered (unless the setup says less) for ${options.seconds} s (after ${options.warmupSeconds} s warm-up), ${options.bodyBytes}-byte bodies; Redis appendfsync everysec.`,
    'Each row is the median of its rounds by CPU per delivered message; "all rounds" lists every round.',
    '',
    'Relay CPU per delivered message is given gross (all the relay processes spent over the interval) and net of what they spend idle over as long',
    '(measured just before, every client connected): the net figure is what a delivered message itself costs.',
    '',
  ];
  const rounds = (list: number[]) => list.map((c) => fmt(c, 0)).join(', ');
  const rows = results.map((r) => [
    r.setup.name,
    fmt(r.throughput),
    `${fmt(r.ackP50)} / ${fmt(r.ackP99)}`,
    `${fmt(r.deliveryP50)} / ${fmt(r.deliveryP99)}`,
    String(r.lost),
    fmt(r.relayCpuMs, 0),
    fmt(r.idleCpuMsPerSecond, 0),
    `${fmt(r.cpuPerDeliveredUs, 0)} (${rounds(r.cpuRounds)})`,
    `${fmt(r.netCpuPerDeliveredUs, 0)} (${rounds(r.netRounds)})`,
    fmt(r.redisCpuMs, 0),
    base ? `${fmt(r.throughput / base.throughput, 2)}, ${fmt(r.deliveryP99 / base.deliveryP99, 2)}, ${fmt(r.netCpuPerDeliveredUs / base.netCpuPerDeliveredUs, 2)}` : '-',
  ]);
  lines.push(
    table(
      ['setup', 'delivered/s', 'ack p50 / p99 ms', 'delivery p50 / p99 ms', 'lost', 'relay CPU ms', 'idle CPU ms/s', 'CPU µs / delivered, gross (all rounds)', 'net of idle (all rounds)', 'redis CPU ms', 'ratios vs first: throughput, delivery p99, net CPU/msg'],
      rows,
    ),
  );
  const named = new Map(results.map((r) => [r.setup.name, r]));
  const compared = COMPARISONS.flatMap((c) => {
    const [r, base] = [named.get(c.subject), named.get(c.reference)];
    return r && base ? [{ ...c, r, base }] : [];
  });
  if (compared.length > 0) lines.push('', 'Relay CPU per delivered message, net of idle (median of the per-round ratios):');
  for (const { r, base, what, target } of compared) {
    const net = pairedMedian(r.netRounds, base.netRounds);
    const gross = pairedMedian(r.cpuRounds, base.cpuRounds);
    const withRedis = (r.relayCpuMs + r.redisCpuMs) / r.deliveredInInterval / ((base.relayCpuMs + base.redisCpuMs) / base.deliveredInInterval);
    const verdict = target ? `; target ≤ +30%: ${net.ratio <= 1.3 ? 'met' : 'NOT met'}` : '';
    lines.push(
      `- ${r.setup.name} against ${base.setup.name}, ${what}: ${signed(net.ratio)} (per round ${net.paired.map((x) => fmt(x, 2)).join(', ')}${verdict}); ` +
        `gross, idle processes included: ${signed(gross.ratio)}; gross with redis-server's CPU too: ${signed(withRedis)}.`,
    );
  }
  return lines.join('\n');
}

if (import.meta.filename === process.argv[1]) {
  const { values } = parseArgs({ options: { clients: { type: 'string' }, rate: { type: 'string' }, seconds: { type: 'string' }, warmup: { type: 'string' }, rounds: { type: 'string' } } });
  const Args = z.object({
    clients: z.coerce.number().int().min(2).max(2000).default(200),
    rate: z.coerce.number().min(1).default(1500),
    seconds: z.coerce.number().min(1).default(8),
    warmup: z.coerce.number().min(0).default(2),
    rounds: z.coerce.number().int().min(1).max(20).default(3),
  });
  const args = Args.parse(values);
  const options = { clients: args.clients, rate: args.rate, seconds: args.seconds, warmupSeconds: args.warmup, bodyBytes: 200, rounds: args.rounds };
  const results = await runClusterBench(options);
  process.stdout.write(`${formatResults(results, options)}\n`);
}
