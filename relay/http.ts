// The relay's HTTP surface: GET /parley/hello, and the WebSocket upgrades on /socket.io/
// with the checks that run before any Socket.IO packet (shutdown, origin, address limits);
// other requests to /socket.io/ are checked by origin too.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type ServerOptions as WebSocketServerOptions } from 'ws';
import { HELLO_PATH, SOCKET_PATH, type ErrorCode, type Hello } from './protocol.ts';
import { originAllowed } from './guard.ts';
import type { AddressLimits } from './state.ts';
import type { Logger } from './log.ts';
import { canonicalAddress } from './addresses.ts';

/**
 * The client's address: the peer's, or, when the peer is a trusted reverse proxy, the last
 * address in X-Forwarded-For (the one that proxy appended).
 */
export function clientAddress(req: IncomingMessage, trustedProxies: ReadonlySet<string>): string {
  const peer = canonicalAddress(req.socket.remoteAddress ?? 'unknown');
  if (!trustedProxies.has(peer)) return peer;
  const header = req.headers['x-forwarded-for'];
  const forwarded = (Array.isArray(header) ? header.join(',') : (header ?? '')).slice(-1024).split(',').map((s) => s.trim()).filter(Boolean).at(-1);
  return forwarded && forwarded.length <= 64 ? canonicalAddress(forwarded) : peer;
}

/**
 * The WebSocket server under Engine.IO, handing on each socket's messages one per turn of the
 * event loop (ws calls the default, all of a read at once, synchronous events). A client
 * flooding its socket then gets its turn like everyone else: its unread frames wait in TCP,
 * which slows it down, instead of holding the loop for seconds while the relay refuses
 * them (A9: others' answers and the loop's lag stay within 100 ms and 50 ms).
 */
export class FairWebSocketServer extends WebSocketServer {
  constructor(options: WebSocketServerOptions, callback?: () => void) {
    super({ ...options, allowSynchronousEvents: false }, callback);
  }
}

function refuseUpgrade(socket: Duplex, status: number, code: ErrorCode): void {
  // The peer may reset the connection while we answer: that must not become an uncaught error.
  socket.on('error', () => socket.destroy());
  const body = JSON.stringify({ code });
  socket.end(`HTTP/1.1 ${status} ${status === 403 ? 'Forbidden' : status === 429 ? 'Too Many Requests' : 'Service Unavailable'}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
}

export interface HttpContext {
  limits: AddressLimits;
  /**
   * TCP connections one peer address may hold open on this node, upgraded or not (trusted
   * proxies are not counted: they carry many clients). Past it a connection is closed at once.
   */
  maxTcpPerAddress: number;
  allowedOrigins: readonly string[];
  trustedProxies: ReadonlySet<string>;
  log: Logger;
  closing: () => boolean;
  /** True when the relay runs its own HTTP server (and answers what is not its own). */
  ownsServer: () => boolean;
  hello: () => Hello;
  engine: {
    handleRequest(req: IncomingMessage, res: ServerResponse): void;
    handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  };
}

export function createHttpHandlers(ctx: HttpContext) {
  /** True, and logged, when a browser page from an origin not on the allow-list asks. */
  const foreign = (req: IncomingMessage): boolean => {
    if (originAllowed(req.headers.origin, ctx.allowedOrigins)) return false;
    ctx.log.warn('refused a foreign origin', { address: clientAddress(req, ctx.trustedProxies), origin: req.headers.origin });
    return true;
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (path === HELLO_PATH) {
      // Each answer closes its connection: a client asks once per connect, and an idle
      // keep-alive connection would only hold one of its address's TCP slots.
      res.shouldKeepAlive = false;
      void ctx.limits.isThrottled(clientAddress(req, ctx.trustedProxies)).catch(() => false).then((throttled) => {
        if (throttled) res.writeHead(429, { 'content-type': 'application/json' }).end(JSON.stringify({ code: 'E_THROTTLED' }));
        else if (req.method !== 'GET') res.writeHead(405, { allow: 'GET' }).end();
        else res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(ctx.hello()));
      });
    } else if (path.startsWith(SOCKET_PATH)) {
      // Only WebSocket is served, but a browser's polling request from a foreign page is
      // refused as its upgrade would be: 403 by Origin, before Engine.IO sees it.
      if (foreign(req)) res.writeHead(403, { connection: 'close', 'content-type': 'application/json' }).end(JSON.stringify({ code: 'E_ORIGIN' }));
      else ctx.engine.handleRequest(req, res);
    } else if (ctx.ownsServer()) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('Parley relay: nothing here.\n');
    }
  };

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (!path.startsWith(SOCKET_PATH)) {
      if (ctx.ownsServer()) socket.destroy();
      return;
    }
    if (ctx.closing()) return refuseUpgrade(socket, 503, 'E_UNAVAILABLE');
    if (foreign(req)) return refuseUpgrade(socket, 403, 'E_ORIGIN');
    const address = clientAddress(req, ctx.trustedProxies);
    // The limits may live in Redis: a reset while we ask must not become an uncaught error.
    const onError = () => socket.destroy();
    socket.on('error', onError);
    const unchecked = (error: unknown): ErrorCode => {
      // Refused: admitted, it would be given back at its close without having been counted,
      // letting another connection past the cap.
      ctx.log.error('could not check the connection limits; connection refused', { address, error: String(error) });
      return 'E_UNAVAILABLE';
    };
    void ctx.limits.admit(address).catch(unchecked).then((refusal) => {
      socket.off('error', onError);
      if (refusal) {
        ctx.log.warn('refused a connection', { address, code: refusal });
        return socket.destroyed ? undefined : refuseUpgrade(socket, refusal === 'E_UNAVAILABLE' ? 503 : 429, refusal);
      }
      // Counted from admit() until this TCP connection closes: whether it becomes a
      // connection or not (refused below, or by Engine.IO), and however that ends.
      if (socket.destroyed) return ctx.limits.closed(address);
      socket.once('close', () => ctx.limits.closed(address));
      if (ctx.closing()) return refuseUpgrade(socket, 503, 'E_UNAVAILABLE');
      ctx.engine.handleUpgrade(req, socket, head);
    });
  };

  // Counted before any HTTP: a connection that never sends a request is held until the
  // headers timeout (10 s), and those are not counted by `limits`, which sees upgrades.
  const tcp = new Map<string, number>();
  const onConnection = (socket: Socket) => {
    const peer = canonicalAddress(socket.remoteAddress ?? 'unknown');
    if (ctx.trustedProxies.has(peer)) return;
    const open = tcp.get(peer) ?? 0;
    if (open >= ctx.maxTcpPerAddress) {
      ctx.log.warn('refused a connection', { address: peer, code: 'E_TOO_MANY_CONNECTIONS', tcp: open });
      socket.destroy();
      return;
    }
    tcp.set(peer, open + 1);
    socket.once('close', () => {
      const left = (tcp.get(peer) ?? 1) - 1;
      if (left > 0) tcp.set(peer, left);
      else tcp.delete(peer);
    });
  };

  return { onRequest, onUpgrade, onConnection };
}
