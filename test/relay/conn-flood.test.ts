// A10 conn-flood (RELIABILITY.md), against the headless relay (npm run relay) as a child
// process with its defaults, so that its memory is its own: 20 open sockets per address, the
// 5 s handshake deadline (CONNECT_TIMEOUT_MS in relay/server.ts; RELIABILITY.md's "10 s" is
// older), and, for connections that never send a whole HTTP request, the HTTP server's 10 s
// headers timeout, checked every 2 s (Relay.listen in relay/server.ts).
import { afterEach, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { startCliRelay, type CliRelay } from '../support/cli.ts';
import { connectClient, tempDir, type TestClient } from '../support/relay.ts';
import { openRawWebSocket, upgradeAnswer, type RawWebSocket } from '../support/raw-ws.ts';
import { fetchHello } from '../../relay/handshake.ts';

let relay: CliRelay | undefined;
const cleanups: (() => void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) c();
  relay?.child.kill('SIGTERM');
  await relay?.exited;
  relay = undefined;
});

/** The child's resident memory, bytes. */
function rssOf(pid: number): number {
  const kb = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb) * 1024;
}


/** A TCP connection that sends `bytes` and then nothing; resolves when the relay closes it, with what it answered. */
function silentTcp(port: number, bytes: string): { socket: Socket; closed: Promise<{ afterMs: number; answer: string }> } {
  const opened = Date.now();
  const socket = connect(port, '127.0.0.1', () => {
    if (bytes) socket.write(bytes);
  });
  let answer = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => (answer += chunk));
  socket.on('error', () => socket.destroy());
  const closed = new Promise<{ afterMs: number; answer: string }>((resolve) => socket.once('close', () => resolve({ afterMs: Date.now() - opened, answer })));
  return { socket, closed };
}

const PER_ADDRESS = 20; // --max-connections default
const CONNECT_DEADLINE_MS = 5_000;
const HEADERS_TIMEOUT_MS = 10_000;
const CHECK_INTERVAL_MS = 2_000;

describe('a connection flood from one address', () => {
  it('A10: 200 sockets and 100 silent TCP connections: past 20 refused 429, the unadmitted closed at their deadlines, memory within 50 MB', { timeout: 40_000 }, async () => {
    const dir = tempDir();
    cleanups.push(dir.remove);
    relay = await startCliRelay(['--data', dir.path, '--log-level', 'warn']);
    const { port, url } = relay;
    const pid = relay.child.pid ?? 0;
    // Warm up (the first handshake loads and compiles what every later one uses), then measure.
    (await connectClient(url)).close();
    await new Promise((r) => setTimeout(r, 300));
    const baseline = rssOf(pid);
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, rssOf(pid))), 100);
    cleanups.push(() => clearInterval(sampler));

    // 100 raw TCP connections that never upgrade: half send nothing, half half a request.
    const partial = 'GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n';
    const silent = Array.from({ length: 100 }, (_, i) => silentTcp(port, i % 2 === 0 ? '' : partial));
    cleanups.push(() => silent.forEach((t) => t.socket.destroy()));

    // 200 sockets from 127.0.0.1: 10 people who join, then 190 WebSockets that never send
    // CONNECT. The first 20 are let in; every one past that is refused before any packet.
    const people: TestClient[] = [];
    cleanups.push(() => people.forEach((p) => p.close()));
    for (let i = 0; i < 10; i++) people.push(await connectClient(url));
    type Attempt = { ws: RawWebSocket; opened: number } | { refused: string };
    const attempts = await Promise.all(Array.from({ length: 190 }, async (): Promise<Attempt> => {
      try {
        return { ws: await openRawWebSocket(port), opened: Date.now() };
      } catch (error) {
        return { refused: String(error) };
      }
    }));
    const lurkers = attempts.flatMap((a) => ('ws' in a ? [a] : []));
    cleanups.push(() => lurkers.forEach((l) => l.ws.destroy()));
    expect(lurkers).toHaveLength(PER_ADDRESS - people.length);
    const refusals = attempts.flatMap((a) => ('refused' in a ? [a.refused] : []));
    expect(refusals).toHaveLength(190 - lurkers.length);
    expect(new Set(refusals)).toEqual(new Set(['Error: upgrade refused with 429']));
    expect(await upgradeAnswer(port)).toEqual({ status: 429, code: 'E_TOO_MANY_CONNECTIONS' });
    await expect(connectClient(url)).rejects.toThrow();

    // The never-admitted WebSockets are closed at the handshake deadline, not before; the
    // people who joined stay, and their slots free up for others.
    const closedAfter = async ({ ws, opened }: { ws: RawWebSocket; opened: number }) => ((await ws.closedWithin(CONNECT_DEADLINE_MS + 1_500)) ? Date.now() - opened : 'still open');
    for (const ms of await Promise.all(lurkers.map(closedAfter))) {
      expect(ms).toBeTypeOf('number');
      expect(ms).toBeGreaterThan(CONNECT_DEADLINE_MS - 1_000);
      expect(ms).toBeLessThan(CONNECT_DEADLINE_MS + 1_500);
    }
    expect(people.every((p) => p.socket.connected)).toBe(true);
    expect(await people[0]!.request('directory:get', { ids: [people[1]!.id] })).toMatchObject({ ok: true, value: { users: [{ id: people[1]!.id, online: true }] } });
    const late = await connectClient(url);
    people.push(late);

    // The silent TCP connections are closed by the headers timeout (408), at most one check
    // interval after it: none is held.
    const limit = HEADERS_TIMEOUT_MS + CHECK_INTERVAL_MS + 1_000;
    const held = { afterMs: Number.POSITIVE_INFINITY, answer: 'still open' };
    const closes = await Promise.all(silent.map((t) => Promise.race([t.closed, new Promise<typeof held>((r) => setTimeout(() => r(held), limit))])));
    for (const { afterMs, answer } of closes) {
      expect(answer).toMatch(/^HTTP\/1\.1 408 /);
      expect(afterMs).toBeLessThan(limit);
    }
    clearInterval(sampler);
    peak = Math.max(peak, rssOf(pid));

    // The relay is alive and well, and its memory grew less than 50 MB.
    expect(relay.child.exitCode).toBeNull();
    expect((await fetchHello(new URL(url))).protocol).toBe(1);
    expect(peak - baseline).toBeLessThan(50 * 1024 * 1024);
    console.log(`A10: RSS ${(baseline / 2 ** 20).toFixed(1)} MB -> peak ${(peak / 2 ** 20).toFixed(1)} MB; silent TCP closed after ${Math.min(...closes.map((c) => c.afterMs))}-${Math.max(...closes.map((c) => c.afterMs))} ms`);
  });
});
