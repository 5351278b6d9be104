// History figures (`npm run bench -- --only h`): a 1,000,000-message history's page, unread
// and search latencies, and a 20,000-message backlog stored into that same history through the
// real inbox (signatures checked, bodies decrypted) while the event loop's longest stall is
// watched. A stall is wall-clock time between two ticks of a 1 ms timer; on a busy machine
// part of it is other processes holding the CPU, so the main thread's own CPU time during each
// gap is recorded too: `busy` is the most any one gap held, the part this code is answerable for
// (coarse: the kernel counts a thread's CPU time in ticks of a few ms).
import { join } from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { openHistory } from '../../main/core/history/index.ts';
import { createInbox } from '../../main/core/inbox.ts';
import { seal } from '../../main/core/crypto.ts';
import { generateIdentity } from '../../relay/identity.ts';
import type { Envelope } from '../../relay/protocol.ts';

// A vocabulary of 3,000 made-up words drawn with a Zipf-like skew, as real chat text is:
// a few words are everywhere, most are rare. Queries use words of middling frequency.
const SYLLABLES = ['ka', 'lo', 'mi', 'ne', 'ru', 'ta', 'vo', 'se', 'pi', 'do', 'ga', 'ze', 'bu', 'fe', 'ho', 'ji'];
const WORDS = Array.from({ length: 3000 }, (_, i) => `${SYLLABLES[i % 16]}${SYLLABLES[(i >> 4) % 16]}${SYLLABLES[(i >> 8) % 16]}`);
let seed = 42;
const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
const zipf = () => WORDS[Math.min(WORDS.length - 1, Math.floor(Math.exp(random() * Math.log(WORDS.length + 1))) - 1)] ?? 'x';
const sentence = () => Array.from({ length: 4 + Math.floor(random() * 10) }, zipf).join(' ');
const pick = (i: number, salt: number) => WORDS[20 + ((i * 7 + salt * 13) % 200)] ?? 'x';
const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;

function timeMany(runs: number, work: (i: number) => void): { p50: number; p99: number } {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    work(i);
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return { p50: percentile(times, 50), p99: percentile(times, 99) };
}

export interface HistoryFigures {
  messages: number;
  seedSeconds: number;
  page: { p50: number; p99: number };
  unread: { p50: number; p99: number };
  search: { p50: number; p99: number };
  backlog: { messages: number; seconds: number; perSecond: number; maxStallMs: number; maxStallBusyMs: number; maxBusyMs: number; p99LagMs: number };
}

