// Makes a relay process a node of a cluster that shares one network through Redis: the store
// (directory, mailboxes, seq, idempotency), presence, challenges and limits in Redis,
// Socket.IO's Redis Streams adapter for broadcasts (presence, typing), and a wake-up channel
// per node that the store's scripts publish to (lua.ts). Pass `store` and `cluster` to
// createRelay(); its close() closes both.
import { randomBytes } from 'node:crypto';
import { createClient } from 'redis';
import { z } from 'zod';
import { createAdapter } from '@socket.io/redis-streams-adapter';
import { base32 } from '../identity.ts';
import { MessageIdSchema, UserIdSchema } from '../protocol.ts';
import { silentLogger, type Logger } from '../log.ts';
import type { Offer } from '../mailbox/store.ts';
import type { RelayCluster } from '../state.ts';
import { createRedis } from './commands.ts';
import { openRedisStore, type ClusterStore } from './store.ts';
import { toEnvelope } from './members.ts';
import { createClusterNode } from './node.ts';
import { redisAddressLimits, redisChallengeLedger } from './limits.ts';

export interface RedisClusterOptions {
  /** redis://[user:password@]host:port[/db] or rediss:// for TLS. */
  url: string;
  /** Prefix of every key and of the adapter's stream. Default "parley:". */
  prefix?: string;
  /** A node that stops renewing its liveness for this long is dead. Default 10 s. */
  nodeTtlMs?: number;
  /** Liveness renewal and reaping period. Default nodeTtlMs / 5. */
  heartbeatMs?: number;
  /** Deadline for one Redis command. Default 2 s. */
  commandTimeoutMs?: number;
  /** Retention of idempotency records. Default 30 days. */
  dedupRetentionMs?: number;
  /** How long a message for a recipient connected to this node waits in memory for their ack (relay/redis/held.ts). Default 1,000 ms. */
  holdMs?: number;
  /** How often every delivery stream of the node pages again, in case a wake-up was lost. Default 5 s. */
  sweepMs?: number;
  log?: Logger;
}

export interface RedisCluster {
  store: ClusterStore;
  cluster: RelayCluster;
}

type Client = ReturnType<typeof createClient>;

/**
 * The view of the connection that the adapter gets. Its publishes fail fast while Redis is
 * down (a broadcast then still reaches this node's own sockets) and never become unhandled
 * rejections (the adapter drops the promise of its PUB/SUB publishes); its blocking readers
 * queue their commands while offline instead of spinning.
 */
