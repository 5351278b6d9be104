// The four scenarios. Each starts its own relay process(es) and load generator(s) and
// stops them afterwards, so one scenario's leftovers never weigh on the next.
import type { Config } from './config.ts';
import type { ConnectResult, DrainResult, RelayKind } from './ipc.ts';
import { Fleet, type Totals } from './fleet.ts';
import { costs, describe, log, measured, observe, type Observed, type Step } from './measure.ts';
import { rssOf, sleep, startRelay, type RelayProc } from './procs.ts';
import { fmtBytes, fmtLatency, fmtRate } from './stats.ts';

export { log };

export interface OnlineResult {
  kind: RelayKind;
  connect: ConnectResult;
  rssPerConn: number;
  probe: Step;
  steps: Step[];
  best: Step | null;
  /** A step at another relay's best rate, for latency at equal load. */
  atRate?: Step;
}

export interface OfflineResult {
  connect: ConnectResult;
  fill: Totals;
  filled: Observed<Totals>;
  drained: Observed<DrainResult>;
  acceptedPerSec: number;
  relayUsPerAccept: number;
  drain: DrainResult;
  drainPerSec: number;
}

export interface BacklogResult {
  drain: DrainResult;
  drained: Observed<DrainResult>;
  drainPerSec: number;
  /** Relay RSS before the drain (after a GC), and its highest during it. */
  rssBefore: number;
  rssPeak: number;
}

export interface FixedResult {
  kind: RelayKind;
  connect: ConnectResult;
  rssPerConn: number;
  /** The same load for cWarmupMs first, right after connecting (a relay process just started). */
  warmup: Step;
  step: Step;
}

export interface ManyResult {
  target: number;
  /** Held at the end (connected and not dropped since). */
  connected: number;
  failed: number;
  dropped: number;
  /** Time spent connecting, ms, and connections made by the end of each of its seconds. */
  ms: number;
  timeline: number[];
  rssBefore: number;
  rssAfter: number;
  rssPerConn: number;
  /** Why the relay dropped connections, with counts. */
  dropReasons: Record<string, number>;
  /** Relay CPU time spent while connecting, ms. */
  relayCpuMs: number;
  /** Longest event-loop stall while connecting, ms: the relay's, and the worst load generator's. */
  relayLagMaxMs: number;
  loadgenLagMaxMs: number;
  firstError?: string;
}

async function rig<T>(kind: RelayKind, loadgens: number, config: Config, body: (relay: RelayProc, fleet: Fleet) => Promise<T>): Promise<T> {
  const relay = await startRelay(kind, { fileLimit: config.fileLimit, ...(config.profileDir ? { profileDir: config.profileDir } : {}) });
  const fleet = Fleet.start(loadgens, config.fileLimit);
  try {
    return await body(relay, fleet);
  } finally {
    await fleet.stop();
    await relay.stop();
  }
}

const rss = async (relay: RelayProc) => (await relay.rpc.call('mem', {})).rss;

/** Connects, then reports the relay's RSS growth per connection (after a GC, before and after). */
async function connectMeasured(relay: RelayProc, fleet: Fleet, pairs: number, concurrency: number, timeoutMs: number) {
  const before = await rss(relay);
  const observed = await observe(relay, fleet, 0, () => fleet.connect(relay.kind, relay.url, pairs, concurrency, timeoutMs));
  const connect = observed.value;
  if (connect.connected === 0) throw new Error(`no ${relay.kind} client could connect: ${connect.firstError ?? 'no error given'}`);
  log(`${relay.kind}: ${connect.connected} connected in ${(connect.ms / 1000).toFixed(1)} s (${connect.failed} failed${connect.firstError ? `: ${connect.firstError}` : ''}), ${costs(observed)}`);
  await sleep(1_000); // let presence broadcasts settle
  const after = await rss(relay);
  return { connect, observed, before, after, rssPerConn: (after - before) / Math.max(1, connect.connected) };
}