export async function benchHistory(options: { messages: number; peers: number; backlog: number; log: (line: string) => void }): Promise<HistoryFigures> {
  const dir = mkdtempSync(join(tmpdir(), 'parley-bench-history-'));
  try {
    const history = openHistory(join(dir, 'history.db'));
    const peers = Array.from({ length: options.peers }, (_, p) => `peer${String(p).padStart(27, '0')}`.slice(0, 32));
    for (const id of peers) history.seePeer({ id, name: id.slice(0, 8), idKey: 'A'.repeat(43), kaKey: 'B'.repeat(43), lastSeen: 0 });
    const seedStart = performance.now();
    const chunk = 20_000;
    for (let done = 0; done < options.messages; done += chunk) {
      const items = Array.from({ length: Math.min(chunk, options.messages - done) }, (_, k) => {
        const i = done + k;
        return { id: `m${i}-xxxxxxxxxx`, peer: peers[i % peers.length] ?? '', text: sentence(), sentAt: i, seq: i, flagged: false, error: null };
      });
      history.addIncoming(items);
      if ((done / chunk) % 10 === 0) options.log(`  seeded ${done + items.length} messages`);
    }
    const seedSeconds = (performance.now() - seedStart) / 1000;
    for (const id of peers) history.markRead(id, Math.floor(options.messages * 0.9));

    const page = timeMany(2000, (i) => history.page(peers[i % peers.length] ?? '', null, 50));
    const unread = timeMany(2000, () => history.unreadCounts());
    const search = timeMany(300, (i) => history.search(i % 2 ? pick(i, 5) : `${pick(i, 5)} ${pick(i, 6)}`, 50));

    // The backlog: real sealed messages from a new peer, in relay-sized batches, into the big history.
    const alice = generateIdentity();
    const bob = generateIdentity();
    history.seePeer({ id: alice.userId, name: 'Alice', idKey: alice.idKey, kaKey: alice.kaKey, lastSeen: 0 });
    options.log(`  sealing ${options.backlog} messages for the backlog`);
    const envelopes: Envelope[] = Array.from({ length: options.backlog }, (_, i) => {
      const id = `backlog-${i}-xxxxxx`;
      const header = { from: alice.userId, to: bob.userId, id, sentAt: i };
      return { seq: i + 1, kind: 'message', id, from: alice.userId, body: seal(alice, bob.kaKey, header, `backlog message ${i} ${pick(i, 1)}`), sentAt: i, at: i };
    });
    const inbox = createInbox({
      identity: bob, history,
      lookup: async () => ({ ok: true, value: { users: [] } }),
      seePeer: () => undefined, added: () => undefined, updated: () => undefined, progress: () => undefined,
    });
    const lag = monitorEventLoopDelay({ resolution: 5 });
    let maxGap = 0;
    let maxGapBusy = 0;
    let maxBusy = 0;
    let last = performance.now();
    let lastCpu = process.threadCpuUsage();
    const ticker = setInterval(() => {
      const now = performance.now();
      const cpu = process.threadCpuUsage();
      const busy = (cpu.user - lastCpu.user + cpu.system - lastCpu.system) / 1000;
      if (now - last > maxGap) {
        maxGap = now - last;
        maxGapBusy = busy;
      }
      maxBusy = Math.max(maxBusy, busy);
      last = now;
      lastCpu = cpu;
    }, 1);
    lag.enable();
    const start = performance.now();
    for (let i = 0; i < envelopes.length; i += 500) {
      const answer = await inbox(envelopes.slice(i, i + 500));
      if (!answer.ok) throw new Error('inbox refused a batch');
      await new Promise<void>((resolve) => setImmediate(resolve)); // the socket's next event
    }
    const seconds = (performance.now() - start) / 1000;
    clearInterval(ticker);
    lag.disable();
    const stored = history.page(alice.userId, null, 1)[0]?.id;
    history.close();
    if (stored !== `backlog-${options.backlog - 1}-xxxxxx`) throw new Error('backlog not stored');
    return {
      messages: options.messages, seedSeconds, page, unread, search,
      backlog: { messages: options.backlog, seconds, perSecond: options.backlog / seconds, maxStallMs: maxGap, maxStallBusyMs: maxGapBusy, maxBusyMs: maxBusy, p99LagMs: lag.percentile(99) / 1e6 },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function printHistory(f: HistoryFigures): string {
  const ms = (n: number) => `${n.toFixed(2)} ms`;
  return [
    `History (${f.messages.toLocaleString('en')} messages, seeded in ${f.seedSeconds.toFixed(1)} s)`,
    `  newest-50 page      p50 ${ms(f.page.p50)}  p99 ${ms(f.page.p99)}   (target p99 <= 2 ms)`,
    `  unread counts       p50 ${ms(f.unread.p50)}  p99 ${ms(f.unread.p99)}   (target p99 <= 2 ms)`,
    `  FTS5 search         p50 ${ms(f.search.p50)}  p99 ${ms(f.search.p99)}   (target <= 50 ms)`,
    `  backlog of ${f.backlog.messages.toLocaleString('en')} through the inbox: ${f.backlog.perSecond.toFixed(0)} msg/s, longest stall ${ms(f.backlog.maxStallMs)} (target < 50 ms; main thread busy ${ms(f.backlog.maxStallBusyMs)} of it), loop lag p99 ${ms(f.backlog.p99LagMs)}`,
    `                      longest busy stretch between two ticks ${ms(f.backlog.maxBusyMs)}`,
  ].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const quick = process.argv.includes('--quick');
  const figures = await benchHistory({ messages: quick ? 100_000 : 1_000_000, peers: 50, backlog: quick ? 5_000 : 20_000, log: (l) => console.log(l) });
  console.log(printHistory(figures));
}
