// D6 soak (RELIABILITY.md), nightly, not part of `npm test`: `npm run bench:soak -- --minutes 30`.
// The steady load of test/support/steady.ts (random 1:1 pairs, 200-byte bodies, app-like
// clients with outboxes) at 50 clients and 50 msg/s in all, against a Parley relay process of
// its own (test/bench/procs.ts), for the given time. Every minute, and at the end, it prints the
// relay's RSS (after a full GC) with its slope, the size of its WAL file, its open file
// descriptors, and the total-queue counts. The end line says PASS or FAIL against D6: RSS slope
// under 1 MB/min, WAL under 64 MB, a constant descriptor count, lost = dup = reorder = 0.
import { readdirSync, readlinkSync, statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { cleanUp, startRelay, type RelayProc } from './procs.ts';
import { SteadyLoad } from '../support/steady.ts';
import { totalQueue } from '../support/check.ts';

const CLIENTS = 50;
const RATE = 50;
const SAMPLE_MS = 10_000;
const TARGETS = { slopeMbPerMin: 1, walMb: 64 };

export const HELP = `npm run bench:soak [-- options]   D6 soak: ${CLIENTS} clients, ${RATE} msg/s in all, against a relay process
  --minutes <n>   how long to send (default 30; fractions allowed, e.g. 0.5)
  -h, --help      show this help
Prints every minute and at the end: relay RSS and its slope (least squares, after a warm-up
of a minute or a third of the run), WAL size, open file descriptors, lost/dup/reorder.
Exit code 0 on PASS, 1 on FAIL, 2 on bad arguments.`;

export function readMinutes(argv: string[]): number | 'help' {
  const { values } = parseArgs({ args: argv, options: { minutes: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: false });
  if (values.help) return 'help';
  const raw = values.minutes ?? '30';
  const minutes = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(minutes) || minutes <= 0) throw new Error(`--minutes: expected a positive number, got '${raw}'`);
  return minutes;
}

interface Sample {
  /** Minutes since the load started. */
  t: number;
  rssMb: number;
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

async function main(): Promise<number> {
  let minutes: number | 'help';
  try {
    minutes = readMinutes(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`bench:soak: ${error instanceof Error ? error.message : String(error)}\nTry --help.\n`);
    return 2;
  }
  if (minutes === 'help') {
    console.log(HELP);
    return 0;
  }
  const log = (line: string) => console.log(`[soak ${new Date().toISOString().slice(11, 19)}] ${line}`);
  const warmupMin = Math.min(1, minutes / 3);

  const relay: RelayProc = await startRelay('parley', { fileLimit: 4096 });
  const load = new SteadyLoad({ clients: CLIENTS, rate: RATE, seconds: minutes * 60 });
  const samples: Sample[] = [];
  let started = 0;
  let overdue = new Set<string>();

  const sample = async (): Promise<Sample> => {
    const { rss } = await relay.rpc.call('mem', {});
    const fd = descriptors(relay.pid);
    const s = { t: (Date.now() - started) / 60_000, rssMb: rss / MB, walMb: walBytes(fd.db) / MB, fds: fd.count };
    samples.push(s);
    return s;
  };
  const settled = () => samples.filter((s) => s.t >= warmupMin);
  const rssSlope = () => slope(settled().map((s) => ({ t: s.t, y: s.rssMb })));
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
    const slopeText = Number.isNaN(rssSlope()) ? 'n/a (warming up)' : `${rssSlope() >= 0 ? '+' : ''}${rssSlope().toFixed(2)} MB/min`;
    return {
      lost, dup: q.duplicated.length, reorder: q.reordered.length, acknowledged: q.acknowledged,
      text: `${s.t.toFixed(1)} min: relay RSS ${s.rssMb.toFixed(1)} MB, slope ${slopeText}; WAL ${s.walMb.toFixed(2)} MB; fds ${s.fds} (settled ${min}..${max}); ` +
        `sent ${load.sent}, acknowledged ${q.acknowledged}; lost ${lost} dup ${q.duplicated.length} reorder ${q.reordered.length}`,
    };
  };

  try {
    log(`relay pid ${relay.pid} at ${relay.url}; ${CLIENTS} clients, ${RATE} msg/s for ${minutes} min; targets: RSS slope < ${TARGETS.slopeMbPerMin} MB/min, WAL < ${TARGETS.walMb} MB, constant fds, lost = dup = reorder = 0`);
    await load.connect(relay.url); // the relay is a process of its own, not one SteadyLoad started
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
    const last = await sample();
    const end = line(last, true);
    log(`end: ${end.text}`);
    if (drainError) log(`the load did not drain: ${String(drainError)}`);

    const maxWal = Math.max(...samples.map((s) => s.walMb));
    const { min, max } = fdRange();
    const checks = [
      { ok: rssSlope() < TARGETS.slopeMbPerMin, text: `RSS slope ${rssSlope().toFixed(2)} MB/min (< ${TARGETS.slopeMbPerMin}; ${settled().length} samples after a ${warmupMin.toFixed(1)} min warm-up)` },
      { ok: maxWal < TARGETS.walMb, text: `WAL at most ${maxWal.toFixed(2)} MB (< ${TARGETS.walMb})` },
      { ok: min === max, text: `fds ${min === max ? `constant at ${min}` : `${min}..${max}`}` },
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