/** (a) Recipients online: a closed-loop probe for capacity, then open-loop steps around it. */
export function online(kind: RelayKind, config: Config, compareAt?: number): Promise<OnlineResult> {
  return rig(kind, config.loadgens, config, async (relay, fleet) => {
    const { connect, rssPerConn } = await connectMeasured(relay, fleet, config.pairs, 32, 60_000);
    const probeWork = () => fleet.closed(config.window, config.probeMs, Math.min(500, config.probeMs / 4), config.bodyBytes);
    const probe = await measured(relay, fleet, config, Number.NaN, probeWork);
    const capacity = (probe.totals.delivered / probe.totals.ms) * 1000;
    probe.rate = capacity;
    log(`${kind}: closed-loop capacity ${fmtRate(capacity)} (window ${config.window}/client), ${costs(probe)}`);
    const steps: Step[] = [];
    let best: Step | null = null;
    let rate = Math.max(100, Math.round(capacity * 0.7));
    let failed: number | null = null;
    for (let i = 0; i < config.maxSteps; i++) {
      const step = await measured(relay, fleet, config, rate, () => fleet.open(rate, config.stepMs, config.graceMs, config.bodyBytes));
      steps.push(step);
      log(`${kind}: ${describe(step)}`);
      if (step.pass && (!best || step.rate > best.rate)) best = step;
      if (!step.pass) failed = Math.min(failed ?? rate, rate);
      await sleep(step.pass ? 200 : 2_000); // a failed step may leave a backlog to drain
      // Up by 15% while passing; once a rate failed, halve the gap to it; none passing yet: down.
      if (best && failed === null) rate = Math.round(best.rate * 1.15);
      else if (best && failed !== null) rate = Math.round((best.rate + failed) / 2);
      else rate = Math.round(rate * 0.7);
      if (best && failed !== null && failed / best.rate < 1.05) break;
    }
    if (compareAt === undefined || !Number.isFinite(compareAt)) return { kind, connect, rssPerConn, probe, steps, best };
    const atRate = await measured(relay, fleet, config, compareAt, () => fleet.open(compareAt, config.stepMs, config.graceMs, config.bodyBytes));
    log(`${kind} at the other relay's rate: ${describe(atRate)}`);
    return { kind, connect, rssPerConn, probe, steps, best, atRate };
  });
}

/** (b) Every recipient offline: senders fill the mailboxes, then the recipients drain them. */
export function offline(config: Config): Promise<OfflineResult> {
  return rig('parley', config.loadgens, config, async (relay, fleet) => {
    const connect = await fleet.connect('parley', relay.url, config.offlinePairs, 32, 60_000);
    await fleet.dropReceivers();
    const fillOnce = async () => {
      const o = await observe(relay, fleet, config.quietMs, () => fleet.fill(config.perSender, config.window, config.bodyBytes));
      const fill = o.value;
      log(`parley offline: accepted ${fill.acked}/${fill.sent} in ${(fill.ms / 1000).toFixed(1)} s = ${fmtRate((fill.acked / fill.ms) * 1000)}` +
        `, ack p99 ${fmtLatency(fill.ack.quantile(0.99))}, errors ${fill.errors}, ${costs(o)}${o.noisy && !config.quick ? '; measuring again' : ''}`);
      return o;
    };
    // A disturbed fill is repeated: the mailboxes then hold both fills, and the drain takes them all.
    let filled = await fillOnce();
    if (filled.noisy && !config.quick) filled = await fillOnce();
    const fill = filled.value;
    await sleep(500);
    const drained = await observe(relay, fleet, config.quietMs, () => fleet.drain(32, 60_000));
    const drain = drained.value;
    const drainPerSec = (drain.delivered / drain.ms) * 1000;
    log(`parley offline: drained ${drain.delivered}/${drain.expected} in ${(drain.ms / 1000).toFixed(1)} s = ${fmtRate(drainPerSec)} (reconnects took ${(drain.connectMs / 1000).toFixed(1)} s), ${costs(drained)}`);
    return { connect, fill, filled, acceptedPerSec: (fill.acked / fill.ms) * 1000, relayUsPerAccept: (filled.relayCpuMs * 1000) / Math.max(1, fill.acked), drain, drained, drainPerSec };
  });
}

