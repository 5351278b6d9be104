// Test support: a real relay on a free loopback port over a SQLite file in a temp folder,
// and real socket.io-client sockets that speak the protocol.
import { afterEach } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { io, type Socket } from 'socket.io-client';
import { createRelay, type Relay, type RelayOptions } from '../../relay/server.ts';
import { openSqliteStore, type SqliteStoreOptions } from '../../relay/mailbox/sqlite.ts';
import type { RelayStore } from '../../relay/mailbox/store.ts';
import { generateIdentity, type Identity } from '../../relay/identity.ts';
import { buildAuth, fetchHello } from '../../relay/handshake.ts';
import type { ClientToServerEvents, DeliverAck, Envelope, RequestName, Requests, Result, ServerToClientEvents, UserEntry } from '../../relay/protocol.ts';

export type ClientSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

export function tempDir(prefix = 'parley-test-'): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export interface TestRelay {
  relay: Relay;
  url: string;
  port: number;
  dbPath: string;
  /** Closes the relay (its store too). */
  stop(): Promise<void>;
  /** Closes and starts again on the same port and database. */
  restart(): Promise<void>;
}

export interface TestRelayOptions extends Partial<Omit<RelayOptions, 'store'>> {
  dir?: string;
  port?: number;
  /** The address to bind: default 127.0.0.1 (`::` takes IPv4 too, as IPv4-mapped addresses); the url always says 127.0.0.1. */
  host?: string;
  storeOptions?: Omit<SqliteStoreOptions, 'path'>;
  /** Stands between the relay and its SQLite store, e.g. to see or hold what the relay asks of it. */
  wrapStore?: (store: RelayStore) => RelayStore;
}

export async function startRelay(options: TestRelayOptions = {}): Promise<TestRelay> {
  const dir = options.dir ?? tempDir().path;
  const dbPath = join(dir, 'relay.db');
  const wrap = options.wrapStore ?? ((store: RelayStore) => store);
  const open = async (port: number) => {
    const relay = createRelay({ name: 'test relay', ...options, store: wrap(openSqliteStore({ ...options.storeOptions, path: dbPath })) });
    const address = await relay.listen(port, options.host ?? '127.0.0.1');
    return { relay, port: address.port };
  };
  let current = await open(options.port ?? 0);
  const handle: TestRelay = {
    relay: current.relay,
    url: `http://127.0.0.1:${current.port}`,
    port: current.port,
    dbPath,
    stop: () => handle.relay.close(),
    async restart() {
      await handle.relay.close();
      current = await open(handle.port);
      handle.relay = current.relay;
    },
  };
  return handle;
}

export interface ClientOptions {
  identity?: Identity;
  name?: string;
  accessCode?: string;
  /** How the client answers delivery batches. Default: stores and acknowledges. */
  onDeliver?: (batch: Envelope[]) => DeliverAck | Promise<DeliverAck>;
  reconnection?: boolean;
}

export class TestClient {
  readonly identity: Identity;
  readonly socket: ClientSocket;
  /** Every envelope received, in arrival order (redeliveries included). */
  readonly received: Envelope[] = [];
  /** presence:update events, for the users this client watches. */
  readonly presence: UserEntry[] = [];
  /** The revs of directory:changed hints. */
  readonly hints: number[] = [];
  readonly typing: { from: string; typing: boolean }[] = [];

  constructor(identity: Identity, socket: ClientSocket) {
    this.identity = identity;
    this.socket = socket;
  }

  get id(): string {
    return this.identity.userId;
  }

  request<K extends RequestName>(event: K, payload: Requests[K][0], timeoutMs = 5000): Promise<Result<Requests[K][1]>> {
    // socket.io-client's typed emitWithAck cannot see through the mapped event type.
    const emit = this.socket.timeout(timeoutMs).emitWithAck as (ev: string, p: unknown) => Promise<Result<Requests[K][1]>>;
    return emit.call(this.socket.timeout(timeoutMs), event, payload);
  }

  /** Sends a raw event with arbitrary arguments and waits for the ack. */
  raw(event: string, ...args: unknown[]): Promise<unknown> {
    const emit = this.socket.timeout(5000).emitWithAck as (ev: string, ...a: unknown[]) => Promise<unknown>;
    return emit.call(this.socket.timeout(5000), event, ...args);
  }

  send(to: string, body: string, id = newMessageId(), sentAt = Date.now()) {
    return this.request('message:send', { id, to, body, sentAt });
  }

  /** Watches these users' presence; resolves with their current entries. */
  async watch(...ids: string[]): Promise<UserEntry[]> {
    const result = await this.request('presence:watch', { ids });
    if (!result.ok) throw new Error(`presence:watch: ${result.error.message}`);
    return result.value.users;
  }

