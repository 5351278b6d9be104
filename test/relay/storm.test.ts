// D4 reconnect-storm (RELIABILITY.md): 500 app-like clients on a real headless relay process,
// which is killed with SIGKILL and started again on the same port and data folder after 1 s.
// While it is down every client queues 10 messages to the next one (a 5,000-message outbox
// backlog). Pass: all 500 are re-authenticated within 15 s of the relay being back, the
// backlog drains within 30 s, and the total-queue check is clean (every message delivered
// once, each conversation in order). Messages the relay held in its mailbox for people who
// were away when it was killed reach them too. The clients reconnect with the app's jittered
// exponential backoff (test/support/failover.ts); the test checks that the storm was one.
import { afterEach, describe, expect, it } from 'vitest';
import { eventually, tempDir } from '../support/relay.ts';
import { freePort, startCliRelay, type CliRelay } from '../support/cli.ts';
import { APP_BACKOFF, FailoverClient } from '../support/failover.ts';
import { totalQueue } from '../support/check.ts';
import { quantile } from '../support/steady.ts';

const CLIENTS = 500;
const BACKLOG_EACH = 10;
/** People offline across the kill, for whom each client leaves one message in the mailbox before it. */
const AWAY = 10;
const DOWN_MS = 1_000;
const REAUTH_MS = 15_000;
const DRAIN_MS = 30_000;

let relay: CliRelay | undefined;
const people: FailoverClient[] = [];
const others: FailoverClient[] = [];
const folders: { remove: () => void }[] = [];
afterEach(() => {
  for (const p of [...people.splice(0), ...others.splice(0)]) p.close();
  relay?.child.kill('SIGKILL');
  relay = undefined;
  for (const f of folders.splice(0)) f.remove();
});

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What went wrong on the clients' side, for failure messages: error kinds with counts. */
function describeErrors(): string {
  const counts = new Map<string, number>();
  for (const p of people) for (const [kind, n] of p.errors) counts.set(kind, (counts.get(kind) ?? 0) + n);
  return `client errors ${JSON.stringify(Object.fromEntries(counts))}`;
}

