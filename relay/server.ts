// createRelay(): the Parley relay. No side effects at import; the caller owns the store it
// passes in until close(), which closes it.
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { Server as EngineServer, type Socket as EngineSocket } from 'engine.io';
import { Server as IoServer } from 'socket.io';
import { DisplayNameSchema, LIMITS, PROTOCOL_VERSION, type ConnectErrorData, type ErrorCode, type Hello, type UserEntry } from './protocol.ts';
import type { Offer, RelayStore, StoredUser } from './mailbox/store.ts';
import { checkAuth, createChallenges } from './auth.ts';
import { RequestBudget, TokenBucket } from './guard.ts';
import { Pump } from './delivery.ts';
import { Sessions } from './sessions.ts';
import { registerHandlers, watchRoom, type RelaySocket, type SocketData } from './handlers.ts';
import { silentLogger, type Logger } from './log.ts';
import { memoryAddressLimits, memoryChallengeLedger, memoryPresence, type RelayCluster } from './state.ts';
import { clientAddress, createHttpHandlers, FairWebSocketServer } from './http.ts';
import type { ServerToClientEvents, UntrustedClientEvents } from './protocol.ts';

export interface RelayOptions {
  /** Where directory, mailbox and idempotency records live. Closed by `close()`. */
  store: RelayStore;
  /** Shown to people who find or join the relay. Default: the host name. */
  name?: string;
  /** When set, clients must present it. Compared in constant time. Default: open. */
  accessCode?: string;
  /** Browser origins allowed to connect. Default: none (the app connects from Node, without an Origin). */
  allowedOrigins?: string[];
  /**
   * Open sockets per remote address. Default 20. TCP connections per address, those not
   * upgraded yet included, are capped at twice this plus 10 on each relay process (room for
   * answered /parley/hello requests whose connections are still closing).
   */
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
  /**
   * Handshake deadline: a connection not admitted this long after it opened (it never sent
   * CONNECT, or was refused) is closed. One whose admission is still being checked then is
   * closed only if it is refused (a relay under load may take longer to check), and at the
   * latest `ADMISSION_GRACE_MS` later. Default 5 s.
   */
  connectTimeoutMs?: number;
  /** Time a client has to acknowledge a delivery batch before it is sent again. Default 15 s. */
  ackTimeoutMs?: number;
  /**
   * Makes this relay one node of a cluster sharing presence, challenges, limits and routing
   * (relay/redis/cluster.ts; pass its store as `store` too). Closed by `close()`.
   * Default: a single relay that keeps these in memory.
   */
  cluster?: RelayCluster;
  /** Peer addresses of reverse proxies whose X-Forwarded-For names the client. Default: none. */
  trustedProxies?: string[];
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
type Refusal = { code: ErrorCode; message: string };

/** The default handshake deadline (RelayOptions.connectTimeoutMs). */
const CONNECT_TIMEOUT_MS = 5_000;

/** How much longer than the deadline an admission being checked may take. */
const ADMISSION_GRACE_MS = 30_000;

/** Where a transport connection stands with the handshake deadline. */
interface Handshake {
  conn: EngineSocket;
  /** CONNECT packets being checked. */
  checking: number;
  admitted: boolean;
  /** The deadline has passed. */
  expired: boolean;
}

/** Closes a connection past its deadline that is neither admitted nor being checked. */
function closeIfDue(handshake: Handshake): void {
  if (handshake.expired && !handshake.admitted && handshake.checking === 0) handshake.conn.close();
}

/** The most directory:changed hints a node sends, one per this many ms. */
const DIRECTORY_HINT_MS = 1_000;

/** Every socket of a user is in this room. */
const userRoom = (userId: string) => `u:${userId}`;

export function createRelay(options: RelayOptions): Relay {
  const { store, cluster } = options;
  const log = options.log ?? silentLogger;
  const now = options.now ?? Date.now;
  const name = DisplayNameSchema.safeParse([...(options.name ?? hostname())].slice(0, LIMITS.nameChars).join('')).data ?? 'Parley relay';
  const rate = options.rate ?? { capacity: 100, perSecond: 50, abuseMs: 10_000 };
  const quota = { messages: options.mailbox?.maxMessages ?? 10_000, bytes: options.mailbox?.maxBytes ?? 50 * 1024 * 1024 };
  const allowedOrigins = options.allowedOrigins ?? [];
  const trustedProxies = new Set(options.trustedProxies ?? []);
  const ackTimeoutMs = options.ackTimeoutMs ?? 15_000;
  const presence = cluster?.presence ?? memoryPresence(now);
  const challenges = createChallenges(store.secret, now, LIMITS.challengeTtlMs, cluster?.challenges ?? memoryChallengeLedger(now));
  const guardOptions = { maxConnectionsPerAddress: options.maxConnectionsPerAddress ?? 20, maxFailures: options.maxAuthFailures ?? 10, failureWindowMs: 60_000, blockMs: 60_000, now };
  const limits = cluster ? cluster.addressLimits(guardOptions) : memoryAddressLimits(guardOptions);
  const sessions = new Sessions();
  const inflight = new Set<Promise<unknown>>();
  /** Users this node has seen, with what others need to know of them (name and keys). */
  const known = new Map<string, string>();
  const profileOf = (u: { name: string; kaKey: string }) => `${u.name}\n${u.kaKey}`;
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
    wsEngine: FairWebSocketServer,
  });
  const connectTimeoutMs = options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS;
  // Socket.IO's own deadline is only the backstop: the handshake deadline is kept below.
  const io: Io = new IoServer({ serveClient: false, connectTimeout: connectTimeoutMs + ADMISSION_GRACE_MS, ...(cluster ? { adapter: cluster.adapter } : {}) });
  io.bind(engine);
  // Something was queued for a user: their streams here page now. In a cluster, the store's
  // writes wake the streams on the other nodes themselves (relay/redis/lua.ts).
  const wake = (userId: string) => sessions.notify(userId);
  const offer = (o: Offer) => sessions.offer(o.to, o.envelope, o.prev);
  cluster?.onWake((w) => (w === 'all' ? sessions.notifyAll() : offer(w)));

  /** Logs a refused handshake; one that was the client's fault counts towards its address's throttle. */
  const refused = (address: string, { code, message }: Refusal) => {
    if (code !== 'E_UNAVAILABLE') limits.failed(address);
    log.warn('handshake refused', { address, code, reason: message });
  };

  const handshakes = new WeakMap<EngineSocket, Handshake>();
  engine.on('connection', (conn: EngineSocket) => {
    const address = clientAddress(conn.request, trustedProxies);
    limits.opened(address);
    const handshake: Handshake = { conn, checking: 0, admitted: false, expired: false };
    handshakes.set(conn, handshake);
    const deadline = setTimeout(() => {
      handshake.expired = true;
      closeIfDue(handshake);
    }, connectTimeoutMs);
    conn.once('close', (reason: string, description?: unknown) => {
      clearTimeout(deadline);
      limits.closed(address);
      // A frame the transport refused before admission (over the frame cap, not valid
      // WebSocket): a failed handshake, slowed down like a wrong proof. A network drop is not.
      if (!handshake.admitted && reason === 'transport error') {
        // (engine.io keeps only the text of ws's error, e.g. "RangeError: Max payload size exceeded".)
        const why = description instanceof Error ? description.message : reason;
        refused(address, { code: /max payload/i.test(why) ? 'E_TOO_LARGE' : 'E_SCHEMA', message: why });
      }
    });
  });

  /** Directory entries with their online flag: online while a socket is connected to any node. */
  const toEntries = async (users: StoredUser[]): Promise<UserEntry[]> => {
    const online = await presence.online(users.map((u) => u.id));
    return users.map((u) => ({ ...u, online: online.has(u.id) }));
  };

  const knownUser = async (id: string) => {
    if (known.has(id)) return true;
    const [found] = await store.getUsers([id]);
    if (found) known.set(id, profileOf(found));
    return found !== undefined;
  };

  /** The handshake after the transport checks: null admits, with socket.data filled in. */
  const admit = async (socket: RelaySocket): Promise<Refusal | null> => {
    let outcome: Awaited<ReturnType<typeof checkAuth>>;
    try {
      outcome = await checkAuth(socket.handshake.auth, { relayId: store.relayId, accessCode, challenges });
    } catch (error) {
      log.error('could not check a handshake challenge', { error: String(error) });
      return { code: 'E_UNAVAILABLE', message: 'the relay cannot check handshakes right now' };
    }
    if (!outcome.ok) return outcome;
    const user = outcome.user;
    let rev: number;
    try {
      rev = await presence.nextRev();
      await store.saveUser({ id: user.userId, name: user.name, idKey: user.idKey, kaKey: user.kaKey, kaSig: user.kaSig, lastSeen: now(), rev });
    } catch (error) {
      log.error('could not save user at handshake', { error: String(error) });
      return { code: 'E_UNAVAILABLE', message: 'the relay cannot store users right now' };
    }
    // New here, or a new name or key: the others learn of it from the directory.
    if (known.get(user.userId) !== profileOf(user)) directoryChanged(rev);
    known.set(user.userId, profileOf(user));
    socket.data.user = user;
    socket.data.budget = new RequestBudget({ ...rate, now });
    socket.data.typing = new TokenBucket(5, 2, now);
    return null;
  };

  io.use((socket, next) => {
    const address = clientAddress(socket.request, trustedProxies);
    const refuse = (refusal: Refusal) => {
      refused(address, refusal);
      const { code, message } = refusal;
      const error = new Error(code) as Error & { data: ConnectErrorData };
      error.data = { code, message };
      next(error);
    };
    if (closing) return refuse({ code: 'E_UNAVAILABLE', message: 'the relay is shutting down' });
    const handshake = handshakes.get(socket.conn) ?? { conn: socket.conn, checking: 0, admitted: false, expired: false };
    handshake.checking += 1;
    void admit(socket)
      .catch((error: unknown): Refusal => {
        log.error('handshake failed', { error: String(error) });
        return { code: 'E_UNAVAILABLE', message: 'the relay could not complete the handshake' };
      })
      .then((refusal) => {
        handshake.checking -= 1;
        if (!refusal) {
          handshake.admitted = true;
          return next();
        }
        refuse(refusal);
        // Refused after the deadline: closed now, as it would have been then, once the answer
        // is queued (Socket.IO sends it on the next tick; close() lets queued packets out).
        setImmediate(() => closeIfDue(handshake));
      });
  });

  // Presence goes only to those who watch the user: telling everyone of every connect costs
  // connections squared. Directory changes (new users, names, keys) are told to everyone,
  // as one small hint a second at most; clients fetch what changed (directory:changes).
  const hint: { rev: number; timer: NodeJS.Timeout | undefined } = { rev: 0, timer: undefined };
  function directoryChanged(rev: number): void {
    hint.rev = Math.max(hint.rev, rev);
    hint.timer ??= setTimeout(() => {
      hint.timer = undefined;
      if (!closing) io.emit('directory:changed', { rev: hint.rev });
    }, DIRECTORY_HINT_MS);
  }
  const announce = (entry: UserEntry, changed = false) => {
    io.to(watchRoom(entry.id)).emit('presence:update', entry);
    if (changed) {
      known.set(entry.id, profileOf(entry));
      directoryChanged(entry.rev);
    }
  };

  /** Announces what the directory holds for the user now (another socket may have renamed them). */
  const setPresence = async (userId: string, online: boolean, rev: number) => {
    const lastSeen = now();
    await store.setLastSeen(userId, lastSeen, rev);
    const [stored] = await store.getUsers([userId]);
    if (stored) announce({ ...stored, lastSeen, rev, online });
  };
  const presenceFailed = (error: unknown) => log.warn('presence update failed', { error: String(error) });

  function track(work: Promise<unknown>): void {
    inflight.add(work);
    void work.finally(() => inflight.delete(work));
  }

  cluster?.onLost((lost) => {
    if (closing) return;
    for (const { userId, rev } of lost) track(setPresence(userId, false, rev).catch(presenceFailed));
  });
  cluster?.onRestored((presumedDead) => {
    sessions.notifyAll();
    if (!presumedDead || closing) return;
    for (const userId of sessions.users()) track(presence.nextRev().then((rev) => setPresence(userId, true, rev)).catch(presenceFailed));
  });

  io.on('connection', (raw) => {
    const socket = raw as RelaySocket;
    const user = socket.data.user;
    const pump = new Pump(user.userId, {
      deliver: (batch, timeoutMs) => socket.timeout(timeoutMs).emitWithAck('message:deliver', batch),
    }, { store, log, batchSize: LIMITS.batchSize, batchBytes: LIMITS.batchBytes, ackTimeoutMs, now, onReceipts: (senders, offers) => (offers ? offers.forEach(offer) : senders.forEach(wake)) });
    void socket.join(userRoom(user.userId));
    log.info('connected', { user: user.userId, address: clientAddress(socket.request, trustedProxies), socket: socket.id });
    sessions.add(user.userId, socket.id, pump);
    registerHandlers(socket, {
      store, log, quota, now, knownUser, toEntries, announce, track,
      wake,
      offer,
      isHere: (userId) => sessions.isOnline(userId),
      nextRev: () => presence.nextRev(),
      closing: () => closing,
      emitTyping: (to, from, typing) => io.to(userRoom(to)).volatile.emit('typing:update', { from, typing }),
    });
    // The socket is counted in the shared presence before its pump first pages: a message
    // accepted on another node meanwhile is then either in that page or followed by a wake-up.
    // Every new socket is announced: it may bring the user online, or a new name or key.
    const joined = presence.join(user.userId).then(
      (rev) => {
        pump.notify();
        return setPresence(user.userId, true, rev);
      },
      (error: unknown) => {
        pump.notify();
        presenceFailed(error);
      },
    );
    track(joined.catch(presenceFailed));
    socket.on('disconnect', (reason) => {
      log.info('disconnected', { user: user.userId, socket: socket.id, reason });
      sessions.remove(user.userId, socket.id);
      // While shutting down nothing is announced; in a cluster the other nodes reap this one.
      if (closing) return;
      const left = joined.catch(() => undefined).then(() => presence.leave(user.userId));
      track(left.then(({ offline, rev }) => (offline && !closing ? setPresence(user.userId, false, rev) : undefined)).catch(presenceFailed));
    });
  });

  const hello = (): Hello => ({ protocol: PROTOCOL_VERSION, relayId: store.relayId, name, accessCode: accessCode !== undefined, challenge: challenges.issue(), challengeTtlMs: LIMITS.challengeTtlMs });
  const { onRequest, onUpgrade, onConnection } = createHttpHandlers({
    limits, allowedOrigins, trustedProxies, log, hello, engine,
    maxTcpPerAddress: 2 * guardOptions.maxConnectionsPerAddress + 10,
    closing: () => closing,
    ownsServer: () => ownServer !== null,
  });

  const attach = (server: HttpServer) => {
    server.on('connection', onConnection);
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
      clearTimeout(hint.timer);
      // Closing the transports (not a Socket.IO disconnect) tells clients to reconnect by themselves.
      engine.close();
      for (const server of servers) {
        server.off('connection', onConnection);
        server.off('request', onRequest);
        server.off('upgrade', onUpgrade);
      }
      ownServer?.closeAllConnections();
      await stopped;
      await store.close();
      if (cluster) {
        await io.of('/').adapter.close();
        await cluster.close();
      }
      log.info('relay stopped');
    },
  };
}