  messages(): Extract<Envelope, { kind: 'message' }>[] {
    return this.received.filter((e): e is Extract<Envelope, { kind: 'message' }> => e.kind === 'message');
  }

  receipts(): Extract<Envelope, { kind: 'receipt' }>[] {
    return this.received.filter((e): e is Extract<Envelope, { kind: 'receipt' }> => e.kind === 'receipt');
  }

  close(): void {
    this.socket.disconnect();
  }
}

export const newMessageId = (): string => randomBytes(16).toString('base64url');

/** Each envelope's message id ('' for a receipt). */
export const idsOf = (envelopes: readonly Envelope[]): string[] => envelopes.map((e) => (e.kind === 'message' ? e.id : ''));

/** A store's mailbox for `recipient`, read page after page as a delivery stream would (at most `limit` envelopes and `bytes` each). */
export async function readPages(store: RelayStore, recipient: string, limit: number, bytes?: number): Promise<Envelope[][]> {
  const pages: Envelope[][] = [];
  let after = 0;
  for (let page = await store.page(recipient, after, limit, bytes); page.length > 0; page = await store.page(recipient, after, limit, bytes)) {
    pages.push(page);
    after = page.at(-1)?.seq ?? after;
  }
  return pages;
}

/** Connects and resolves once the relay accepted the handshake; rejects with the connect_error. */
export async function connectClient(url: string, options: ClientOptions = {}): Promise<TestClient> {
  const identity = options.identity ?? generateIdentity();
  const name = options.name ?? 'tester';
  const socket: ClientSocket = io(url, {
    transports: ['websocket'],
    reconnection: options.reconnection ?? false,
    forceNew: true,
    auth: (cb) => {
      fetchHello(new URL(url)).then(
        (hello) => cb(buildAuth(identity, hello, { name, ...(options.accessCode === undefined ? {} : { accessCode: options.accessCode }) })),
        () => cb({}),
      );
    },
  });
  const client = new TestClient(identity, socket);
  socket.on('message:deliver', (batch, ack) => {
    client.received.push(...batch);
    Promise.resolve(options.onDeliver ? options.onDeliver(batch) : { ok: true as const }).then(ack, () => ack({ ok: false }));
  });
  socket.on('presence:update', (user) => client.presence.push(user));
  socket.on('directory:changed', (hint) => client.hints.push(hint.rev));
  socket.on('typing:update', (t) => client.typing.push(t));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('connect_error', (error) => {
      socket.disconnect();
      reject(error);
    });
    // The transport closed before the relay answered the handshake (it is stopping, say).
    socket.once('disconnect', (reason) => reject(new Error(`closed before the handshake was answered: ${reason}`)));
  });
  return client;
}

/** Polls until `check` returns true (or a value), failing with `what` after `timeoutMs`. */
export async function eventually<T>(check: () => T | undefined | false | Promise<T | undefined | false>, what: string, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Something a test opened and must close: an object with close(), or a function that closes it. */
export type Closable = { close(): unknown } | (() => unknown);

export interface RelayScope {
  /** Starts a relay (startRelay) for the running test; a test may start several. */
  start(options?: TestRelayOptions): Promise<TestRelay>;
  /** The relay the running test started last; throws if it started none. */
  readonly relay: TestRelay;
  /** Connects a client (connectClient) to that relay. */
  join(options?: ClientOptions): Promise<TestClient>;
  /** Has `thing` closed after the test; returns it. */
  track<T extends Closable>(thing: T): T;
  /** Closes a tracked thing now instead of after the test (e.g. to reopen its data folder). */
  close(thing: Closable): Promise<void>;
}

/**
 * The relays, clients and whatever else the tests of a file open, closed after each test:
 * call it at module level. What a test started, joined or tracked is closed the latest
 * first, so clients before the relay they joined, and a folder made before the relay after it.
 */
export function useRelay(): RelayScope {
  const open: Closable[] = [];
  let latest: TestRelay | undefined;
  const shut = async (thing: Closable) => {
    await (typeof thing === 'function' ? thing() : thing.close());
  };
  afterEach(async () => {
    latest = undefined;
    for (const thing of open.splice(0).reverse()) await shut(thing);
  });
  const scope: RelayScope = {
    async start(options = {}) {
      const relay = await startRelay(options);
      scope.track(() => relay.stop());
      return (latest = relay);
    },
    get relay() {
      if (!latest) throw new Error('no relay: start one with start() in this test first');
      return latest;
    },
    async join(options = {}) {
      return scope.track(await connectClient(scope.relay.url, options));
    },
    track(thing) {
      open.push(thing);
      return thing;
    },
    async close(thing) {
      const at = open.indexOf(thing);
      if (at !== -1) open.splice(at, 1);
      await shut(thing);
    },
  };
  return scope;
}
