// createRelay(): the Parley relay. No side effects at import; the caller owns the store it
// passes in until close(), which closes it.
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { hostname } from 'node:os';
import { Server as EngineServer } from 'engine.io';
import { Server as IoServer } from 'socket.io';
import { DisplayNameSchema, HELLO_PATH, LIMITS, PROTOCOL_VERSION, SOCKET_PATH, type ConnectErrorData, type ErrorCode, type Hello, type UserEntry } from './protocol.ts';
import type { RelayStore, StoredUser } from './mailbox/store.ts';
import { checkAuth, createChallenges } from './auth.ts';
import { AddressGuard, RequestBudget, TokenBucket, originAllowed } from './guard.ts';
import { Pump } from './delivery.ts';
import { Sessions, createRevisions } from './sessions.ts';
import { registerHandlers, type RelaySocket, type SocketData } from './handlers.ts';
import { silentLogger, type Logger } from './log.ts';
import type { Envelope, ServerToClientEvents, UntrustedClientEvents } from './protocol.ts';

export interface RelayOptions {
  /** Where directory, mailbox and idempotency records live. Closed by `close()`. */
  store: RelayStore;
  /** Shown to people who find or join the relay. Default: the host name. */
  name?: string;
  /** When set, clients must present it. Compared in constant time. Default: open. */
  accessCode?: string;
  /** Browser origins allowed to connect. Default: none (the app connects from Node, without an Origin). */
  allowedOrigins?: string[];
  /** Open sockets per remote address. Default 20. */
  maxConnectionsPerAddress?: number;
  /** Failed handshakes per address per minute before it is refused for a minute. Default 10. */
  maxAuthFailures?: number;
  /** Per-socket request budget: burst, sustained rate, and how long over it before disconnect. */
  rate?: { capacity: number; perSecond: number; abuseMs: number };
  /** Per-recipient mailbox cap. Default 10,000 messages or 50 MB. */
  mailbox?: { maxMessages: number; maxBytes: number };
  /** Heartbeat: a vanished peer is noticed within interval + timeout. Default 10 s + 8 s. */
  pingIntervalMs?: number;
  pingTimeoutMs?: number;
  /** Time to complete the handshake. Default 10 s. */
  connectTimeoutMs?: number;
  /** Time a client has to acknowledge a delivery batch before it is sent again. Default 15 s. */
  ackTimeoutMs?: number;
  log?: Logger;
  now?: () => number;
}

export interface Relay {
  readonly relayId: string;
  /** Listens on its own HTTP server. Resolves with the bound address. */
  listen(port: number, host?: string): Promise<AddressInfo>;
  /** Serves on an existing HTTP server, on /parley/ and /socket.io/ only. */
  attach(server: HttpServer): void;
  /** Changes (or with undefined, removes) the access code for new connections; connected people stay. */
  setAccessCode(code: string | undefined): void;
  /** Stops accepting, lets in-flight requests finish, disconnects everyone, closes the store. */
  close(): Promise<void>;
  readonly address: AddressInfo | null;
}

type Io = IoServer<UntrustedClientEvents, ServerToClientEvents, Record<string, never>, SocketData>;

/** Every socket of a user is in this room. */
const userRoom = (userId: string) => `u:${userId}`;

const remoteAddress = (req: IncomingMessage) => req.socket.remoteAddress ?? 'unknown';

