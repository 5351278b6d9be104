// One socket.io-client session to one relay, following relay/PROTOCOL.md: a fresh identity
// proof on every (re)connect, reconnection with backoff and jitter, and a status a person
// can read. What to do with deliveries is the caller's business (the messenger).
import { io, type Socket } from 'socket.io-client';
import { buildAuth, fetchHello, HelloRefused, relayBaseUrl } from '../../relay/handshake.ts';
import type { Identity } from '../../relay/identity.ts';
import { ANSWER_SCHEMAS, REQUEST_NAMES, resultSchema, TypingUpdateSchema, type Answer, type ClientToServerEvents, type DeliverAck, type ErrorCode, type Hello, type RequestName, type Requests, type ServerToClientEvents } from '../../relay/protocol.ts';
import type { ConnectionStatus, Result } from '../../preload/contract.ts';

export interface ConnectionHandlers {
  status(status: ConnectionStatus): void;
  // What a relay sends is untrusted: each handler is given it unchecked, or checked here.
  /** Store the batch, then answer: the relay redelivers whatever is not acknowledged. */
  deliver(batch: unknown): Promise<DeliverAck>;
  presence(user: unknown): void;
  /** The relay's directory changed after this rev (someone new, a name, a key). */
  directoryChanged(rev: number): void;
  typing(update: { from: string; typing: boolean }): void;
}

export interface ConnectionOptions {
  identity: Identity;
  /** The display name each handshake carries: read anew every time, so a rename made meanwhile holds. */
  name: () => string;
  address: string;
  accessCode?: string;
  handlers: ConnectionHandlers;
  /** Reconnect backoff bounds. Default 500 ms to 10 s, with 50 % jitter. */
  minDelayMs?: number;
  maxDelayMs?: number;
}

export interface Connection {
  readonly status: ConnectionStatus;
  readonly hello: Hello | null;
  /** A request, its answer checked against ANSWER_SCHEMAS (a malformed one is an E_INTERNAL error). */
  request<K extends RequestName>(event: K, payload: Requests[K][0], timeoutMs?: number): Promise<Result<Answer<K>>>;
  typing(to: string, typing: boolean): void;
  close(): void;
}

/** Each request's whole answer (ok and value, or an error), as a client may believe it: built once. */
const ANSWERS = new Map(REQUEST_NAMES.map((name) => [name, resultSchema(ANSWER_SCHEMAS[name])]));

/** Refusals a person must act on: retrying would only fail again. */
const FINAL: ReadonlySet<string> = new Set<ErrorCode>(['E_ACCESS_CODE', 'E_VERSION', 'E_SCHEMA']);

/** Our words for a refusal, by its code (a Map: a relay's code such as "constructor" finds nothing). */
const REASONS: ReadonlyMap<string, string> = new Map([
  ['E_ACCESS_CODE', 'The access code is wrong or missing.'],
  ['E_VERSION', 'This relay speaks a different version of Parley.'],
  ['E_SCHEMA', 'The relay did not accept this display name.'],
  ['E_THROTTLED', 'Too many failed attempts from this computer: the relay holds it off for a minute.'],
  ['E_TOO_MANY_CONNECTIONS', 'The relay holds too many connections from this network; trying again.'],
  ['E_UNAVAILABLE', 'The relay is restarting.'],
  ['E_NOT_RELAY', 'Something answers at this address, but not a Parley relay. Check the address and port.'],
  ['E_AUTH', 'The relay could not check our identity; trying again.'],
]);

/**
 * Reconnect backoff: the n-th retry waits min(maxMs, minMs · 2^n), spread by ± jitter of it
 * (socket.io-client's Manager, given these as reconnectionDelay, reconnectionDelayMax and
 * randomizationFactor), so that a relay's restart is not met by everyone at once.
 */
export const RECONNECT_BACKOFF = { minMs: 500, maxMs: 10_000, jitter: 0.5 } as const;

/** How long a throttled address waits before asking again (the relay's block, PROTOCOL.md 5.5). */
const THROTTLE_WAIT_MS = 60_000;

/** The HTTP status of a refused WebSocket upgrade (ws reports "Unexpected server response: 429"). */
function upgradeStatus(error: { description?: unknown }): number | undefined {
  const text = error.description && typeof error.description === 'object' && 'message' in error.description ? error.description.message : undefined;
  const status = typeof text === 'string' ? /^Unexpected server response: (\d{3})$/.exec(text)?.[1] : undefined;
  return status === undefined ? undefined : Number(status);
}

/**
 * Why a WebSocket upgrade failed, by the HTTP status answered (if any). A relay answers 503
 * while it stops; a server that answers 2xx-4xx instead (a web server on that port: 404) is
 * not a Parley relay. Anything else (no answer, a proxy's 502) is a relay that cannot be reached.
 */
function upgradeRefusal(status: number | undefined): string {
  if (status === 503) return 'E_UNAVAILABLE';
  return status !== undefined && status >= 200 && status < 500 ? 'E_NOT_RELAY' : 'E_UNREACHABLE';
}

