// Latency histograms (log buckets, ~1% resolution, mergeable across processes) and the
// formatting the report uses.

/** Bucket index -> count. Values are microseconds. */
export type HistogramData = Record<string, number>;

const RATIO = Math.log(1.01);
const indexOf = (us: number) => Math.max(0, Math.ceil(Math.log(Math.max(us, 1)) / RATIO));
const valueOf = (index: number) => Math.exp(index * RATIO);

export class Histogram {
  private readonly counts = new Map<number, number>();
  count = 0;

  add(us: number): void {
    const i = indexOf(us);
    this.counts.set(i, (this.counts.get(i) ?? 0) + 1);
    this.count++;
  }

  merge(data: HistogramData): this {
    for (const [k, n] of Object.entries(data)) {
      const i = Number(k);
      this.counts.set(i, (this.counts.get(i) ?? 0) + n);
      this.count += n;
    }
    return this;
  }

  /** The q-quantile (0..1) in microseconds; NaN when empty. */
  quantile(q: number): number {
    if (this.count === 0) return Number.NaN;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (const i of [...this.counts.keys()].sort((a, b) => a - b)) {
      seen += this.counts.get(i) ?? 0;
      if (seen >= rank) return valueOf(i);
    }
    return Number.NaN;
  }

  toData(): HistogramData {
    return Object.fromEntries(this.counts);
  }
}

export const merged = (...parts: HistogramData[]): Histogram => parts.reduce((h, d) => h.merge(d), new Histogram());

/** "1.23 ms" style latency from microseconds. */
export function fmtLatency(us: number): string {
  if (!Number.isFinite(us)) return 'n/a';
  if (us < 1000) return `${us.toFixed(0)} µs`;
  if (us < 10_000) return `${(us / 1000).toFixed(2)} ms`;
  if (us < 1_000_000) return `${(us / 1000).toFixed(1)} ms`;
  return `${(us / 1e6).toFixed(2)} s`;
}

export function fmtRate(perSecond: number): string {
  if (!Number.isFinite(perSecond)) return 'n/a';
  return `${Math.round(perSecond).toLocaleString('en-US')}/s`;
}

export function fmtBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return 'n/a';
  if (Math.abs(bytes) < 10 * 1024) return `${bytes.toFixed(0)} B`;
  if (Math.abs(bytes) < 10 * 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

export const fmtRatio = (r: number): string => (Number.isFinite(r) ? `${r.toFixed(2)}x` : 'n/a');
export const fmtInt = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a');

/** A plain-text table with a header row; columns padded to their widest cell. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max([...h].length, ...rows.map((r) => [...(r[i] ?? '')].length)));
  const line = (cells: string[]) => cells.map((c, i) => c + ' '.repeat((widths[i] ?? 0) - [...c].length)).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}
