// D1 steady (RELIABILITY.md), the version that runs in `npm test`: 200 clients in random
// 1:1 pairs, 500 messages a second in all with 200-byte bodies, for 10 s, through one relay
// over SQLite. It asserts only the invariants (speed is the benchmark's business): every
// message the relay acknowledged arrives once, and each conversation keeps its order.
import { afterEach, describe, expect, it } from 'vitest';
import { eventually, startRelay, type TestRelay } from '../support/relay.ts';
import { FailoverClient } from '../support/failover.ts';
import { totalQueue } from '../support/check.ts';

let relay: TestRelay | undefined;
const people: FailoverClient[] = [];

afterEach(async () => {
  for (const p of people.splice(0)) p.close();
  await relay?.stop();
  relay = undefined;
});

const CLIENTS = 200;
const RATE = 500;
const SECONDS = 10;
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a steady load', () => {
  it(`loses, duplicates and reorders nothing: ${CLIENTS} clients, ${RATE} msg/s for ${SECONDS} s`, { timeout: 90_000 }, async () => {
    // Every client comes from 127.0.0.1: the per-address cap is opened up, nothing else.
    relay = await startRelay({ maxConnectionsPerAddress: CLIENTS + 10 });
    const url = relay.url;
    people.push(...Array.from({ length: CLIENTS }, (_, i) => new FailoverClient([url], { name: `p${i}` })));
    for (let i = 0; i < CLIENTS; i += 20) await Promise.all(people.slice(i, i + 20).map((p) => p.connect()));

    // Random 1:1 pairs.
    const order = people.map((p, i) => ({ p, key: Math.sin(i * 12.9898) })).sort((a, b) => a.key - b.key).map((x) => x.p);
    const pairs = Array.from({ length: CLIENTS / 2 }, (_, i) => [order[2 * i]!, order[2 * i + 1]!] as const);
    const body = 'b'.repeat(200);
    let sent = 0;
    const started = Date.now();
    for (;;) {
      const elapsed = Math.min(Date.now() - started, SECONDS * 1000);
      const due = Math.floor((elapsed * RATE) / 1000);
      for (; sent < due; sent += 1) {
        const [a, b] = pairs[sent % pairs.length]!;
        const [from, to] = Math.floor(sent / pairs.length) % 2 === 0 ? [a, b] : [b, a];
        from.send(to.id, `${sent} ${body}`);
      }
      if (elapsed >= SECONDS * 1000) break;
      await pause(10);
    }

    await eventually(() => people.every((p) => p.pending === 0), 'every outbox to drain', 30_000);
    await eventually(() => people.reduce((n, p) => n + p.history.length, 0) >= sent, 'every message to arrive', 30_000);
    expect(totalQueue(people)).toEqual({ acknowledged: sent, lost: [], duplicated: [], reordered: [] });
    // Nothing was refused along the way (no rate limits, no storage errors); answer timeouts
    // on a loaded machine are retried, and the total above shows they lost nothing.
    expect(people.flatMap((p) => [...p.errors.keys()]).filter((k) => k.startsWith('E_'))).toEqual([]);
  });
});
