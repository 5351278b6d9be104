// A12 cross-site WebSocket hijacking: a web page the user happens to open must not reach the
// relay through their browser. Refusal by Origin comes before any Socket.IO packet, on the
// WebSocket upgrade and on a polling request alike; an allowed origin gets as far as the
// handshake's proof and no further without one; a client without an Origin (the app, from
// Node) still has to prove its key. Then a real Chromium page on another localhost port,
// with the Socket.IO client, tries both transports.
import { createServer, request, type IncomingHttpHeaders } from 'node:http';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { io } from 'socket.io-client';
import { connectClient, startRelay, type TestRelay } from '../support/relay.ts';
import { buildAuth, fetchHello } from '../../relay/handshake.ts';
import { generateIdentity } from '../../relay/identity.ts';
import type { Fields, Level, Logger } from '../../relay/log.ts';
import { launchChromium } from './chromium.ts';
import { ROOT } from './build.ts';

const EVIL = 'http://evil.example';
const CLIENT_BUNDLE = readFileSync(resolve(ROOT, 'node_modules/socket.io-client/dist/socket.io.min.js'));

interface LogEntry {
  level: Level;
  message: string;
  fields: Fields;
}

/** A relay logger that keeps what it was told. */
function recordingLogger(entries: LogEntry[]): Logger {
  const at = (level: Level) => (message: string, fields: Fields = {}) => void entries.push({ level, message, fields });
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

interface PageServer {
  origin: string;
  close(): Promise<void>;
}

/** A web page on a loopback port of its own: an empty document that loads the Socket.IO client. */
async function servePage(): Promise<PageServer> {
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
    if (path === '/') res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end('<!doctype html><title>elsewhere</title><script src="/socket.io.min.js"></script>');
    else if (path === '/socket.io.min.js') res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' }).end(CLIENT_BUNDLE);
    else res.writeHead(404).end();
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((done) => {
      server.closeAllConnections();
      server.close(() => done());
    }),
  };
}

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  /** The response body, or for a completed upgrade the first bytes the relay sent on the socket. */
  body: string;
}

