// The final table: Parley and baseline side by side, their ratio, and the targets.
import type { Config } from './config.ts';
import type { Step } from './measure.ts';
import type { BacklogResult, FixedResult, ManyResult, OfflineResult, OnlineResult } from './scenarios.ts';
import { fmtBytes, fmtInt, fmtLatency, fmtRate, fmtRatio, table } from './stats.ts';

export interface Results {
  online: { parley?: OnlineResult; baseline?: OnlineResult };
  offline?: OfflineResult;
  backlog?: BacklogResult;
  fixed: { parley?: FixedResult; baseline?: FixedResult };
  many?: ManyResult;
}

type Row = [string, string, string, string, string, string];
const NA = '-';
const verdict = (ok: boolean | undefined, ...steps: ({ noisy: boolean } | null | undefined)[]) =>
  (ok === undefined ? NA : ok ? 'MET' : 'NOT MET') + (steps.some((s) => s?.noisy) ? ' (noisy)' : '');
const p = (s: Step | null | undefined, q: number, which: 'deliver' | 'ack' = 'deliver') => (s ? s.totals[which].quantile(q) : Number.NaN);
const rateOf = (s: Step | null | undefined) => (s ? (s.totals.delivered / s.totals.ms) * 1000 : Number.NaN);
const pair = (a: number, b: number, f: (n: number) => string) => `${f(a)} / ${f(b)}`;

