// The requests an authenticated socket may make. Every payload is parsed from `unknown`;
// every answer is a Result through the ack; no handler throws.
import type { Server, Socket } from 'socket.io';
import type { z } from 'zod';
import {
  DirectoryChangesSchema, DirectoryGetSchema, DirectoryPageSchema, LIMITS, ProfileSchema, ReadSchema, REQUEST_NAMES, RETRYABLE_CODES, SendManySchema, SendSchema, TypingSchema, WatchSchema,
  cutErrorMessage, err, ok, type RequestName, type Requests, type Result, type SendPayload, type SendResult, type ServerToClientEvents, type UntrustedClientEvents, type UserEntry,
} from './protocol.ts';
import type { Offer, Quota, RelayStore, Settled, StoredUser } from './mailbox/store.ts';
import { StorageError, digestOf } from './mailbox/store.ts';
import type { RequestBudget, TokenBucket } from './guard.ts';
import type { Authenticated } from './auth.ts';
import type { Logger } from './log.ts';

export interface SocketData {
  user: Authenticated;
  budget: RequestBudget;
  typing: TokenBucket;
}
export type RelaySocket = Socket<UntrustedClientEvents, ServerToClientEvents, Record<string, never>, SocketData>;
export type RelayIo = Server<UntrustedClientEvents, ServerToClientEvents, Record<string, never>, SocketData>;

export interface HandlerContext {
  store: RelayStore;
  log: Logger;
  quota: Quota;
  now: () => number;
  /** A directory revision, increasing across every node. */
  nextRev: () => Promise<number>;
  /** Something was queued for this user: their delivery streams on this node page now. */
  wake: (userId: string) => void;
  /** The same, when the store told where the envelopes sit in their mailboxes (one request's, in order). */
  offer: (offers: readonly Offer[]) => void;
  /** The user has a socket on this relay (what is sent to them may wait in memory for their ack). */
  isHere: (userId: string) => boolean;
  closing: () => boolean;
  /** Keeps shutdown waiting until the work settles. */
  track: (work: Promise<unknown>) => void;
  /** True at once when the directory holds the user. */
  knownUser: (id: string) => boolean | Promise<boolean>;
  toEntries: (users: StoredUser[]) => Promise<UserEntry[]>;
  /** A user's entry changed: to those who watch them; `directoryChanged`: a name or key changed too. */
  announce: (user: UserEntry, directoryChanged?: boolean) => void;
  emitTyping: (to: string, from: string, typing: boolean) => void;
}

type Handler<K extends RequestName> = (payload: z.output<(typeof SCHEMAS)[K]>, socket: RelaySocket) => Promise<Result<Requests[K][1]>>;

const SCHEMAS = {
  'message:send': SendSchema,
  'message:send-many': SendManySchema,
  'message:read': ReadSchema,
  'directory:page': DirectoryPageSchema,
  'directory:get': DirectoryGetSchema,
  'directory:changes': DirectoryChangesSchema,
  'presence:watch': WatchSchema,
  'profile:update': ProfileSchema,
} as const satisfies Record<RequestName, z.ZodType>;

const KNOWN_EVENTS = new Set<string>([...REQUEST_NAMES, 'typing:set']);

/** The sockets that watch a user's presence are in this room. */
export const watchRoom = (userId: string) => `p:${userId}`;
const watched = (socket: RelaySocket) => [...socket.rooms].filter((room) => room.startsWith('p:')).length;

const sent = (seq: number, settled: Settled): Result<SendResult> => ok(settled.deliveredAt === undefined ? { seq } : { seq, deliveredAt: settled.deliveredAt });

/** Names the first offending field; the client's own keys may be in it, so it is cut to the limit. */
function schemaMessage(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'payload does not match the schema';
  return cutErrorMessage(`${issue.path.length ? issue.path.join('.') : 'payload'}: ${issue.message}`);
}

