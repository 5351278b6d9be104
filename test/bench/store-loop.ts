// `npm run bench -- --only s`: the SQLite store's own event-loop time per message in (a)'s
// pattern, in this process, without sockets: live messages from 200 users accepted in turns of
// 400, each taken by its recipient the next turn, their records going to the record file's
// worker. A steadier figure than (a)'s rate for a change to the store, which (a)'s scatter hides.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventLoopUtilization } from 'node:perf_hooks';
import { openSqliteStore } from '../../relay/mailbox/sqlite.ts';
import { digestOf } from '../../relay/mailbox/store.ts';
import { base32 } from '../../relay/identity.ts';

export interface StoreLoopFigures {
  messages: number;
  /** Event-loop time per message, µs. */
  loopMicros: number;
  /** Messages a second through the store alone. */
  rate: number;
}

export async function storeLoop(messages: number): Promise<StoreLoopFigures> {
  const dir = mkdtempSync(join(tmpdir(), 'parley-store-loop-'));
  const store = openSqliteStore({ path: join(dir, 'relay.db') });
  try {
    const users = Array.from({ length: 200 }, (_, i) => base32(Buffer.from(`user-${String(i).padStart(15, '0')}`)).slice(0, 32));
    const body = 'x'.repeat(256);
    const quota = { messages: 1_000_000, bytes: 1e12 };
    const perTurn = 400;
    let sent = 0;
    let previous = new Map<string, number[]>();
    const before = eventLoopUtilization();
    const started = performance.now();
    while (sent < messages || previous.size > 0) {
      // A turn of its own, as the relay's sockets would give it.
      await new Promise<void>((resolve) => setImmediate(resolve));
      for (const [to, seqs] of previous) await store.acknowledge(to, seqs, Date.now());
      const taken = new Map<string, number[]>();
      for (let i = 0; i < perTurn && sent < messages; i++, sent++) {
        const from = users[sent % users.length] as string;
        const to = users[(sent * 7 + 1) % users.length] as string;
        const outcome = await store.accept({ from, to, id: `m-${String(sent).padStart(12, '0')}`, body, sentAt: 1, at: Date.now(), digest: digestOf(to, body) }, quota, true);
        if (outcome.kind !== 'accepted') throw new Error(`store answered ${outcome.kind}`);
        const seqs = taken.get(to) ?? [];
        seqs.push(outcome.seq);
        taken.set(to, seqs);
      }
      previous = taken;
    }
    const busy = eventLoopUtilization(before).active;
    return { messages, loopMicros: (busy * 1000) / messages, rate: messages / ((performance.now() - started) / 1000) };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export const formatStoreLoop = (f: StoreLoopFigures) =>
  `store alone, (a)'s pattern (${f.messages.toLocaleString('en-US')} live messages, 200 users, each taken the next turn): ${f.loopMicros.toFixed(2)} µs a message on the event loop, ${Math.round(f.rate).toLocaleString('en-US')} messages/s`;
