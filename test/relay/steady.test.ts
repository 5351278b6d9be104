// D1 steady (RELIABILITY.md), the version that runs in `npm test`: 200 clients in random
// 1:1 pairs, 500 messages a second in all with 200-byte bodies, for 10 s, through one relay
// over SQLite. It asserts only the invariants (speed is the benchmark's business): every
// message the relay acknowledged arrives once, and each conversation keeps its order.
// The load itself is test/support/steady.ts (D3 durable runs it too).
import { afterEach, describe, expect, it } from 'vitest';
import { SteadyLoad } from '../support/steady.ts';
import { totalQueue } from '../support/check.ts';

let load: SteadyLoad | undefined;

afterEach(async () => {
  await load?.close();
  load = undefined;
});

const CLIENTS = 200;
const RATE = 500;
const SECONDS = 10;

describe('a steady load', () => {
  it(`loses, duplicates and reorders nothing: ${CLIENTS} clients, ${RATE} msg/s for ${SECONDS} s`, { timeout: 90_000 }, async () => {
    load = new SteadyLoad({ clients: CLIENTS, rate: RATE, seconds: SECONDS });
    await load.start();
    await load.connect();
    await load.run();
    expect(totalQueue(load.people)).toEqual({ acknowledged: load.sent, lost: [], duplicated: [], reordered: [] });
    // Nothing was refused along the way (no rate limits, no storage errors); answer timeouts
    // on a loaded machine are retried, and the total above shows they lost nothing.
    expect(load.refusals()).toEqual([]);
  });
});
