// The load generator's clients: real socket.io-client websockets. A Parley client does the
// real handshake (hello, signed challenge), sends like the app's outbox (one request at a
// time, with whatever waits in it: message:send-many) and acknowledges every delivery batch;
// a baseline client joins with a username, as in the Socket.IO private-messaging tutorial.
import { io, type Socket } from 'socket.io-client';
import { generateIdentity, type Identity } from '../../relay/identity.ts';
import { buildAuth, fetchHello } from '../../relay/handshake.ts';
import type { ClientToServerEvents, Result, SendManyResult, ServerToClientEvents } from '../../relay/protocol.ts';
import type { RelayKind } from './ipc.ts';
import { firstBatch } from '../../main/core/outbox.ts';

export interface PeerEvents {
  /** A message with this id reached this client. */
  message(id: string): void;
  /** The connection went away without close() being called. */
  dropped(reason: string): void;
}

export interface Peer {
  /** The address others send to: a user id, or a username. */
  readonly name: string;
  readonly connected: boolean;
  /** Opens a new connection (again after close()); resolves once the relay accepted it. */
  connect(): Promise<void>;
  /** Sends a message; `done` gets null once the relay accepted it (Parley) or an error code. */
  send(to: string, id: string, body: string, done: (error: string | null) => void): void;
  close(): void;
}

const connectOptions = { transports: ['websocket'], reconnection: false, forceNew: true, timeout: 60_000 };

function opened(socket: Socket): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('connect_error', (error) => {
      socket.disconnect();
      reject(error);
    });
  });
}

interface Queued {
  to: string;
  id: string;
  body: string;
  done: (error: string | null) => void;
}

class ParleyPeer implements Peer {
  private socket: Socket<ServerToClientEvents, ClientToServerEvents> | null = null;
  private identity: Identity | null = null;
  /** The outbox: what waits while a request is in flight goes in the next one. */
  private queue: Queued[] = [];
  private sending = false;
  private readonly url: string;
  private readonly events: PeerEvents;

  constructor(url: string, events: PeerEvents) {
    this.url = url;
    this.events = events;
  }

  get name(): string {
    this.identity ??= generateIdentity();
    return this.identity.userId;
  }

  get connected(): boolean {
    return this.socket?.connected ?? false;
  }

  connect(): Promise<void> {
    this.identity ??= generateIdentity();
    const identity = this.identity;
    const base = new URL(this.url);
    const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io(this.url, {
      ...connectOptions,
      auth: (cb) => {
        fetchHello(base, AbortSignal.timeout(60_000)).then(
          (hello) => cb(buildAuth(identity, hello, { name: 'bench' })),
          () => cb({}),
        );
      },
    });
    this.socket = socket;
    for (const q of this.queue.splice(0)) q.done('not connected');
    this.sending = false;
    socket.on('message:deliver', (batch, ack) => {
      for (const envelope of batch) if (envelope.kind === 'message') this.events.message(envelope.id);
      ack({ ok: true });
    });
    socket.on('disconnect', (reason) => {
      if (reason !== 'io client disconnect') this.events.dropped(reason);
    });
    return opened(socket);
  }

  send(to: string, id: string, body: string, done: (error: string | null) => void): void {
    if (!this.socket) return done('not connected');
    this.queue.push({ to, id, body, done });
    if (!this.sending) this.flush();
  }

  private flush(): void {
    const socket = this.socket;
    const batch = this.queue.splice(0, firstBatch(this.queue, (q) => q.body.length).length);
    this.sending = batch.length > 0;
    if (!socket || !this.sending) return batch.forEach((q) => q.done('not connected'));
    const messages = batch.map((q) => ({ id: q.id, to: q.to, body: q.body, sentAt: Date.now() }));
    socket.emit('message:send-many', { messages }, (answer: Result<SendManyResult>) => {
      batch.forEach((q, i) => {
        const result = answer.ok ? answer.value.results[i] : answer;
        q.done(result === undefined ? 'E_INTERNAL' : result.ok ? null : result.error.code);
      });
      if (socket === this.socket) this.flush();
    });
  }

  close(): void {
    this.socket?.disconnect();
  }
}

interface BaselineServerEvents {
  'private message': (message: { content: string; from: string }) => void;
}
interface BaselineClientEvents {
  'private message': (message: { content: string; to: string }) => void;
}

class BaselinePeer implements Peer {
  private socket: Socket<BaselineServerEvents, BaselineClientEvents> | null = null;
  readonly name: string;
  private readonly url: string;
  private readonly events: PeerEvents;

  constructor(url: string, name: string, events: PeerEvents) {
    this.url = url;
    this.name = name;
    this.events = events;
  }

  get connected(): boolean {
    return this.socket?.connected ?? false;
  }

  connect(): Promise<void> {
    const socket: Socket<BaselineServerEvents, BaselineClientEvents> = io(this.url, { ...connectOptions, auth: { username: this.name } });
    this.socket = socket;
    socket.on('private message', ({ content }) => this.events.message(content.slice(0, content.indexOf('|'))));
    socket.on('disconnect', (reason) => {
      if (reason !== 'io client disconnect') this.events.dropped(reason);
    });
    return opened(socket);
  }

  send(to: string, id: string, body: string, done: (error: string | null) => void): void {
    if (!this.socket) return done('not connected');
    this.socket.emit('private message', { content: body, to });
    done(null); // fire and forget: the baseline has no acks
  }

  close(): void {
    this.socket?.disconnect();
  }
}

export function createPeer(kind: RelayKind, url: string, name: string, events: PeerEvents): Peer {
  return kind === 'parley' ? new ParleyPeer(url, events) : new BaselinePeer(url, name, events);
}