function adapterView(client: Client, log: Logger): Client {
  return new Proxy(client, {
    get(target, property) {
      if (property === 'duplicate') return () => target.duplicate({ disableOfflineQueue: false });
      if (property === 'publish') {
        return (...args: Parameters<Client['publish']>) => {
          const sent = target.publish(...args);
          sent.catch((error: unknown) => log.debug('redis: a server-side event was not published', { error: String(error) }));
          return sent;
        };
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

const WakeHead = z.tuple([UserIdSchema, z.coerce.number().int().min(1), z.coerce.number().int().min(0)]);

/** "!<sender> <message id> <delivered at>", as the ACKNOWLEDGE script publishes it (scripts.ts). */
const TakenNotice = z.tuple([UserIdSchema, MessageIdSchema, z.coerce.number().int().min(0)]);

const Stamp = z.coerce.number().int().min(0);

/** A user gone offline everywhere, with the rev and last-seen time already saved in the directory. */
interface Lost {
  userId: string;
  rev: number;
  lastSeen: number;
}

/** "-<last seen> <user> <rev> <user> <rev>...", as REAP and RESYNC publish it (node-scripts.ts). */
function parseLost(message: string): Lost[] | null {
  const [at, ...rest] = message.slice(1).split(' ');
  const lastSeen = Stamp.safeParse(at);
  if (!lastSeen.success || rest.length % 2 !== 0) return null;
  const lost: Lost[] = [];
  for (let i = 0; i < rest.length; i += 2) {
    const userId = UserIdSchema.safeParse(rest[i]);
    const rev = Stamp.safeParse(rest[i + 1]);
    if (!userId.success || !rev.success) return null;
    lost.push({ userId: userId.data, rev: rev.data, lastSeen: lastSeen.data });
  }
  return lost;
}

/** "<user> <seq> <prev seq>\n<mailbox member>", as lua.ts publishes it. */
function parseWake(message: string): Offer | null {
  const newline = message.indexOf('\n');
  const head = WakeHead.safeParse(message.slice(0, newline).split(' '));
  if (newline < 0 || !head.success) return null;
  try {
    const envelope = toEnvelope(message.slice(newline + 1));
    return envelope.seq === head.data[1] ? { to: head.data[0], envelope, prev: head.data[2] } : null;
  } catch {
    return null; // toEnvelope refused it
  }
}

/** Redis's answers to a login it refuses (a wrong password or user, or one it does not need). */
const LOGIN_REFUSED = /^(WRONGPASS|NOAUTH|NOPERM)\b|^ERR (invalid (password|username)|AUTH\b|Client sent AUTH)/;

/** openRedisCluster() failed because Redis refused the URL's login: a setting to fix, not an outage. */
export class RedisLoginRefused extends Error {}

export async function openRedisCluster(options: RedisClusterOptions): Promise<RedisCluster> {
  const log = options.log ?? silentLogger;
  const prefix = options.prefix ?? 'parley:';
  const ttlMs = options.nodeTtlMs ?? 10_000;
  const client: Client = createClient({
    url: options.url,
    // Commands fail at once while Redis is unreachable: a send is answered E_UNAVAILABLE, never parked.
    disableOfflineQueue: true,
    // No per-command timer from the client (it arms an AbortSignal per command, which costs
    // more than the command): createRedis() keeps one deadline timer for all of them.
    commandOptions: { timeout: 0 },
    socket: {
      connectTimeout: 2_000,
      // Retried for ever, except a refused login before the node ever connected: a wrong URL
      // that no retry mends, which fails the start instead (the CLI names it and exits 2).
      reconnectStrategy: (retries: number, cause: Error) => (!connected && LOGIN_REFUSED.test(cause.message) ? cause : Math.min(50 * 2 ** retries, 1_000)),
    },
  });
  let connected = false;
  client.once('ready', () => (connected = true));
  const redis = createRedis(client, options.commandTimeoutMs ?? 2_000);
  let down = false;
  client.on('error', (error: unknown) => {
    if (!down) log.warn('redis: connection lost; reconnecting', { error: String(error) });
    down = true;
  });
  client.on('ready', () => {
    if (down) log.info('redis: connected again');
    down = false;
    // First on the new connection: a restarted Redis has forgotten the scripts (commands.ts).
    redis.loadScripts().catch((error: unknown) => log.warn('redis: could not load the scripts; each is loaded when first used', { error: String(error) }));
  });
  // Resolves once Redis answers (retrying meanwhile): a node cannot start without its shared state.
  try {
    await client.connect();
  } catch (error) {
    const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
    if (!(cause instanceof Error && LOGIN_REFUSED.test(cause.message))) throw error;
    throw new RedisLoginRefused(`redis refused the login: ${cause.message}`, { cause });
  }

  const nodeId = base32(randomBytes(10));
  const wakeListeners: ((wake: Offer | 'all') => void)[] = [];
  const lostListeners: ((lost: Lost[]) => void)[] = [];
  const wake = (w: Offer | 'all') => {
    for (const listener of wakeListeners) listener(w);
  };
  const store = await openRedisStore({
    redis, prefix, nodeId, log,
    ...(options.dedupRetentionMs ? { dedupRetentionMs: options.dedupRetentionMs } : {}),
    ...(options.holdMs === undefined ? {} : { holdMs: options.holdMs }),
  });
  // This node's wake-up channel, subscribed before the node counts any socket (see lua.ts).
  const subscriber: Client = client.duplicate({ disableOfflineQueue: false });
  let subscribed = false;
  subscriber.on('error', () => undefined); // the main connection reports the outage
  subscriber.on('ready', () => {
    if (subscribed) wake('all'); // wake-ups published while it was away are lost
  });
  await subscriber.connect();
  await subscriber.subscribe(`${prefix}wake:${nodeId}`, (message: string) => {
    if (message.startsWith('+')) {
      const user = UserIdSchema.safeParse(message.slice(1));
      if (user.success) store.joinedElsewhere(user.data);
      else log.warn('redis: ignored a malformed join notice');
      return;
    }
    if (message.startsWith('-')) {
      const lost = parseLost(message);
      if (lost) for (const listener of lostListeners) listener(lost);
      else log.warn('redis: ignored a malformed offline notice');
      return;
    }
    if (message.startsWith('!')) {
      const notice = TakenNotice.safeParse(message.slice(1).split(' '));
      if (notice.success) store.taken(...notice.data);
      else log.warn('redis: ignored a malformed delivery notice');
      return;
    }
    const offer = parseWake(message);
    if (offer) wake(offer);
    else log.warn('redis: ignored a malformed wake-up');
  });
  subscribed = true;
  const sweep = setInterval(() => wake('all'), options.sweepMs ?? 5_000);
  sweep.unref();

  const node = createClusterNode({ redis, prefix, nodeId, ttlMs, heartbeatMs: options.heartbeatMs ?? Math.max(100, Math.floor(ttlMs / 5)), log });
  await node.start();
  // The adapter's own connection keeps the client's default 5 s command timeout (broadcasts are rare).
  const adapterClient: Client = client.duplicate({ commandOptions: { timeout: 5_000 } });
  adapterClient.on('error', () => undefined); // the main connection reports the outage
  await adapterClient.connect();
  const adapter = createAdapter(adapterView(adapterClient, log), {
    streamName: `${prefix}sio`,
    channelPrefix: `${prefix}sio`,
    maxLen: 10_000,
    // Readers wake this often even when idle, so a closed node lets go of Redis within it.
    blockTimeInMs: 1_000,
    onlyPlaintext: true,
  });

  const cluster: RelayCluster = {
    nodeId: node.id,
    presence: node.presence,
    challenges: redisChallengeLedger(redis, prefix),
    addressLimits: (limits) => redisAddressLimits({ redis, prefix, node, log, ...limits }),
    adapter,
    onLost: (listener) => void lostListeners.push(listener),
    onRestored: (listener) => node.onRestored(listener),
    onWake: (listener) => void wakeListeners.push(listener),
    async close() {
      clearInterval(sweep);
      await node.close();
      redis.close();
      await subscriber.close().catch(() => subscriber.destroy());
      await adapterClient.close().catch(() => adapterClient.destroy());
      await client.close().catch(() => client.destroy());
    },
  };
  return { store, cluster };
}