describe('a reconnect storm', () => {
  it(`re-admits ${CLIENTS} clients within 15 s of a SIGKILLed relay's return, and drains a ${CLIENTS * BACKLOG_EACH}-message backlog within 30 s, once each and in order`, { timeout: 120_000 }, async () => {
    const data = tempDir();
    folders.push(data);
    const port = await freePort();
    // Every client comes from 127.0.0.1: the per-address cap is opened up, nothing else.
    const args = ['--data', data.path, '--port', String(port), '--max-connections', String(CLIENTS + 50)];
    relay = await startCliRelay(args);
    const url = relay.url;
    // Known to the relay, then away.
    const away = Array.from({ length: AWAY }, (_, i) => new FailoverClient([url], { name: `away${i}` }));
    others.push(...away);
    await Promise.all(away.map((a) => a.connect()));
    for (const a of away) a.close();
    people.push(...Array.from({ length: CLIENTS }, (_, i) => new FailoverClient([url], { name: `p${i}` })));
    for (let i = 0; i < CLIENTS; i += 25) await Promise.all(people.slice(i, i + 25).map((p) => p.connect()));
    expect(people.every((p) => p.connected)).toBe(true);
    people.forEach((p, i) => p.send(away[i % AWAY]!.id, `${i}>away${i % AWAY}`));
    await eventually(() => people.every((p) => p.pending === 0), 'the messages for the away people to be accepted', 30_000);

    relay.child.kill('SIGKILL');
    await relay.exited;
    const killedAt = Date.now();
    await eventually(() => people.every((p) => !p.connected), 'every client to notice the relay is gone', 10_000);
    // The backlog: 10 messages from each client to the next, queued while nothing listens.
    people.forEach((p, i) => {
      for (let n = 0; n < BACKLOG_EACH; n += 1) p.send(people[(i + 1) % CLIENTS]!.id, `${i}>${(i + 1) % CLIENTS} #${n}`);
    });
    expect(people.reduce((sum, p) => sum + p.pending, 0)).toBe(CLIENTS * BACKLOG_EACH);
    await pause(Math.max(0, killedAt + DOWN_MS - Date.now()));
    relay = await startCliRelay(args);
    const backAt = Date.now();
    const downMs = backAt - killedAt;

    // Every client connected again (a connection means the relay checked a fresh handshake).
    await eventually(() => people.every((p) => p.connected && p.lastConnectAt >= backAt), 'every client re-authenticated', REAUTH_MS * 2).catch((error: unknown) => {
      throw new Error(`${String(error)}: ${people.filter((p) => p.connected).length} of ${CLIENTS} connected; ${describeErrors()}`, { cause: error });
    });
    const reauthMs = Math.max(...people.map((p) => p.lastConnectAt)) - backAt;
    await eventually(() => people.every((p) => p.pending === 0) && people.reduce((n, p) => n + p.history.length, 0) >= CLIENTS * BACKLOG_EACH, 'the backlog to drain', Math.max(0, backAt + DRAIN_MS * 1.5 - Date.now()));
    const drainMs = Date.now() - backAt;
    // The away people come back after the storm: what the relay held for them before the kill waits for them.
    const returned = away.map((a, i) => new FailoverClient([relay!.url], { identity: a.identity, name: `away${i}` }));
    others.push(...returned);
    await Promise.all(returned.map((a) => a.connect()));
    await eventually(() => returned.every((a) => a.history.length >= CLIENTS / AWAY), 'the away people to get what was held for them', 15_000);
    const everyone = [...people, ...returned];
    const report = totalQueue(everyone);
    const attempts = people.map((p) => p.attempts.filter((t) => t > killedAt).length);
    // The backoff each client chose before its first retry after losing the relay.
    const firstWait = people.map((p) => p.waits.find((w) => w.at >= p.lastLossAt)?.ms ?? Number.NaN).sort((a, b) => a - b);
    console.log(
      `storm: relay down ${downMs} ms; all ${CLIENTS} re-authenticated ${reauthMs} ms after it was back (limit ${REAUTH_MS}), ` +
        `backlog of ${CLIENTS * BACKLOG_EACH} drained after ${drainMs} ms (limit ${DRAIN_MS}); ${CLIENTS} held across the kill delivered; connect attempts per client since the kill: ` +
        `median ${quantile([...attempts].sort((a, b) => a - b), 0.5)}, max ${Math.max(...attempts)}; first backoff after the loss p10 ${firstWait.at(CLIENTS / 10)?.toFixed(0)} ms, p90 ${firstWait.at((CLIENTS * 9) / 10)?.toFixed(0)} ms; ` +
        `clients that failed an attempt after it was back: ${people.filter((p) => p.attempts.filter((t) => t >= backAt).length > 1).length}; ${describeErrors()}`,
    );

    expect(reauthMs).toBeLessThan(REAUTH_MS);
    expect(drainMs).toBeLessThan(DRAIN_MS);
    expect(report).toEqual({ acknowledged: CLIENTS * BACKLOG_EACH + CLIENTS, lost: [], duplicated: [], reordered: [] });
    // The recipients stored exactly what was sent: nothing more (duplicates would show above as two seqs).
    expect(everyone.reduce((n, p) => n + p.history.length, 0)).toBe(CLIENTS * BACKLOG_EACH + CLIENTS);
    // The relay refused nobody on the way back: no throttle, no connection cap, no storage error.
    expect(relay.output()).not.toMatch(/handshake refused|refused a connection/);
    expect(everyone.flatMap((p) => [...p.errors.keys()]).filter((k) => /^(connect:)?E_/.test(k)), describeErrors()).toEqual([]);

    // It was a storm as the app makes one (main/core/connection.ts: socket.io-client waits
    // 500 ms · 2^k ± 50 %, at most 10 s, before its k-th retry). Jitter: the first backoffs are
    // spread (uniform over 250..750 ms puts p10 and p90 400 ms apart; without jitter, 0).
    // Exponential: each retry came at least the backoff's lower bound after the attempt before
    // it, as observed, however loaded the machine (lateness only adds).
    expect(firstWait.at((CLIENTS * 9) / 10)! - firstWait.at(CLIENTS / 10)!).toBeGreaterThan(250);
    const tooSoon = people.filter((p) => {
      const tries = p.attempts.filter((t) => t >= p.lastLossAt);
      return tries.some((t, k) => k > 0 && t - tries[k - 1]! < Math.min(APP_BACKOFF.maxMs, APP_BACKOFF.minMs * 2 ** k) * (1 - APP_BACKOFF.jitter) - 5);
    });
    expect(tooSoon.length, 'clients that retried sooner than exponential backoff allows').toBe(0);
  });
});
