// Shared by both relay children: the ready message and the memory report.

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
