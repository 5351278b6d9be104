// Measuring a step: relay and load-generator CPU from /proc, event-loop lag on both sides,
// and the CPU that processes outside the bench took meanwhile (another build or test run
// on the machine skews every figure, so a disturbed step is measured again once).
import { performance } from 'node:perf_hooks';
import type { Config } from './config.ts';
import type { Fleet, Totals } from './fleet.ts';
import type { Lag } from './ipc.ts';
import { cpuMsOf, machineBusyMs, sleep, type RelayProc } from './procs.ts';
import { fmtLatency, fmtRate } from './stats.ts';

export const log = (line: string): void => void process.stderr.write(`[bench] ${line}\n`);

/** Other processes using more than this share of a core make a step "noisy". */
const NOISY = 0.25;

export interface Observed<T> {
  value: T;
  wallMs: number;
  relayCpuMs: number;
  /** Shares of one core over the step: the relay, all load generators, everything else. */
  relayCpu: number;
  loadgenCpu: number;
  otherCpu: number;
  /** Other processes used more than NOISY of a core: the figures are suspect. */
  noisy: boolean;
  relayLag: Lag;
  loadgenLag: Lag;
}

export interface Step extends Observed<Totals> {
  rate: number;
  totals: Totals;
  /** Relay CPU time per delivered message, µs. */
  relayUsPerMsg: number;
  pass: boolean;
}

/** Before a step, wait up to `maxMs` for processes outside the bench to go quiet. */
async function quiet(relay: RelayProc, fleet: Fleet, maxMs: number): Promise<void> {
  const deadline = performance.now() + maxMs;
  for (;;) {
    const [m0, own0, t0] = [machineBusyMs(), cpuMsOf(relay.pid) + fleet.cpuMs(), performance.now()];
    await sleep(300);
    const other = (machineBusyMs() - m0 - (cpuMsOf(relay.pid) + fleet.cpuMs() - own0)) / (performance.now() - t0);
    if (other < 0.15) return;
    if (performance.now() > deadline) return log(`other processes use ${(other * 100).toFixed(0)}% of a core: figures will suffer`);
  }
}

/** Runs `work` and reports what it cost; waits for a quiet machine first when `quietMs` > 0. */
export async function observe<T>(relay: RelayProc, fleet: Fleet, quietMs: number, work: () => Promise<T>): Promise<Observed<T>> {
  if (quietMs > 0) await quiet(relay, fleet, quietMs);
  await Promise.all([relay.rpc.call('lag', {}), fleet.lag()]);
  const t0 = performance.now();
  const [cpu0, fleet0, machine0] = [cpuMsOf(relay.pid), fleet.cpuMs(), machineBusyMs()];
  const value = await work();
  const relayCpuMs = cpuMsOf(relay.pid) - cpu0;
  const loadMs = fleet.cpuMs() - fleet0;
  const otherMs = Math.max(0, machineBusyMs() - machine0 - relayCpuMs - loadMs);
  const wallMs = performance.now() - t0;
  const [relayLag, loadgenLag] = await Promise.all([relay.rpc.call('lag', {}), fleet.lag()]);
  return {
    value, wallMs, relayCpuMs, relayCpu: relayCpuMs / wallMs, loadgenCpu: loadMs / wallMs, otherCpu: otherMs / wallMs,
    noisy: otherMs / wallMs > NOISY, relayLag, loadgenLag,
  };
}

/** Runs `work` as one step; measures it again once if other processes disturbed it. */
export async function measured(relay: RelayProc, fleet: Fleet, config: Config, rate: number, work: () => Promise<Totals>, retry = !config.quick): Promise<Step> {
  const o = await observe(relay, fleet, config.quietMs, work);
  const totals = o.value;
  const pass = totals.lost === 0 && totals.errors === 0 && totals.deliver.quantile(0.99) <= config.sloMs * 1000;
  const step: Step = { ...o, rate, totals, relayUsPerMsg: (o.relayCpuMs * 1000) / Math.max(1, totals.delivered), pass };
  if (!step.noisy || !retry) return step;
  log(`${relay.kind}: ${describe(step)}; measuring again`);
  await sleep(2_000);
  return measured(relay, fleet, config, rate, work, false);
}

const pct = (share: number) => `${(share * 100).toFixed(0)}%`;

/** CPU shares and event-loop lag, for a log line. */
export const costs = (o: Observed<unknown>): string =>
  `relay CPU ${pct(o.relayCpu)}, loadgen CPU ${pct(o.loadgenCpu)}, max loop lag relay ${fmtLatency(o.relayLag.maxMs * 1000)} / loadgen ${fmtLatency(o.loadgenLag.maxMs * 1000)}` +
  (o.otherCpu > 0.1 ? `, OTHER PROCESSES ${pct(o.otherCpu)}` : '');

export const describe = (s: Step): string =>
  `offered ${fmtRate(s.rate)}: delivered ${s.totals.delivered}/${s.totals.sent}, lost ${s.totals.lost}, errors ${s.totals.errors}` +
  (s.totals.stray > 0 ? `, ${s.totals.stray} stray or repeated` : '') +
  `, p50 ${fmtLatency(s.totals.deliver.quantile(0.5))}, p99 ${fmtLatency(s.totals.deliver.quantile(0.99))}, ${costs(s)}` +
  `${s.pass ? '' : '  FAIL'}${s.totals.firstError ? ` (${s.totals.firstError})` : ''}`;
