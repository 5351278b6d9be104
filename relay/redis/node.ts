// One relay process as a node of a cluster: it renews its liveness in Redis, counts its
// sockets per user (presence) and its connections per address there, reaps nodes that
// stopped renewing, and rewrites its own counts from what it really holds whenever Redis may
// have lost or missed some (an outage, or being presumed dead after a long pause).
import { z } from 'zod';
import type { Logger } from '../log.ts';
import type { Presence } from '../state.ts';
import type { Redis } from './commands.ts';
import { ADMIT, CONNECTION, HEARTBEAT, JOIN, LEAVE, ONLINE, REAP, RESYNC, RETIRE, REV } from './node-scripts.ts';

export interface ClusterNodeOptions {
  redis: Redis;
  prefix: string;
  nodeId: string;
  /** A node that has not renewed its liveness for this long is dead. */
  ttlMs: number;
  /** How often liveness is renewed and dead nodes are reaped. */
  heartbeatMs: number;
  log: Logger;
}

export type Refusal = z.infer<typeof Refusal>;
const Refusal = z.enum(['', 'E_THROTTLED', 'E_TOO_MANY_CONNECTIONS']);

export interface ClusterNode {
  readonly id: string;
  readonly presence: Presence;
  /**
   * Checks a new connection from `address` against the cap of the whole cluster (and the
   * address's block, key `block`) and counts it on this node, in one step: the refusal, or ''
   * when it is admitted and counted. When Redis cannot answer it is admitted, counted here,
   * and the counts in Redis are rewritten from here at the next heartbeat.
   */
  admit(address: string, block: string, max: number): Promise<Refusal>;
  /** A connection from `address` that admit() counted has closed. */
  released(address: string): void;
  /** Redis is reachable again and holds this node's counts; `presumedDead`: the others may have taken its users for offline (it was reaped, or lapsed). */
  onRestored(listener: (presumedDead: boolean) => void): void;
  start(): Promise<void>;
  /** Stops renewing and marks the node dead, so that the others reap it at once. */
  close(): Promise<void>;
}

const Int = z.number().int();
const Flags = z.array(Int);
const LeaveReply = z.tuple([Int, Int]);

/** Users of dead nodes gone through per REAP script: about 5 ms of Redis each (node-scripts.ts). */
const REAP_CHUNK = 500;

const bump = (counts: Map<string, number>, key: string, delta: number) => {
  const n = (counts.get(key) ?? 0) + delta;
  if (n > 0) counts.set(key, n);
  else counts.delete(key);
};

export function createClusterNode(options: ClusterNodeOptions): ClusterNode {
  const { redis, prefix: p, nodeId, ttlMs, log } = options;
  const key = { nodes: `${p}nodes`, rev: `${p}rev`, reaping: `${p}reaping`, presence: `${p}node:${nodeId}:p`, connections: `${p}node:${nodeId}:c` };
  // What this node really holds: the truth that Redis is brought back to.
  const sockets = new Map<string, number>();
  const connections = new Map<string, number>();
  const restoredListeners: ((presumedDead: boolean) => void)[] = [];
  let dirty = true;
  let down = false;
  /** Redis said this node was missing or lapsed; kept until the restore listeners have been told. */
  let presumedDead = false;
  let timer: NodeJS.Timeout | undefined;
  let ticking: Promise<void> | null = null;

  /** Marks the counts in Redis as possibly wrong; the next heartbeat rewrites them. */
  const failed = (what: string) => (error: unknown) => {
    dirty = true;
    if (!down) log.warn(`redis: ${what} failed; will resync`, { error: String(error) });
    down = true;
    throw error;
  };

  let resyncs = 0;
  const resync = async () => {
    resyncs += 1;
    const args: (string | number)[] = [nodeId, p, ttlMs, sockets.size];
    for (const [user, n] of sockets) args.push(user, n);
    for (const [address, n] of connections) args.push(address, n);
    dirty = false;
    await redis.run(RESYNC, [key.presence, key.connections, key.nodes, key.rev], args, Int);
  };

  /**
   * Reaps dead nodes and announces their users, chunk after chunk, for at most half a
   * heartbeat: this node's own renewal must not wait behind a big reap. What is left goes on
   * at the next tick, this node's or another's.
   */
  const reap = async () => {
    const until = performance.now() + options.heartbeatMs / 2;
    for (let more = 1; more === 1 && performance.now() < until; ) {
      more = await redis.run(REAP, [key.nodes, key.rev, key.reaping], [p, REAP_CHUNK], Int);
    }
  };

  const tick = async () => {
    try {
      // Missing or lapsed: the others may have taken this node's users for offline.
      if ((await redis.run(HEARTBEAT, [key.nodes], [nodeId, ttlMs], Int)) === 1) presumedDead = true;
      const wasDirty = dirty;
      if (presumedDead || dirty) await resync();
      if (down || presumedDead || wasDirty) {
        if (down) log.info('redis: reachable again; counts rewritten');
        down = false;
        const dead = presumedDead;
        presumedDead = false;
        for (const listener of restoredListeners) listener(dead);
      }
      await reap();
    } catch (error) {
      dirty = true;
      if (!down) log.warn('redis: heartbeat failed; this node keeps serving what it can', { error: String(error) });
      down = true;
    }
  };

  const presence: Presence = {
    join(userId) {
      bump(sockets, userId, 1);
      return redis.run(JOIN, [key.presence, key.rev, key.nodes], [userId, nodeId, p], Int).catch(failed('presence join'));
    },
    async leave(userId) {
      bump(sockets, userId, -1);
      const [offline, rev] = await redis.run(LEAVE, [key.presence, key.nodes, key.rev], [userId, nodeId, p], LeaveReply).catch(failed('presence leave'));
      return { offline: offline === 1, rev };
    },
    async online(ids) {
      if (ids.length === 0) return new Set();
      const flags = await redis.run(ONLINE, [key.nodes], [p, ...ids], Flags);
      return new Set(ids.filter((_, i) => flags[i] === 1));
    },
    nextRev: () => redis.run(REV, [key.rev], [], Int),
  };

  return {
    id: nodeId,
    presence,
    async admit(address, block, max) {
      const before = resyncs;
      const code = await redis.run(ADMIT, [key.nodes, block, key.connections], [p, address, max], Refusal).catch((error: unknown) => {
        log.debug('redis: connection limit skipped', { error: String(error) });
        return null;
      });
      if (code) return code;
      bump(connections, address, 1);
      // Not counted in Redis (no answer), or counted and then written over by a resync that
      // ran meanwhile, without it: the next heartbeat rewrites the counts from here.
      if (code === null || resyncs !== before) dirty = true;
      return '';
    },
    released(address) {
      bump(connections, address, -1);
      redis.run(CONNECTION, [key.connections], [address, -1], Int).catch(failed('connection count')).catch(() => undefined);
    },
    onRestored: (listener) => void restoredListeners.push(listener),
    async start() {
      await resync();
      await reap();
      timer = setInterval(() => {
        // A tick still waiting for a slow Redis is not doubled up.
        ticking ??= tick().finally(() => {
          ticking = null;
        });
      }, options.heartbeatMs);
      timer.unref();
    },
    async close() {
      clearInterval(timer);
      await ticking;
      await redis.run(RETIRE, [key.nodes], [nodeId], Int).catch((error: unknown) => log.warn('redis: could not retire this node; it will expire', { error: String(error) }));
    },
  };
}
