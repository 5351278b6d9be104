// createRelay(): the Parley relay. No side effects at import; the caller owns the store it
// passes in until close(), which closes it.
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { Server as EngineServer } from 'engine.io';
import { Server as IoServer } from 'socket.io';
import { DisplayNameSchema, LIMITS, PROTOCOL_VERSION, type Hello } from './protocol.ts';
import type { RelayStore } from './mailbox/store.ts';
import { checkAuth, createChallenges } from './auth.ts';
import { browserOrigin, RequestBudget, TokenBucket } from './guard.ts';
import { Pump, socketTarget } from './delivery.ts';
import { Sessions } from './sessions.ts';
import { registerHandlers, type RelayIo, type RelaySocket } from './handlers.ts';
import { ADMISSION_GRACE_MS, CONNECT_TIMEOUT_MS, guardAdmission } from './admission.ts';
import { createDirectory } from './directory.ts';
import { silentLogger, type Logger } from './log.ts';
import { memoryAddressLimits, memoryChallengeLedger, memoryPresence, type RelayCluster } from './state.ts';
import { clientAddress, createHttpHandlers, FairWebSocketServer } from './http.ts';
import { canonicalAddress } from './addresses.ts';

export interface RelayOptions {
  /** Where directory, mailbox and idempotency records live. Closed by `close()`. */
  store: RelayStore;
  /** Shown to people who find or join the relay. Default: the host name. */
  name?: string;
  /** When set, clients must present it. Compared in constant time. Default: open. */
  accessCode?: string;
  /**
   * Browser origins allowed to connect, such as `https://app.example.com`. Each is compared as
   * browsers send it (`new URL(v).origin`: `HTTPS://App.Example.com:443/` is the same); one that
   * no browser sends (a path, query or fragment; file: or javascript:) throws. Default: none
   * (the app connects from Node, without an Origin).
   */
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
  /** IP addresses of reverse proxies whose X-Forwarded-For names the client (an IPv4 one also matches its IPv4-mapped IPv6 form). Default: none. */
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

/** Every socket of a user is in this room. */
const userRoom = (userId: string) => `u:${userId}`;

export function createRelay(options: RelayOptions): Relay {
  const { store, cluster } = options;
  const log = options.log ?? silentLogger;
  const now = options.now ?? Date.now;
  const name = DisplayNameSchema.safeParse([...(options.name ?? hostname())].slice(0, LIMITS.nameChars).join('')).data ?? 'Parley relay';
  const rate = options.rate ?? { capacity: 100, perSecond: 50, abuseMs: 10_000 };
  const quota = { messages: options.mailbox?.maxMessages ?? 10_000, bytes: options.mailbox?.maxBytes ?? 50 * 1024 * 1024 };
  const allowedOrigins = (options.allowedOrigins ?? []).map((url) => {
    const origin = browserOrigin(url);
    if (origin === undefined) throw new Error(`allowedOrigins: ${JSON.stringify(url)} is not a browser origin (scheme://host[:port])`);
    return origin;
  });
  const trustedProxies = new Set((options.trustedProxies ?? []).map(canonicalAddress));
  const ackTimeoutMs = options.ackTimeoutMs ?? 15_000;
  const presence = cluster?.presence ?? memoryPresence(now);
  const challenges = createChallenges(store.secret, now, LIMITS.challengeTtlMs, cluster?.challenges ?? memoryChallengeLedger(now));
  const guardOptions = { maxConnectionsPerAddress: options.maxConnectionsPerAddress ?? 20, maxFailures: options.maxAuthFailures ?? 10, failureWindowMs: 60_000, blockMs: 60_000, now };
  const limits = cluster ? cluster.addressLimits(guardOptions) : memoryAddressLimits(guardOptions);
  const sessions = new Sessions();
  const inflight = new Set<Promise<unknown>>();
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
  const io: RelayIo = new IoServer({ serveClient: false, connectTimeout: connectTimeoutMs + ADMISSION_GRACE_MS, ...(cluster ? { adapter: cluster.adapter } : {}) });
  io.bind(engine);
  // Something was queued for a user: their streams here page now. In a cluster, the store's
  // writes wake the streams on the other nodes themselves (relay/redis/lua.ts).
  const wake = (userId: string) => sessions.notify(userId);
  cluster?.onWake((w) => (w === 'all' ? sessions.notifyAll() : sessions.offer([w])));

  const directory = createDirectory({ store, presence, io, connections: () => engine.clientsCount, now, closing: () => closing });
  const { announce, setPresence } = directory;

  guardAdmission({
    engine, io, limits, log, trustedProxies, connectTimeoutMs,
    closing: () => closing,
    admit: async (socket) => {
      let outcome: Awaited<ReturnType<typeof checkAuth>>;
      try {
        outcome = await checkAuth(socket.handshake.auth, { relayId: store.relayId, accessCode, challenges, keysOnRecord: directory.keysOnRecord });
      } catch (error) {
        log.error('could not check a handshake (challenge ledger or directory)', { error: String(error) });
        return { code: 'E_UNAVAILABLE', message: 'the relay cannot check handshakes right now' };
      }
      if (!outcome.ok) return outcome;
      try {
        await directory.record(outcome.user);
      } catch (error) {
        log.error('could not save user at handshake', { error: String(error) });
        return { code: 'E_UNAVAILABLE', message: 'the relay cannot store users right now' };
      }
      socket.data.user = outcome.user;
      socket.data.budget = new RequestBudget({ ...rate, now });
      socket.data.typing = new TokenBucket(5, 2, now);
      return null;
    },
  });

  const presenceFailed = (error: unknown) => log.warn('presence update failed', { error: String(error) });

  /** Work that close() waits for. Callers handle its errors; a rejection here is never left unhandled. */
  function track(work: Promise<unknown>): void {
    inflight.add(work);
    const done = () => inflight.delete(work);
    work.then(done, done);
  }

  // Users whose join or leave failed or timed out in the shared presence (it may have run
  // there unanswered), or whose change could not be announced: their state is announced once
  // the shared presence is back.
  const unsure = new Set<string>();
  const markUnsure = (userIds: readonly string[], error: unknown) => {
    if (cluster) for (const userId of userIds) unsure.add(userId);
    presenceFailed(error);
  };
  const unsureOf = (userId: string) => (error: unknown) => markUnsure([userId], error);
  cluster?.onLost((lost) => {
    // Those not told (e.g. Redis was just dropped) are told as they are once it is back.
    if (!closing) track(directory.announceLost(lost, markUnsure));
  });
  /**
   * Announces these users as the shared presence has them. The revs are taken before it is
   * read, so a change made after the read (a reconnect, a leave) carries a later rev and wins.
   * A user whose announcement fails stays unsure, for the next time the presence is back.
   */
  async function announceAsTheyAre(ids: string[]): Promise<void> {
    let revs: number[];
    let online: Set<string>;
    try {
      revs = await Promise.all(ids.map(() => presence.nextRev()));
      online = await presence.online(ids);
    } catch (error) {
      markUnsure(ids, error);
      return;
    }
    await Promise.all(ids.map((userId, i) => setPresence(userId, online.has(userId), revs[i] ?? 0).catch(unsureOf(userId))));
  }
  cluster?.onRestored((presumedDead) => {
    sessions.notifyAll();
    if (closing) return;
    // Presumed dead: the others may have announced this node's users offline.
    const ids = new Set(unsure);
    if (presumedDead) for (const userId of sessions.users()) ids.add(userId);
    unsure.clear();
    if (ids.size > 0) track(announceAsTheyAre([...ids]));
  });

  io.on('connection', (raw) => {
    const socket = raw as RelaySocket;
    const user = socket.data.user;
    const pump = new Pump(user.userId, socketTarget(socket), { store, log, batchSize: LIMITS.batchSize, batchBytes: LIMITS.batchBytes, ackTimeoutMs, now, onReceipts: (senders, offers) => (offers ? sessions.offer(offers) : senders.forEach(wake)) });
    void socket.join(userRoom(user.userId));
    log.info('connected', { user: user.userId, address: clientAddress(socket.request, trustedProxies), socket: socket.id });
    sessions.add(user.userId, socket.id, pump);
    registerHandlers(socket, {
      store, log, quota, now, announce, track,
      knownUser: directory.knownUser,
      toEntries: directory.toEntries,
      wake,
      offer: (offers) => sessions.offer(offers),
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
        throw error;
      },
    );
    track(joined.catch(unsureOf(user.userId)));
    socket.on('disconnect', (reason) => {
      log.info('disconnected', { user: user.userId, socket: socket.id, reason });
      sessions.remove(user.userId, socket.id);
      // While shutting down nothing is announced; in a cluster the other nodes reap this one.
      if (closing) return;
      const left = joined.catch(() => undefined).then(() => presence.leave(user.userId));
      track(left.then(({ offline, rev }) => (offline && !closing ? setPresence(user.userId, false, rev) : undefined)).catch(unsureOf(user.userId)));
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
      directory.stop();
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
