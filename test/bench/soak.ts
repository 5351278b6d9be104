// RELIABILITY.md's fixed-load runs, not part of `npm test`: `npm run bench:soak -- --profile d1`.
// The steady load of test/support/steady.ts (random 1:1 pairs, 200-byte bodies, app-like
// clients with outboxes) against a Parley relay process of its own (test/bench/procs.ts):
//   d1  D1 steady:  200 clients,   500 msg/s in all, 1 min
//   d2  D2 stretch: 1,000 clients, 1,000 msg/s,      2 min
//   d3  D3 durable: 200 clients,   500 msg/s,         1 min, every commit synced to disk
//                   (synchronous=FULL) before its senders are answered
//   d6  D6 soak:    50 clients,    50 msg/s,         30 min (nightly; the default)
// Every minute, and at the end, it prints the relay's RSS (after a full GC) with its slope, and
// its JS heap in use with that one's slope (a slope of RSS alone would not say whether the
// relay's own objects grow) and V8's young generation (which grows in steps up to its cap),
// the size of its WAL file, its open file descriptors, and the total-queue counts; at the end
// also the relay's answer and delivery latencies, its peak RSS and event-loop lag. The end line says
// PASS or FAIL against the profile's targets (RELIABILITY.md D1, D2, D3, D6).
import { readdirSync, readlinkSync, statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { cleanUp, rssOf, startRelay, type RelayProc } from './procs.ts';
import { quantile, SteadyLoad } from '../support/steady.ts';
import { totalQueue } from '../support/check.ts';

interface Targets {
  ackP50Ms?: number;
  ackP99Ms?: number;
  deliveryP99Ms?: number;
  peakRssMb?: number;
  lagP99Ms?: number;
  slopeMbPerMin?: number;
  walMb?: number;
  constantFds?: boolean;
}
interface Profile {
  name: string;
  clients: number;
  rate: number;
  minutes: number;
  targets: Targets;
  /** The relay's store syncs every commit to disk and answers after it (D3). */
  durable?: boolean;
}

const LATENCY: Targets = { ackP50Ms: 5, ackP99Ms: 50, deliveryP99Ms: 100, peakRssMb: 200, lagP99Ms: 20 };
export const PROFILES = {
  d1: { name: 'D1 steady', clients: 200, rate: 500, minutes: 1, targets: LATENCY },
  // D2 names only the invariants and the answer time; the rest is printed.
  d2: { name: 'D2 stretch', clients: 1_000, rate: 1_000, minutes: 2, targets: { ackP99Ms: 100 } },
  // D3 names the invariants and the answer time: every message is committed (synchronous=FULL,
  // in groups) before its sender is answered, none kept in memory for a connected recipient.
  d3: { name: 'D3 durable', clients: 200, rate: 500, minutes: 1, targets: { ackP99Ms: 150 }, durable: true },
  d6: { name: 'D6 soak', clients: 50, rate: 50, minutes: 30, targets: { slopeMbPerMin: 1, walMb: 64, constantFds: true } },
} as const satisfies Record<string, Profile>;
type ProfileKey = keyof typeof PROFILES;
const SAMPLE_MS = 10_000;

export const HELP = `npm run bench:soak [-- options]   RELIABILITY.md's fixed loads against a relay process
  --profile <p>   d1: ${PROFILES.d1.clients} clients, ${PROFILES.d1.rate} msg/s, ${PROFILES.d1.minutes} min (D1 steady)
                  d2: ${PROFILES.d2.clients} clients, ${PROFILES.d2.rate} msg/s, ${PROFILES.d2.minutes} min (D2 stretch)
                  d3: ${PROFILES.d3.clients} clients, ${PROFILES.d3.rate} msg/s, ${PROFILES.d3.minutes} min, every commit synced (D3 durable)
                  d6: ${PROFILES.d6.clients} clients, ${PROFILES.d6.rate} msg/s, ${PROFILES.d6.minutes} min (D6 soak, the default)
  --minutes <n>   how long to send instead (fractions allowed, e.g. 0.5)
  -h, --help      show this help
Prints every minute and at the end: relay RSS and its slope (least squares, after a warm-up
of a minute or a third of the run), the JS heap in use and its slope, V8's young generation,
WAL size, open file descriptors, lost/dup/reorder; at the end also relay answer (ack) and
delivery latency p50/p99, peak RSS and event-loop lag p99.
Exit code 0 on PASS, 1 on FAIL, 2 on bad arguments.`;

export function readArgs(argv: string[]): Profile | 'help' {
  const { values } = parseArgs({ args: argv, options: { profile: { type: 'string' }, minutes: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: false });
  if (values.help) return 'help';
  const key = values.profile ?? 'd6';
  if (!Object.hasOwn(PROFILES, key)) throw new Error(`--profile: expected one of ${Object.keys(PROFILES).join(', ')}, got '${key}'`);
  const profile: Profile = PROFILES[key as ProfileKey];
  if (values.minutes === undefined) return profile;
  const minutes = Number(values.minutes);
  if (values.minutes.trim() === '' || !Number.isFinite(minutes) || minutes <= 0) throw new Error(`--minutes: expected a positive number, got '${values.minutes}'`);
  return { ...profile, minutes };
}

interface Sample {
  /** Minutes since the load started. */
  t: number;
  rssMb: number;
  /** The JS heap in use (after a full collection): what of RSS's slope is the relay's own objects. */
  heapMb: number;
  /** V8's young generation as committed: it grows in steps under load, up to its cap. */
  youngMb: number;
  walMb: number;
  fds: number;
}

const MB = 1024 * 1024;

/** Least-squares slope of y over t. */
function slope(points: readonly { t: number; y: number }[]): number {
  const n = points.length;
  if (n < 2) return Number.NaN;
  const mt = points.reduce((s, p) => s + p.t, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  const num = points.reduce((s, p) => s + (p.t - mt) * (p.y - my), 0);
  const den = points.reduce((s, p) => s + (p.t - mt) ** 2, 0);
  return den === 0 ? Number.NaN : num / den;
}

/** The relay's open descriptors, and its database file (found among them: procs.ts keeps the folder to itself). */
function descriptors(pid: number): { count: number; db: string | undefined } {
  const dir = `/proc/${pid}/fd`;
  let db: string | undefined;
  const fds = readdirSync(dir);
  for (const fd of fds) {
    try {
      const target = readlinkSync(`${dir}/${fd}`);
      if (target.endsWith('/relay.db')) db = target;
    } catch {
      // closed between the listing and the look: it does not count either way
    }
  }
  return { count: fds.length, db };
}

function walBytes(db: string | undefined): number {
  if (!db) return Number.NaN;
  try {
    return statSync(`${db}-wal`).size;
  } catch {
    return 0; // no WAL file (yet): nothing waits to be checkpointed
  }
}

const ms = (n: number) => `${n.toFixed(1)} ms`;

async function main(): Promise<number> {
  let profile: Profile | 'help';
  try {
    profile = readArgs(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`bench:soak: ${error instanceof Error ? error.message : String(error)}\nTry --help.\n`);
    return 2;
  }
  if (profile === 'help') {
    console.log(HELP);
    return 0;
  }
  const { clients, rate, minutes, targets } = profile;
  const log = (line: string) => console.log(`[${profile.name} ${new Date().toISOString().slice(11, 19)}] ${line}`);
  const warmupMin = Math.min(1, minutes / 3);

  const relay: RelayProc = await startRelay('parley', { fileLimit: clients * 2 + 1024, durable: profile.durable === true });
  const load = new SteadyLoad({ clients, rate, seconds: minutes * 60 });
  const samples: Sample[] = [];
  let started = 0;
  let overdue = new Set<string>();

  const sample = async (): Promise<Sample> => {
    const { rss, heapUsed, youngBytes } = await relay.rpc.call('mem', {});
    const fd = descriptors(relay.pid);
    const s = { t: (Date.now() - started) / 60_000, rssMb: rss / MB, heapMb: heapUsed / MB, youngMb: youngBytes / MB, walMb: walBytes(fd.db) / MB, fds: fd.count };
    samples.push(s);
    return s;
  };
  const settled = () => samples.filter((s) => s.t >= warmupMin);
  const rssSlope = () => slope(settled().map((s) => ({ t: s.t, y: s.rssMb })));
  const heapSlope = () => slope(settled().map((s) => ({ t: s.t, y: s.heapMb })));
  const fdRange = () => {
    const fds = settled().map((s) => s.fds);
    return fds.length === 0 ? { min: Number.NaN, max: Number.NaN } : { min: Math.min(...fds), max: Math.max(...fds) };
  };
  /** One report line; `final` once every outbox drained, when what has not arrived is lost. */
  const line = (s: Sample, final: boolean) => {
    const q = totalQueue(load.people);
    // Mid-run, an acknowledged message not arrived yet may be on its way: it counts as lost
    // only if it was already missing a minute ago.
    const missing = new Set(q.lost);
    const lost = final ? missing.size : [...missing].filter((m) => overdue.has(m)).length;
    overdue = missing;
    const { min, max } = fdRange();
    const perMin = (x: number) => (Number.isNaN(x) ? 'n/a (warming up)' : `${x >= 0 ? '+' : ''}${x.toFixed(2)} MB/min`);
    return {
      lost, dup: q.duplicated.length, reorder: q.reordered.length, acknowledged: q.acknowledged,
      text: `${s.t.toFixed(1)} min: relay RSS ${s.rssMb.toFixed(1)} MB, slope ${perMin(rssSlope())} (JS heap ${s.heapMb.toFixed(1)} MB, slope ${perMin(heapSlope())}; young generation ${s.youngMb.toFixed(0)} MB); WAL ${s.walMb.toFixed(2)} MB; fds ${s.fds} (settled ${min}..${max}); ` +
        `sent ${load.sent}, acknowledged ${q.acknowledged}; lost ${lost} dup ${q.duplicated.length} reorder ${q.reordered.length}`,
    };
  };

  try {
    const wanted = Object.entries(targets).map(([k, v]) => `${k} ${String(v)}`).join(', ');
    log(`relay pid ${relay.pid} at ${relay.url}; ${clients} clients, ${rate} msg/s for ${minutes} min; targets: ${wanted}, lost = dup = reorder = 0`);
    await load.connect(relay.url); // the relay is a process of its own, not one SteadyLoad started
    await relay.rpc.call('lag', {}); // from here on
    started = Date.now();
    let nextMinute = 1;
    const sampler = setInterval(() => {
      void sample().then((s) => {
        if (s.t + 1e-9 < nextMinute) return;
        nextMinute = Math.floor(s.t) + 1;
        log(line(s, false).text);
      }, (error: unknown) => log(`sample failed: ${String(error)}`));
    }, SAMPLE_MS);
    let drainError: unknown;
    try {
      await load.run(); // sends for the time, then waits until every outbox drained and every message arrived
    } catch (error) {
      drainError = error;
    } finally {
      clearInterval(sampler);
    }
    const lag = await relay.rpc.call('lag', {});
    const last = await sample();
    const end = line(last, true);
    log(`end: ${end.text}`);
    if (drainError) log(`the load did not drain: ${String(drainError)}`);
    const acks = load.ackTimes();
    const deliveries = load.deliveryTimes();
    const peak = rssOf(relay.pid, 'VmHWM') / MB;
    const figures = {
      ackP50Ms: quantile(acks, 0.5), ackP99Ms: quantile(acks, 0.99), deliveryP50Ms: quantile(deliveries, 0.5), deliveryP99Ms: quantile(deliveries, 0.99),
      peakRssMb: peak, lagP99Ms: lag.p99Ms, slopeMbPerMin: rssSlope(), walMb: Math.max(...samples.map((s) => s.walMb)),
    };
    log(`relay answers p50 ${ms(figures.ackP50Ms)} p99 ${ms(figures.ackP99Ms)}; delivery p50 ${ms(figures.deliveryP50Ms)} p99 ${ms(figures.deliveryP99Ms)}; ` +
      `peak RSS ${peak.toFixed(1)} MB; event-loop lag p99 ${ms(lag.p99Ms)} (max ${ms(lag.maxMs)}); refusals ${load.refusals().length}`);

    const { min, max } = fdRange();
    const at = (value: number, limit: number | undefined, unit: string, text: string) =>
      limit === undefined ? [] : [{ ok: value <= limit, text: `${text} ${value.toFixed(2)} ${unit} (<= ${limit})` }];
    const checks = [
      ...at(figures.ackP50Ms, targets.ackP50Ms, 'ms', 'ack p50'),
      ...at(figures.ackP99Ms, targets.ackP99Ms, 'ms', 'ack p99'),
      ...at(figures.deliveryP99Ms, targets.deliveryP99Ms, 'ms', 'delivery p99'),
      ...at(peak, targets.peakRssMb, 'MB', 'peak RSS'),
      ...at(lag.p99Ms, targets.lagP99Ms, 'ms', 'event-loop lag p99'),
      ...at(figures.slopeMbPerMin, targets.slopeMbPerMin, 'MB/min', `RSS slope (${settled().length} samples after a ${warmupMin.toFixed(1)} min warm-up)`),
      ...at(figures.walMb, targets.walMb, 'MB', 'WAL at most'),
      ...(targets.constantFds ? [{ ok: min === max, text: `fds ${min === max ? `constant at ${min}` : `${min}..${max}`}` }] : []),
      { ok: end.lost === 0 && end.dup === 0 && end.reorder === 0 && drainError === undefined && end.acknowledged === load.sent, text: `lost ${end.lost} dup ${end.dup} reorder ${end.reorder} (${end.acknowledged} of ${load.sent} acknowledged)` },
    ];
    const pass = checks.every((c) => c.ok);
    log(`${pass ? 'PASS' : 'FAIL'}: ${checks.map((c) => `${c.ok ? 'ok' : 'FAIL'} ${c.text}`).join('; ')}`);
    return pass ? 0 : 1;
  } finally {
    await load.close();
    await relay.stop();
  }
}

if (import.meta.main) {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      cleanUp();
      process.exit(130);
    });
  }
  try {
    process.exitCode = await main();
  } finally {
    cleanUp();
  }
}
