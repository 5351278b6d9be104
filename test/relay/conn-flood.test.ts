// A10 conn-flood (RELIABILITY.md), against the headless relay (npm run relay) as a child
// process with its defaults, so that its memory is its own: 20 open sockets per address, the
// 5 s handshake deadline (CONNECT_TIMEOUT_MS in relay/server.ts; RELIABILITY.md's "10 s" is
// older), and, for connections that never send a whole HTTP request, the HTTP server's 10 s
// headers timeout, checked every 2 s (Relay.listen in relay/server.ts); and at most 50 TCP
// connections per address (twice the socket cap plus 10), counted before any HTTP.
import { afterEach, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { startCliRelay, type CliRelay } from '../support/cli.ts';
import { connectClient, eventually, tempDir, type TestClient } from '../support/relay.ts';
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


/** A TCP connection from `from` that sends `bytes` and then nothing; resolves when the relay closes it, with what it answered. */
function silentTcp(port: number, from: string, bytes: string): { socket: Socket; closed: Promise<{ afterMs: number; answer: string }> } {
  const opened = Date.now();
  const socket = connect({ port, host: '127.0.0.1', localAddress: from }, () => {
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
const TCP_PER_ADDRESS = 2 * PER_ADDRESS + 10;
const CONNECT_DEADLINE_MS = 5_000;
const HEADERS_TIMEOUT_MS = 10_000;
const CHECK_INTERVAL_MS = 2_000;

describe('a connection flood from one address', () => {
  it('A10: 200 sockets and 100 silent TCP connections: past 20 sockets refused 429, past 50 TCP closed at once, the rest closed at their deadlines, memory within 50 MB', { timeout: 40_000 }, async () => {
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

    // 100 raw TCP connections from 127.0.0.2 that never upgrade: half send nothing, half half a request.
    const partial = 'GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n';
    const silent = Array.from({ length: 100 }, (_, i) => silentTcp(port, '127.0.0.2', i % 2 === 0 ? '' : partial));
    cleanups.push(() => silent.forEach((t) => t.socket.destroy()));

    // 200 sockets from 127.0.0.1 (another address's flood does not count against it): 10
    // people who join, then 190 WebSockets that never send CONNECT. The first 20 are let in;
    // every one past that is refused before any packet.
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
    // Refused by the socket cap (429 E_TOO_MANY_CONNECTIONS), or, while more than 50 of the
    // 190 were open at once, closed at the TCP cap before their request was read.
    expect(refusals.filter((r) => r === 'Error: upgrade refused with 429').length).toBeGreaterThan(0);
    expect(refusals.filter((r) => !['Error: upgrade refused with 429', 'Error: socket hang up', 'Error: read ECONNRESET'].includes(r))).toEqual([]);
    // (The flood's refused connections close just after their answers: until they have, the
    // address may still be at its TCP cap, and one more is cut before it is answered.)
    expect(await eventually(() => upgradeAnswer(port).catch(() => undefined), 'an answer to one more upgrade')).toEqual({ status: 429, code: 'E_TOO_MANY_CONNECTIONS' });
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

    // Of the silent TCP connections, 50 were held and closed by the headers timeout (408), at
    // most one check interval after it; the other 50 were closed at once, unanswered, before
    // any of those. None is held.
    const limit = HEADERS_TIMEOUT_MS + CHECK_INTERVAL_MS + 1_000;
    const stillOpen = { afterMs: Number.POSITIVE_INFINITY, answer: 'still open' };
    const closes = await Promise.all(silent.map((t) => Promise.race([t.closed, new Promise<typeof stillOpen>((r) => setTimeout(() => r(stillOpen), limit))])));
    const timedOut = closes.filter((c) => /^HTTP\/1\.1 408 /.test(c.answer));
    const cut = closes.filter((c) => c.answer === '');
    expect(timedOut).toHaveLength(TCP_PER_ADDRESS);
    expect(cut).toHaveLength(100 - TCP_PER_ADDRESS);
    for (const { afterMs } of timedOut) expect(afterMs).toBeLessThan(limit);
    expect(Math.max(...cut.map((c) => c.afterMs))).toBeLessThan(Math.min(...timedOut.map((c) => c.afterMs)));
    clearInterval(sampler);
    peak = Math.max(peak, rssOf(pid));

    // The relay is alive and well, and its memory grew less than 50 MB.
    expect(relay.child.exitCode).toBeNull();
    expect((await fetchHello(new URL(url))).protocol).toBe(1);
    expect(peak - baseline).toBeLessThan(50 * 1024 * 1024);
    console.log(`A10: RSS ${(baseline / 2 ** 20).toFixed(1)} MB -> peak ${(peak / 2 ** 20).toFixed(1)} MB; silent TCP past the cap cut after at most ${Math.max(...cut.map((c) => c.afterMs))} ms, the others closed after ${Math.min(...timedOut.map((c) => c.afterMs))}-${Math.max(...timedOut.map((c) => c.afterMs))} ms`);
  });
});