/** D5 backlog replay: `config.backlog` messages queued for one recipient, drained as they reconnect. */
export function backlog(config: Config): Promise<BacklogResult> {
  return rig('parley', 1, config, async (relay, fleet) => {
    await fleet.connect('parley', relay.url, 1, 1, 60_000);
    await fleet.dropReceivers();
    const fill = await fleet.fill(config.backlog, config.window, config.bodyBytes);
    await sleep(500);
    const rssBefore = await rss(relay);
    let rssPeak = rssBefore;
    const drained = await observe(relay, fleet, config.quietMs, async () => {
      const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, rssOf(relay.pid))), 50);
      try {
        return await fleet.drain(1, 60_000);
      } finally {
        clearInterval(sampler);
      }
    });
    const drain = drained.value;
    const drainPerSec = (drain.delivered / drain.ms) * 1000;
    log(`parley backlog (D5): ${fill.acked}/${fill.sent} queued for one recipient, drained ${drain.delivered} in ${(drain.ms / 1000).toFixed(1)} s = ${fmtRate(drainPerSec)}` +
      ` (reconnect ${(drain.connectMs / 1000).toFixed(2)} s), relay RSS ${fmtBytes(rssBefore)} -> peak ${fmtBytes(rssPeak)}, ${costs(drained)}`);
    return { drain, drained, drainPerSec, rssBefore, rssPeak };
  });
}

/**
 * (c) A fixed open-loop rate over many connections; then, on Parley, (d): more connections
 * on the same relay until `dConnections` are held or `dTimeoutMs` has passed.
 */
export function connections(kind: RelayKind, config: Config, want: { fixed: boolean; many: boolean }): Promise<{ fixed?: FixedResult; many?: ManyResult }> {
  return rig(kind, config.manyLoadgens, config, async (relay, fleet) => {
    const out: { fixed?: FixedResult; many?: ManyResult } = {};
    let start: { connect: ConnectResult; before: number; observed: Observed<ConnectResult> } | undefined;
    if (want.fixed) {
      const { connect, before, observed, rssPerConn } = await connectMeasured(relay, fleet, Math.round(config.cConnections / 2), 64, 180_000);
      start = { connect, before, observed };
      const load = (ms: number) => measured(relay, fleet, config, config.cRate, () => fleet.open(config.cRate, ms, config.graceMs * 2, config.bodyBytes));
      const warmup = await load(config.cWarmupMs);
      log(`${kind} @ ${connect.connected} connections, warm-up from a cold start: ${describe(warmup)}`);
      await sleep(1_000);
      const step = await load(config.cMs);
      log(`${kind} @ ${connect.connected} connections: ${describe(step)}`);
      out.fixed = { kind, connect, rssPerConn, warmup, step };
    }
    if (want.many && kind === 'parley') {
      const have = start?.connect.connected ?? 0;
      const before = start?.before ?? (await rss(relay));
      const pairs = Math.max(0, Math.round((config.dConnections - have) / 2));
      const observed = await observe(relay, fleet, 0, () => fleet.connect(kind, relay.url, pairs, config.dConcurrency, config.dTimeoutMs));
      const more = observed.value;
      const relayCpuMs = observed.relayCpuMs + (start?.observed.relayCpuMs ?? 0);
      await sleep(1_000);
      const after = await rss(relay);
      const held = await fleet.count();
      const ms = (start?.connect.ms ?? 0) + more.ms;
      log(`parley: ${held.connected} connections held after ${(ms / 1000).toFixed(1)} s of connecting (${held.dropped} dropped${more.firstError ? `; ${more.firstError}` : ''}), ${costs(observed)}`);
      out.many = {
        target: config.dConnections, connected: held.connected, failed: (start?.connect.failed ?? 0) + more.failed, dropped: held.dropped, dropReasons: held.reasons, ms,
        timeline: [...(start?.connect.timeline ?? []), ...more.timeline.map((n) => n + have)],
        rssBefore: before, rssAfter: after, rssPerConn: (after - before) / Math.max(1, held.connected), relayCpuMs,
        relayLagMaxMs: Math.max(observed.relayLag.maxMs, start?.observed.relayLag.maxMs ?? 0),
        loadgenLagMaxMs: Math.max(observed.loadgenLag.maxMs, start?.observed.loadgenLag.maxMs ?? 0),
        ...(more.firstError === undefined ? {} : { firstError: more.firstError }),
      };
    }
    return out;
  });
}
