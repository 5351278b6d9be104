// Shared by the bench children (relays and load generators): the ready message, the memory report, event-loop lag.
import { monitorEventLoopDelay } from 'node:perf_hooks';

/** Tells the bench which port the relay listens on. */
export function ready(port: number): void {
  process.send?.({ ready: true, port });
}

export function memoryNow(): { rss: number; heapUsed: number } {
  globalThis.gc?.();
  globalThis.gc?.();
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed };
}

const delay = monitorEventLoopDelay({ resolution: 10 });
delay.enable();

/** The event loop's delay since the last call: p99 and max, ms. */
export function lagSinceLast(): { p99Ms: number; maxMs: number } {
  const lag = { p99Ms: delay.percentile(99) / 1e6, maxMs: delay.max / 1e6 };
  delay.reset();
  return lag;
}