export function connect(options: ConnectionOptions): Connection {
  const { identity, handlers } = options;
  const base = relayBaseUrl(options.address);
  // What the window shows and the remembered list keeps: host:port, with the scheme only for
  // https, so that rejoining from the list uses https again.
  const relay = base.protocol === 'https:' ? base.origin : base.host;
  let hello: Hello | null = null;
  let status: ConnectionStatus = { state: 'connecting', relay };
  let attempt = 0;
  let closed = false;
  let retryTimer: NodeJS.Timeout | undefined;
  const minDelay = options.minDelayMs ?? RECONNECT_BACKOFF.minMs;
  const maxDelay = options.maxDelayMs ?? RECONNECT_BACKOFF.maxMs;

  const setStatus = (next: ConnectionStatus) => {
    status = next;
    handlers.status(next);
  };
  const backoff = () => Math.min(maxDelay, minDelay * 2 ** Math.min(attempt, 10)) * (0.5 + Math.random() * 0.5);

  const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io(base.href, {
    transports: ['websocket'],
    forceNew: true,
    reconnectionDelay: minDelay,
    reconnectionDelayMax: maxDelay,
    randomizationFactor: RECONNECT_BACKOFF.jitter,
    timeout: 10_000,
    auth: (cb) => {
      fetchHello(base).then(
        (h) => {
          hello = h;
          cb(buildAuth(identity, h, { name: options.name(), ...(options.accessCode ? { accessCode: options.accessCode } : {}) }));
        },
        // The relay is unreachable or refusing: the connect attempt fails the same way and is retried.
        () => cb({}),
      );
    },
  });

  socket.on('connect', () => {
    attempt = 0;
    setStatus({ state: 'online', relay, relayId: hello?.relayId ?? '', relayName: hello?.name ?? relay });
  });
  socket.on('disconnect', (reason) => {
    if (closed) return;
    setStatus({ state: 'reconnecting', relay, reason: reason === 'io server disconnect' ? 'The relay closed the connection.' : 'The connection was lost.', attempt });
    if (reason === 'io server disconnect') scheduleRetry();
  });
  socket.on('connect_error', (error: Error & { data?: { code?: string; message?: string }; description?: unknown }) => {
    if (closed) return;
    attempt += 1;
    const status = upgradeStatus(error);
    if (status === 429) {
      // Refused before Socket.IO (PROTOCOL.md 5.5): throttled, or too many connections from this
      // address. Socket.IO's manager would retry at once; it is stopped, and the hello says which.
      socket.disconnect();
      fetchHello(base).then(
        () => 'E_TOO_MANY_CONNECTIONS',
        (refusal: unknown) => (refusal instanceof HelloRefused && refusal.code) || 'E_UNREACHABLE',
      ).then((code) => {
        if (!closed && !socket.active) refusedBy(code);
      });
      return;
    }
    refusedBy(error.data?.code ?? (error.message.startsWith('E_') ? error.message : upgradeRefusal(status)), error.data?.message);
  });

  function refusedBy(code: string, message?: string) {
    if (FINAL.has(code)) {
      setStatus({ state: 'refused', relay, code, reason: REASONS.get(code) ?? message ?? code });
      return;
    }
    setStatus({ state: 'reconnecting', relay, reason: REASONS.get(code) ?? 'The relay cannot be reached.', attempt });
    // Throttled for a minute: asking sooner would only be refused again. Otherwise a refusal
    // by the relay does not reconnect by itself; a transport failure does (the manager's backoff).
    if (code === 'E_THROTTLED') scheduleRetry(THROTTLE_WAIT_MS);
    else if (!socket.active) scheduleRetry();
  }

  function scheduleRetry(delay = backoff()) {
    clearTimeout(retryTimer);
    retryTimer = setTimeout(() => {
      if (!closed && !socket.connected) socket.connect();
    }, delay);
    retryTimer.unref();
  }

  socket.on('message:deliver', (batch, ack) => {
    handlers.deliver(batch).then(ack, () => ack({ ok: false, retryInMs: 2000 }));
  });
  socket.on('presence:update', (user) => handlers.presence(user));
  socket.on('directory:changed', (hint) => {
    if (typeof hint?.rev === 'number') handlers.directoryChanged(hint.rev);
  });
  socket.on('typing:update', (update) => {
    const checked = TypingUpdateSchema.safeParse(update);
    if (checked.success) handlers.typing(checked.data);
  });

  return {
    get status() {
      return status;
    },
    get hello() {
      return hello;
    },
    async request(event, payload, timeoutMs = 10_000) {
      if (!socket.connected) return { ok: false, error: { code: 'E_UNAVAILABLE', message: 'not connected to a relay' } };
      let answer: unknown;
      try {
        const emit = socket.timeout(timeoutMs).emitWithAck as (ev: string, p: unknown) => Promise<unknown>;
        answer = await emit.call(socket.timeout(timeoutMs), event, payload);
      } catch {
        return { ok: false, error: { code: 'E_UNAVAILABLE', message: 'the relay did not answer in time' } };
      }
      // An error code this client does not know stays a string: callers treat it as final.
      const checked = ANSWERS.get(event)?.safeParse(answer);
      return checked?.success ? (checked.data as Result<Answer<typeof event>>) : { ok: false, error: { code: 'E_INTERNAL', message: 'the relay gave a malformed answer' } };
    },
    typing(to, typing) {
      if (socket.connected) socket.volatile.emit('typing:set', { to, typing });
    },
    close() {
      closed = true;
      clearTimeout(retryTimer);
      socket.disconnect();
      setStatus({ state: 'offline' });
    },
  };
}