function failure(error: unknown, ctx: HandlerContext, event: string): Result<never> {
  if (error instanceof StorageError) return err(error.code, error.message);
  ctx.log.error('request failed', { event, error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
  return err('E_INTERNAL', 'the relay could not handle this request');
}

/** Tokens a request spends: one per message it carries. */
function cost(name: RequestName, payload: unknown): number {
  if (name !== 'message:send-many' || typeof payload !== 'object' || payload === null || !('messages' in payload) || !Array.isArray(payload.messages)) return 1;
  return Math.min(Math.max(payload.messages.length, 1), LIMITS.sendBatch);
}

/** Splits Socket.IO listener arguments into one payload and an optional ack. */
function split(args: unknown[]): { payload: unknown; ack: ((r: unknown) => void) | undefined; extra: boolean } {
  const last = args.at(-1);
  const ack = typeof last === 'function' ? (last as (r: unknown) => void) : undefined;
  const rest = ack ? args.slice(0, -1) : args;
  return { payload: rest[0], ack, extra: rest.length > 1 };
}

export function registerHandlers(socket: RelaySocket, ctx: HandlerContext): void {
  const me = socket.data.user.userId;

  /**
   * Checks and queues one message. Resolves once it has its place in the relay's order: with
   * its answer when that is an error, or else with the answer still to come (once it is
   * committed or taken by the recipient).
   */
  const accept = async (m: SendPayload, offers: Offer[]): Promise<Result<never> | { later: Promise<Result<SendResult>> }> => {
    if (Buffer.byteLength(m.body) > LIMITS.bodyBytes) return err('E_TOO_LARGE', `body is over ${LIMITS.bodyBytes} bytes`);
    const known = ctx.knownUser(m.to);
    if (known !== true && !(await known)) return err('E_UNKNOWN_RECIPIENT', 'no such user on this relay');
    const at = ctx.now();
    const outcome = await ctx.store.accept({ from: me, to: m.to, id: m.id, body: m.body, sentAt: m.sentAt, at, digest: digestOf(m.to, m.body) }, ctx.quota, ctx.isHere(m.to));
    switch (outcome.kind) {
      case 'conflict':
        return err('E_ID_CONFLICT', 'this id was already used for a different message');
      case 'full':
        return err('E_QUEUE_FULL', "the recipient's mailbox is full; try again later");
      case 'accepted':
        if (outcome.prev === undefined) ctx.wake(m.to);
        else offers.push({ to: m.to, prev: outcome.prev, envelope: { seq: outcome.seq, kind: 'message', id: m.id, from: me, body: m.body, sentAt: m.sentAt, at } });
        return settle(outcome.seq, outcome.durable);
      case 'duplicate':
        return settle(outcome.seq, outcome.durable);
      default:
        return outcome satisfies never;
    }
  };
  // (Wrapped: an async function resolving with a promise would wait for it.)
  const settle = (seq: number, durable: Promise<Settled>) => ({
    later: durable.then((settled) => sent(seq, settled), (error: unknown) => failure(error, ctx, 'message:send')),
  });
  const answerOf = (accepted: Result<never> | { later: Promise<Result<SendResult>> }) => ('later' in accepted ? accepted.later : accepted);

  const handlers: { [K in RequestName]: Handler<K> } = {
    'message:send': async (m) => {
      const offers: Offer[] = [];
      const accepted = await accept(m, offers);
      ctx.offer(offers);
      return answerOf(accepted);
    },
    'message:send-many': async ({ messages }) => {
      // In order, each as its own message:send. A message that must be retried holds back the
      // later ones to the same recipient (they get the same answer), so a resend keeps the order.
      const answers: (Result<SendResult> | Promise<Result<SendResult>>)[] = [];
      const stopped = new Map<string, Result<never>>();
      // Offered once all are queued, so that each recipient's stream sends them in one batch.
      const offers: Offer[] = [];
      for (const m of messages) {
        const held = stopped.get(m.to);
        if (held) {
          answers.push(held);
          continue;
        }
        let accepted: Awaited<ReturnType<typeof accept>>;
        try {
          accepted = await accept(m, offers);
        } catch (error) {
          accepted = failure(error, ctx, 'message:send-many');
        }
        if ('ok' in accepted && !accepted.ok && RETRYABLE_CODES.has(accepted.error.code)) stopped.set(m.to, accepted);
        answers.push(answerOf(accepted));
      }
      ctx.offer(offers);
      return ok({ results: await Promise.all(answers) });
    },
    'message:read': async (r) => {
      if (!(await ctx.knownUser(r.peer))) return err('E_UNKNOWN_RECIPIENT', 'no such user on this relay');
      const posted = await ctx.store.postReceipt(r.peer, { from: me, state: 'read', ids: r.ids, at: ctx.now() }, ctx.isHere(r.peer));
      ctx.wake(r.peer);
      await posted.durable;
      return ok(null);
    },
    'directory:page': async (p) => {
      const limit = p.limit ?? 200;
      const users = await ctx.toEntries(await ctx.store.pageUsers(p.after, limit));
      return ok({ users, next: users.length === limit ? (users.at(-1)?.id ?? null) : null });
    },
    'directory:get': async (p) => ok({ users: await ctx.toEntries(await ctx.store.getUsers(p.ids)) }),
    'directory:changes': async (p) => {
      const limit = p.limit ?? 200;
      const users = await ctx.toEntries(await ctx.store.changedUsers(p.since, limit));
      return ok({ users, next: users.length === limit ? (users.at(-1)?.rev ?? null) : null });
    },
    'presence:watch': async (p) => {
      // Joined before the entries are read: a change meanwhile is either in them or announced.
      const fresh = [...new Set(p.ids)].map(watchRoom).filter((room) => !socket.rooms.has(room));
      if (watched(socket) + fresh.length > LIMITS.watchIds) return err('E_TOO_LARGE', `a connection may watch at most ${LIMITS.watchIds} users`);
      await socket.join(fresh);
      return ok({ users: await ctx.toEntries(await ctx.store.getUsers(p.ids)) });
    },
    'profile:update': async (p) => {
      const user = socket.data.user;
      user.name = p.name;
      const stored: StoredUser = { id: me, name: p.name, idKey: user.idKey, kaKey: user.kaKey, kaSig: user.kaSig, lastSeen: ctx.now(), rev: await ctx.nextRev() };
      // Told with the rev it was saved at: clients ignore an entry older than the one they hold.
      const entry: UserEntry = { ...stored, rev: await ctx.store.saveUser(stored), online: true };
      ctx.announce(entry, true);
      return ok(entry);
    },
  };

  const parse = <K extends RequestName>(name: K, payload: unknown): { ok: true; run: () => Promise<Result<unknown>> } | { ok: false; message: string } => {
    const parsed = SCHEMAS[name].safeParse(payload);
    if (!parsed.success) return { ok: false, message: schemaMessage(parsed.error) };
    const handler = handlers[name] as Handler<K>;
    return { ok: true, run: () => handler(parsed.data as z.output<(typeof SCHEMAS)[K]>, socket) };
  };

  const bind = (name: RequestName) => {
    socket.on(name, (...args: unknown[]) => {
      const { payload, ack, extra } = split(args);
      const reply = (result: Result<unknown>) => ack?.(result);
      if (ctx.closing()) return reply(err('E_UNAVAILABLE', 'the relay is shutting down; try again'));
      const spent = socket.data.budget.spend(cost(name, payload));
      if (spent !== 'ok') {
        if (spent === 'abuse') {
          ctx.log.warn('disconnecting a socket that stayed over its rate limit', { user: me });
          socket.disconnect(true);
        }
        return reply(err('E_RATE_LIMITED', 'too many requests; slow down'));
      }
      if (extra) return reply(err('E_SCHEMA', 'one payload argument expected'));
      const request = parse(name, payload);
      if (!request.ok) return reply(err('E_SCHEMA', request.message));
      ctx.track(request.run().then(reply, (error: unknown) => reply(failure(error, ctx, name))));
    });
  };
  for (const name of REQUEST_NAMES) bind(name);

  socket.on('typing:set', (...args: unknown[]) => {
    const parsed = TypingSchema.safeParse(split(args).payload);
    if (!parsed.success || !socket.data.typing.take()) return;
    ctx.emitTyping(parsed.data.to, me, parsed.data.typing);
  });

  socket.onAny((event: string, ...args: unknown[]) => {
    if (KNOWN_EVENTS.has(event)) return;
    if (socket.data.budget.spend() === 'abuse') socket.disconnect(true);
    split(args).ack?.(err('E_UNKNOWN_EVENT', 'no such event in protocol 1'));
  });
}