/** A raw request to /socket.io/ on the relay: a WebSocket upgrade or a polling GET. */
function socketIoRequest(port: number, transport: 'websocket' | 'polling', headers: Record<string, string>): Promise<Answer> {
  const upgrade = transport === 'websocket'
    ? { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' }
    : {};
  return new Promise((done, fail) => {
    const req = request({ host: '127.0.0.1', port, path: `/socket.io/?EIO=4&transport=${transport}`, headers: { ...upgrade, ...headers } });
    req.on('upgrade', (res, socket, head) => {
      // The relay speaks first once the WebSocket is open: its Engine.IO open packet.
      const first = (chunk: Buffer) => {
        socket.destroy();
        // An unmasked server text frame under 126 bytes: two header bytes, then the payload.
        done({ status: res.statusCode ?? 0, headers: res.headers, body: chunk.subarray(2).toString() });
      };
      if (head.length > 0) first(head);
      else socket.once('data', first);
    });
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => done({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', fail);
    req.end();
  });
}

/** A Socket.IO handshake from Node, sending `origin` when given; resolves with 'connected' or the connect_error's "<message> <data.code>". */
async function handshake(url: string, options: { origin?: string; auth?: object }): Promise<string> {
  const socket = io(url, {
    transports: ['websocket'],
    reconnection: false,
    forceNew: true,
    ...(options.auth ? { auth: options.auth } : {}),
    ...(options.origin ? { extraHeaders: { origin: options.origin } } : {}),
  });
  try {
    return await new Promise<string>((done) => {
      socket.once('connect', () => done('connected'));
      socket.once('connect_error', (error: Error & { data?: { code?: unknown } }) => done(`${error.message} ${String(error.data?.code)}`));
    });
  } finally {
    socket.disconnect();
  }
}

/** The page's global `io`, from socket.io.min.js: the same client as in Node. */
type ClientIo = typeof io;

interface PageAttempt {
  outcome: 'connected' | 'connect_error' | 'timeout';
  message?: string;
  code?: unknown;
}

/** From inside the page: io(relayUrl) over one transport, once, with a made-up proof. */
function connectFromPage(page: Page, relayUrl: string, transport: 'websocket' | 'polling'): Promise<PageAttempt> {
  return page.evaluate(({ relayUrl, transport }) => new Promise<PageAttempt>((done) => {
    const { io } = window as unknown as { io: ClientIo };
    const socket = io(relayUrl, { transports: [transport], reconnection: false, forceNew: true, timeout: 10_000, auth: { v: 1, name: 'visitor' } });
    const finish = (attempt: PageAttempt) => {
      socket.disconnect();
      done(attempt);
    };
    socket.on('connect', () => finish({ outcome: 'connected' }));
    socket.on('connect_error', (error: Error & { data?: { code?: unknown } }) => finish({ outcome: 'connect_error', message: error.message, code: error.data?.code }));
    setTimeout(() => finish({ outcome: 'timeout' }), 15_000);
  }), { relayUrl, transport });
}

let relay: TestRelay;
let browser: Browser;
/** The app's own page, the one browser origin this relay allows. */
let ownPage: PageServer;
/** Another site, also on loopback, on another port. */
let foreignPage: PageServer;
const log: LogEntry[] = [];
const admitted = () => log.filter((e) => e.message === 'connected');
const originRefusals = (origin: string) => log.filter((e) => e.message === 'refused a foreign origin' && e.fields.origin === origin).length;

beforeAll(async () => {
  [ownPage, foreignPage, browser] = await Promise.all([servePage(), servePage(), launchChromium()]);
  // By default a relay allows no browser origin at all (the app connects from Node, without
  // one); an operator may allow a web client's origin. This one allows the app's page.
  relay = await startRelay({ allowedOrigins: [ownPage.origin], log: recordingLogger(log) });
});
afterAll(async () => {
  await browser?.close();
  await relay?.stop();
  await Promise.all([ownPage?.close(), foreignPage?.close()]);
});

describe('cross-site WebSocket hijacking (A12)', () => {
  it('refuses a foreign Origin with 403 before any Socket.IO packet, over WebSocket and over polling', async () => {
    const before = originRefusals(EVIL);
    for (const transport of ['websocket', 'polling'] as const) {
      const answer = await socketIoRequest(relay.port, transport, { origin: EVIL });
      expect(answer, transport).toMatchObject({ status: 403, body: '{"code":"E_ORIGIN"}' });
      expect(answer.headers['content-type'], transport).toBe('application/json');
      // No CORS grant either: a browser would not let the page read even the refusal.
      expect(answer.headers['access-control-allow-origin'], transport).toBeUndefined();
    }
    expect(originRefusals(EVIL)).toBe(before + 2);
    // A polling request without an Origin is not served at all (the relay speaks WebSocket
    // only): the 403 above is the origin check's, not the transport's.
    expect(await socketIoRequest(relay.port, 'polling', {})).toMatchObject({ status: 400 });
  });

  it("lets the app's own origin through to the handshake's proof, and no further without one", async () => {
    const answer = await socketIoRequest(relay.port, 'websocket', { origin: ownPage.origin });
    expect(answer.status).toBe(101);
    expect(answer.body).toMatch(/^0\{"sid":/); // the Engine.IO open packet
    expect(await handshake(relay.url, { origin: ownPage.origin })).toBe('E_AUTH E_AUTH');
    const admittedBefore = admitted().length;
    const auth = buildAuth(generateIdentity(), await fetchHello(new URL(relay.url)), { name: 'Own page' });
    expect(await handshake(relay.url, { origin: ownPage.origin, auth })).toBe('connected');
    expect(admitted().length).toBe(admittedBefore + 1);
  });

  it('still requires a valid proof from a client that sends no Origin', async () => {
    const admittedBefore = admitted().length;
    expect(await handshake(relay.url, {})).toBe('E_AUTH E_AUTH');
    expect(await handshake(relay.url, { auth: { v: 1, name: 'Mallory', idKey: 'x', sig: 'y' } })).toBe('E_AUTH E_AUTH');
    // Well formed, for a fresh challenge, but signed by someone else's key.
    const hello = await fetchHello(new URL(relay.url));
    const forged = { ...buildAuth(generateIdentity(), hello, { name: 'Mallory' }), sig: buildAuth(generateIdentity(), hello, { name: 'Mallory' }).sig };
    expect(await handshake(relay.url, { auth: forged })).toBe('E_AUTH E_AUTH');
    expect(admitted().length).toBe(admittedBefore);
    // The same relay admits one that proves its key.
    const client = await connectClient(relay.url, { name: 'Native' });
    expect(admitted().length).toBe(admittedBefore + 1);
    client.close();
  });

  it('keeps a real browser page on another localhost port out, over either transport', async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      // What the page tried (by transport), and every frame a WebSocket of it received.
      const tried: string[] = [];
      const frames: string[] = [];
      page.on('websocket', (ws) => {
        tried.push(new URL(ws.url()).searchParams.get('transport') ?? '?');
        ws.on('framereceived', (frame) => frames.push(String(frame.payload)));
      });
      page.on('request', (req) => {
        if (req.url().includes('/socket.io/')) tried.push(new URL(req.url()).searchParams.get('transport') ?? '?');
      });

      // Control: the same page served from the allowed origin reaches the relay's auth step.
      await page.goto(`${ownPage.origin}/`);
      expect(await connectFromPage(page, relay.url, 'websocket')).toEqual({ outcome: 'connect_error', message: 'E_AUTH', code: 'E_AUTH' });
      expect(frames.some((f) => f.startsWith('0{'))).toBe(true);

      await page.goto(`${foreignPage.origin}/`);
      frames.length = 0;
      tried.length = 0;
      const logBefore = log.length;
      const refusalsBefore = originRefusals(foreignPage.origin);

      const overWebSocket = await connectFromPage(page, relay.url, 'websocket');
      expect(overWebSocket.outcome).toBe('connect_error');
      expect(overWebSocket.code).toBeUndefined(); // refused below Socket.IO: no typed error reached the page
      await expect.poll(() => originRefusals(foreignPage.origin)).toBeGreaterThan(refusalsBefore);
      const afterWebSocket = originRefusals(foreignPage.origin);

      const overPolling = await connectFromPage(page, relay.url, 'polling');
      expect(overPolling.outcome).toBe('connect_error');
      expect(overPolling.code).toBeUndefined();
      await expect.poll(() => originRefusals(foreignPage.origin)).toBeGreaterThan(afterWebSocket);

      // Not a single Engine.IO packet reached the page, and the relay admitted no one and never
      // even ran a Socket.IO handshake for it.
      expect(frames).toEqual([]);
      expect(new Set(tried)).toEqual(new Set(['websocket', 'polling']));
      const since = log.slice(logBefore);
      expect(since.filter((e) => e.message === 'connected' || e.message === 'handshake refused')).toEqual([]);
      expect(since.every((e) => e.message === 'refused a foreign origin' && e.fields.origin === foreignPage.origin)).toBe(true);
    } finally {
      await context.close();
    }
  });
});