export function report(results: Results, config: Config): string {
  const rows: Row[] = [];
  const { parley: pa, baseline: ba } = results.online;
  if (pa || ba) {
    const pr = rateOf(pa?.best);
    const br = rateOf(ba?.best);
    const ratio = pr / br;
    /** No step failed: the search stopped at its step limit, below the relay's limit. */
    const atLeast = (r: OnlineResult | undefined) => (r && r.steps.length > 0 && r.steps.every((s) => s.pass) ? ' (or more)' : '');
    rows.push(['(a) online: delivered DMs/s, zero loss', `${fmtRate(pr)}${atLeast(pa)}`, `${fmtRate(br)}${atLeast(ba)}`, fmtRatio(ratio), '>= 1.0x', verdict(Number.isFinite(ratio) ? ratio >= 1 : undefined, pa?.best, ba?.best)]);
    rows.push(['(a)   closed-loop capacity', fmtRate(pa?.probe.rate ?? Number.NaN), fmtRate(ba?.probe.rate ?? Number.NaN), fmtRatio((pa?.probe.rate ?? Number.NaN) / (ba?.probe.rate ?? Number.NaN)), '', '']);
    rows.push(['(a)   deliver p50 / p99 at that rate', pair(p(pa?.best, 0.5), p(pa?.best, 0.99), fmtLatency), pair(p(ba?.best, 0.5), p(ba?.best, 0.99), fmtLatency), NA, '', '']);
    if (ba?.atRate) {
      const at = ba.atRate;
      rows.push([`(a)   p50 / p99 at ${fmtRate(at.rate)} (equal load)`, pair(p(pa?.best, 0.5), p(pa?.best, 0.99), fmtLatency), pair(p(at, 0.5), p(at, 0.99), fmtLatency), fmtRatio(p(pa?.best, 0.99) / p(at, 0.99)), '', '']);
    }
    rows.push(['(a)   send -> own ack p50 / p99', pair(p(pa?.best, 0.5, 'ack'), p(pa?.best, 0.99, 'ack'), fmtLatency), NA, NA, '', '']);
    const pu = pa?.best?.relayUsPerMsg ?? Number.NaN;
    const bu = ba?.best?.relayUsPerMsg ?? Number.NaN;
    rows.push(['(a)   relay CPU per delivered DM', fmtLatency(pu), fmtLatency(bu), fmtRatio(pu / bu), '', '']);
    rows.push([`(a)   relay RSS per connection (${fmtInt(pa?.connect.connected ?? ba?.connect.connected ?? Number.NaN)})`, fmtBytes(pa?.rssPerConn ?? Number.NaN), fmtBytes(ba?.rssPerConn ?? Number.NaN), fmtRatio((pa?.rssPerConn ?? Number.NaN) / (ba?.rssPerConn ?? Number.NaN)), '', '']);
  }
  const off = results.offline;
  if (off) {
    const br = rateOf(ba?.best);
    const ratio = off.acceptedPerSec / br;
    rows.push(['(b) offline: accepted into mailbox/s', fmtRate(off.acceptedPerSec), `${fmtRate(br)} online`, fmtRatio(ratio), '>= 0.5x', verdict(Number.isFinite(ratio) ? ratio >= 0.5 : undefined, ba?.best, off.filled)]);
    rows.push(['(b)   mailbox drain/s on reconnect', fmtRate(off.drainPerSec), `${fmtRate(br)} online`, fmtRatio(off.drainPerSec / br), '', '']);
    rows.push(['(b)   accept ack p50 / p99', pair(off.fill.ack.quantile(0.5), off.fill.ack.quantile(0.99), fmtLatency), NA, NA, '', '']);
    rows.push(['(b)   relay CPU per accepted DM', fmtLatency(off.relayUsPerAccept), NA, NA, '', '']);
  }
  const bl = results.backlog;
  if (bl) {
    const growth = bl.rssPeak - bl.rssBefore;
    rows.push([`(b) D5 backlog: ${fmtInt(bl.drain.expected)} for one recipient, drained/s`, fmtRate(bl.drainPerSec), NA, NA, '>= 2,000/s', verdict(bl.drain.delivered === bl.drain.expected && bl.drainPerSec >= 2_000, bl.drained)]);
    rows.push(['(b)   relay RSS growth while it drained', fmtBytes(growth), NA, NA, '< 50 MB', verdict(growth < 50 * 2 ** 20)]);
  }
  const { parley: pc, baseline: bc } = results.fixed;
  if (pc || bc) {
    const conns = fmtInt(pc?.connect.connected ?? bc?.connect.connected ?? Number.NaN);
    const ratio = p(pc?.step, 0.99) / p(bc?.step, 0.99);
    const lossless = (pc?.step.totals.lost ?? 1) === 0 && (pc?.step.totals.errors ?? 1) === 0;
    rows.push([`(c) p99 at ${fmtRate(config.cRate)} over ${conns} conns`, fmtLatency(p(pc?.step, 0.99)), fmtLatency(p(bc?.step, 0.99)), fmtRatio(ratio), '<= 2.0x', verdict(Number.isFinite(ratio) ? ratio <= 2 && lossless : undefined, pc?.step, bc?.step)]);
    rows.push([`(c)   p99 in the ${secs(config.cWarmupMs)} before, just started`, fmtLatency(p(pc?.warmup, 0.99)), fmtLatency(p(bc?.warmup, 0.99)), fmtRatio(p(pc?.warmup, 0.99) / p(bc?.warmup, 0.99)), '', '']);
    // The tail's shape: whether p99 is a cliff (a collection's pause) or the whole tail is slower.
    for (const q of [0.5, 0.9, 0.98]) rows.push([`(c)   p${q * 100}`, fmtLatency(p(pc?.step, q)), fmtLatency(p(bc?.step, q)), fmtRatio(p(pc?.step, q) / p(bc?.step, q)), '', '']);
    rows.push(['(c)   delivered/s (lost)', `${fmtRate(rateOf(pc?.step))} (${fmtInt(pc?.step.totals.lost ?? Number.NaN)})`, `${fmtRate(rateOf(bc?.step))} (${fmtInt(bc?.step.totals.lost ?? Number.NaN)})`, NA, '', '']);
    rows.push(['(c)   send -> own ack p99', fmtLatency(p(pc?.step, 0.99, 'ack')), NA, NA, '', '']);
    rows.push(['(c)   relay CPU busy', pct(pc?.step.relayCpu), pct(bc?.step.relayCpu), NA, '', '']);
    rows.push(['(c)   relay RSS per connection', fmtBytes(pc?.rssPerConn ?? Number.NaN), fmtBytes(bc?.rssPerConn ?? Number.NaN), fmtRatio((pc?.rssPerConn ?? Number.NaN) / (bc?.rssPerConn ?? Number.NaN)), '', '']);
    rows.push(['(c)   time to connect all', secs(pc?.connect.ms), secs(bc?.connect.ms), NA, '', '']);
  }
  const many = results.many;
  if (many) {
    const t = many.timeline;
    const window = Math.min(10, Math.floor(t.length / 2));
    const rateAt = (from: number) => ((t[from + window - 1] ?? 0) - (from > 0 ? (t[from - 1] ?? 0) : 0)) / Math.max(1, window);
    const [early, late] = [rateAt(0), rateAt(Math.max(0, t.length - window))];
    rows.push(['(d) concurrent authenticated connections', fmtInt(many.connected), NA, NA, `>= ${fmtInt(many.target)}`, verdict(many.connected >= many.target)]);
    rows.push(['(d)   time spent connecting (average)', `${secs(many.ms)} (${fmtRate((many.connected / many.ms) * 1000)})`, NA, NA, '', '']);
    if (window > 0) rows.push([`(d)   connect rate, first / last ${window} s`, `${fmtRate(early)} / ${fmtRate(late)}`, NA, NA, '', '']);
    if (many.connected < many.target && late > 0) {
      // If each connection costs in proportion to those already held (a broadcast to all):
      const projected = (many.target ** 2 - many.connected ** 2) / (2 * late * many.connected);
      rows.push([`(d)   projected time to ${fmtInt(many.target)} (cost ∝ n)`, `+${secs(projected * 1000)}`, NA, NA, '', '']);
    }
    const reasons = Object.entries(many.dropReasons).map(([why, n]) => `${n} ${why}`).join(', ');
    rows.push(['(d)   failed / dropped by the relay', `${fmtInt(many.failed)} / ${fmtInt(many.dropped)}${reasons ? ` (${reasons})` : ''}`, NA, NA, '', '']);
    rows.push(['(d)   relay RSS, total / per connection', `${fmtBytes(many.rssAfter)} / ${fmtBytes(many.rssPerConn)}`, NA, NA, '', '']);
    rows.push(['(d)   relay CPU while connecting', secs(many.relayCpuMs), NA, NA, '', '']);
    rows.push(['(d)   longest loop stall, relay / loadgen', `${secs(many.relayLagMaxMs)} / ${secs(many.loadgenLagMaxMs)}`, NA, NA, '', '']);
  }
  const legend = [
    `Body ${config.bodyBytes} chars; ${config.loadgens} load generator(s) for (a) and (b), ${config.manyLoadgens} for (c) and (d); (d) adds connections to the Parley relay of (c).`,
    `(a) rate: highest open-loop rate with zero loss, no errors and delivery p99 <= ${config.sloMs} ms (steps of ${config.stepMs / 1000} s + ${config.graceMs / 1000} s grace,`,
    `    from 0.7x the closed-loop capacity, up by 15% until a step fails, then halving the gap; at most ${config.maxSteps} steps, "(or more)" when none failed).`,
    '(b) baseline column: the baseline has no mailbox; the ratio compares with its online rate from (a).',
    `(c) measures ${config.cMs / 1000} s of its rate after ${config.cWarmupMs / 1000} s of the same load on the relay process just started (each relay alike): a running relay's p99, and a just-started one's.`,
    '(noisy): other processes on the machine took over a quarter of a core during that measurement (full runs measure once more first).',
  ];
  return `${table(['scenario / figure', 'Parley', 'baseline', 'ratio', 'target', 'verdict'], rows)}\n\n${legend.join('\n')}`;
}

const pct = (share: number | undefined) => (share === undefined ? NA : `${(share * 100).toFixed(0)}%`);
const secs = (ms: number | undefined) => (ms === undefined ? NA : `${(ms / 1000).toFixed(1)} s`);
