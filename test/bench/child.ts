// Shared by the bench children (relays and load generators): the ready message, the memory report, event-loop lag.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { getHeapSpaceStatistics } from 'node:v8';
import type { RelayOptions } from '../../relay/server.ts';

/** A relay opened up for a load test: every client comes from 127.0.0.1 and sends flat out. */
export const LOAD_TEST_LIMITS = {
  maxConnectionsPerAddress: 1_000_000,
  maxAuthFailures: 1_000_000,
  rate: { capacity: 1_000_000, perSecond: 1_000_000, abuseMs: 60_000 },
  mailbox: { maxMessages: 10_000_000, maxBytes: 10 * 1024 * 1024 * 1024 },
  connectTimeoutMs: 60_000,
} as const satisfies Omit<RelayOptions, 'store'>;

/** Tells the bench which port the relay listens on. */
export function ready(port: number): void {
  process.send?.({ ready: true, port });
}

export function memoryNow(): { rss: number; heapUsed: number; youngBytes: number } {
  globalThis.gc?.();
  globalThis.gc?.();
  const m = process.memoryUsage();
  // Under a steady load V8 grows its young generation up to the relay's cap and keeps it: a
  // step in RSS that is not the relay's own objects (space_size counts both semi-spaces).
  const young = getHeapSpaceStatistics().find((space) => space.space_name === 'new_space');
  return { rss: m.rss, heapUsed: m.heapUsed, youngBytes: young?.space_size ?? 0 };
}

const delay = monitorEventLoopDelay({ resolution: 10 });
delay.enable();

/** The event loop's delay since the last call: p99 and max, ms. */
export function lagSinceLast(): { p99Ms: number; maxMs: number } {
  const lag = { p99Ms: delay.percentile(99) / 1e6, maxMs: delay.max / 1e6 };
  delay.reset();
  return lag;
}