function refuseUpgrade(socket: Duplex, status: number, code: ErrorCode): void {
  // The peer may reset the connection while we answer: that must not become an uncaught error.
  socket.on('error', () => socket.destroy());
  const body = JSON.stringify({ code });
  socket.end(`HTTP/1.1 ${status} ${status === 403 ? 'Forbidden' : status === 429 ? 'Too Many Requests' : 'Service Unavailable'}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
}

export function createRelay(options: RelayOptions): Relay {
  const { store } = options;
  const log = options.log ?? silentLogger;
  const now = options.now ?? Date.now;
  const name = DisplayNameSchema.safeParse([...(options.name ?? hostname())].slice(0, LIMITS.nameChars).join('')).data ?? 'Parley relay';
  const rate = options.rate ?? { capacity: 100, perSecond: 50, abuseMs: 10_000 };
  const quota = { messages: options.mailbox?.maxMessages ?? 10_000, bytes: options.mailbox?.maxBytes ?? 50 * 1024 * 1024 };
  const allowedOrigins = options.allowedOrigins ?? [];
  const ackTimeoutMs = options.ackTimeoutMs ?? 15_000;
  const challenges = createChallenges(store.secret, now);
  const guard = new AddressGuard({ maxConnectionsPerAddress: options.maxConnectionsPerAddress ?? 20, maxFailures: options.maxAuthFailures ?? 10, failureWindowMs: 60_000, blockMs: 60_000, now });
  const sessions = new Sessions();
  const nextRev = createRevisions(now);
  const inflight = new Set<Promise<unknown>>();
  const known = new Set<string>();
  let closing = false;
  let accessCode = options.accessCode;
  let ownServer: HttpServer | null = null;
  const servers: HttpServer[] = [];

  const engine = new EngineServer({
    transports: ['websocket'],
    maxHttpBufferSize: LIMITS.frameBytes,
    pingInterval: options.pingIntervalMs ?? 10_000,
    pingTimeout: options.pingTimeoutMs ?? 8_000,
    perMessageDeflate: false,
    httpCompression: false,
  });
  const io: Io = new IoServer({ serveClient: false, connectTimeout: options.connectTimeoutMs ?? 10_000 });
  io.bind(engine);

  engine.on('connection', (conn: { remoteAddress: string; once(event: 'close', fn: () => void): void }) => {
    const address = conn.remoteAddress;
    guard.opened(address);
    conn.once('close', () => guard.closed(address));
  });

  const toEntry = (u: StoredUser): UserEntry => ({ ...u, online: sessions.isOnline(u.id) });

  const knownUser = async (id: string) => {
    if (known.has(id)) return true;
    const found = (await store.getUsers([id])).length > 0;
    if (found) known.add(id);
    return found;
  };

  io.use((socket, next) => {
    const address = socket.handshake.address;
    const refuse = (code: ErrorCode, message: string) => {
      if (code !== 'E_UNAVAILABLE') guard.failed(address);
      log.warn('handshake refused', { address, code, reason: message });
      const error = new Error(code) as Error & { data: ConnectErrorData };
      error.data = { code, message };
      next(error);
    };
    if (closing) return refuse('E_UNAVAILABLE', 'the relay is shutting down');
    const outcome = checkAuth(socket.handshake.auth, { relayId: store.relayId, accessCode, challenges });
    if (!outcome.ok) return refuse(outcome.code, outcome.message);
    const user = outcome.user;
    const stored: StoredUser = { id: user.userId, name: user.name, idKey: user.idKey, kaKey: user.kaKey, kaSig: user.kaSig, lastSeen: now(), rev: nextRev() };
    store.saveUser(stored).then(
      () => {
        known.add(user.userId);
        socket.data.user = user;
        socket.data.budget = new RequestBudget({ ...rate, now });
        socket.data.typing = new TokenBucket(5, 2, now);
        next();
      },
      (error: unknown) => {
        log.error('could not save user at handshake', { error: String(error) });
        const failure = new Error('E_UNAVAILABLE') as Error & { data: ConnectErrorData };
        failure.data = { code: 'E_UNAVAILABLE', message: 'the relay cannot store users right now' };
        next(failure);
      },
    );
  });

  const announce = (entry: UserEntry) => io.emit('presence:update', entry);

  /** Announces what the directory holds for the user now (another socket may have renamed them). */
  const setPresence = async (userId: string, online: boolean) => {
    const lastSeen = now();
    const rev = nextRev();
    await store.setLastSeen(userId, lastSeen, rev);
    const [stored] = await store.getUsers([userId]);
    if (stored) announce({ ...stored, lastSeen, rev, online });
  };

  const onAcknowledged = (recipient: string, removed: Envelope[]) => {
    const bySender = new Map<string, string[]>();
    for (const e of removed) {
      if (e.kind !== 'message') continue;
      const ids = bySender.get(e.from) ?? [];
      ids.push(e.id);
      bySender.set(e.from, ids);
    }
    for (const [sender, ids] of bySender) {
      const work = store.postReceipt(sender, { from: recipient, state: 'delivered', ids, at: now() }).then(
        (posted) => {
          sessions.notify(sender);
          return posted.durable;
        },
      ).catch((error: unknown) => log.warn('could not queue a delivery receipt', { error: String(error) }));
      track(work);
    }
  };

  function track(work: Promise<unknown>): void {
    inflight.add(work);
    void work.finally(() => inflight.delete(work));
  }

  io.on('connection', (raw) => {
    const socket = raw as RelaySocket;
    const user = socket.data.user;
    const pump = new Pump(user.userId, {
      deliver: (batch, timeoutMs) => socket.timeout(timeoutMs).emitWithAck('message:deliver', batch),
    }, { store, log, batchSize: LIMITS.batchSize, batchBytes: LIMITS.batchBytes, ackTimeoutMs, onAcknowledged });
    void socket.join(userRoom(user.userId));
    log.info('connected', { user: user.userId, address: socket.handshake.address, socket: socket.id });
    // Every new socket is announced: it may bring the user online, or a new name or key.
    sessions.add(user.userId, socket.id, pump);
    track(setPresence(user.userId, true).catch((e: unknown) => log.warn('presence update failed', { error: String(e) })));
    registerHandlers(socket, {
      store, sessions, log, quota, now, nextRev, toEntry, announce, knownUser, track,
      closing: () => closing,
      emitTyping: (to, from, typing) => io.to(userRoom(to)).volatile.emit('typing:update', { from, typing }),
    });
    socket.on('disconnect', (reason) => {
      log.info('disconnected', { user: user.userId, socket: socket.id, reason });
      if (sessions.remove(user.userId, socket.id) && !closing) {
        track(setPresence(user.userId, false).catch((e: unknown) => log.warn('presence update failed', { error: String(e) })));
      }
    });
    pump.notify();
  });

  const hello = (): Hello => ({ protocol: PROTOCOL_VERSION, relayId: store.relayId, name, accessCode: accessCode !== undefined, challenge: challenges.issue(), challengeTtlMs: LIMITS.challengeTtlMs });

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (path === HELLO_PATH) {
      if (guard.isThrottled(remoteAddress(req))) {
        res.writeHead(429, { 'content-type': 'application/json' }).end(JSON.stringify({ code: 'E_THROTTLED' }));
      } else if (req.method !== 'GET') {
        res.writeHead(405, { allow: 'GET' }).end();
      } else {
        res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(hello()));
      }
    } else if (path.startsWith(SOCKET_PATH)) {
      engine.handleRequest(req, res);
    } else if (ownServer) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('Parley relay: nothing here.\n');
    }
  };

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (!path.startsWith(SOCKET_PATH)) {
      if (ownServer) socket.destroy();
      return;
    }
    const address = remoteAddress(req);
    if (closing) return refuseUpgrade(socket, 503, 'E_UNAVAILABLE');
    if (!originAllowed(req.headers.origin, allowedOrigins)) {
      log.warn('refused a foreign origin', { address, origin: req.headers.origin });
      return refuseUpgrade(socket, 403, 'E_ORIGIN');
    }
    const refusal = guard.refusal(address);
    if (refusal) {
      log.warn('refused a connection', { address, code: refusal });
      return refuseUpgrade(socket, 429, refusal);
    }
    engine.handleUpgrade(req, socket, head);
  };

  const attach = (server: HttpServer) => {
    server.on('request', onRequest);
    server.on('upgrade', onUpgrade);
    servers.push(server);
  };

  return {
    relayId: store.relayId,
    get address() {
      const a = ownServer?.address();
      return a && typeof a === 'object' ? a : null;
    },
    attach,
    setAccessCode(code) {
      accessCode = code;
    },
    listen(port, host = '127.0.0.1') {
      const server = createServer({ connectionsCheckingInterval: 2_000, headersTimeout: 10_000, requestTimeout: 10_000 });
      ownServer = server;
      attach(server);
      return new Promise<AddressInfo>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve(server.address() as AddressInfo);
        });
      });
    },
    async close() {
      if (closing) return;
      closing = true;
      const stopped = ownServer ? new Promise<void>((resolve) => ownServer?.close(() => resolve())) : Promise.resolve();
      while (inflight.size > 0) await Promise.allSettled([...inflight]);
      sessions.stopAll();
      // Closing the transports (not a Socket.IO disconnect) tells clients to reconnect by themselves.
      engine.close();
      for (const server of servers) {
        server.off('request', onRequest);
        server.off('upgrade', onUpgrade);
      }
      ownServer?.closeAllConnections();
      await stopped;
      await store.close();
      log.info('relay stopped');
    },
  };
}
