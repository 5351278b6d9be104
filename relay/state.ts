// What a relay keeps besides its store: who is online, which handshake challenges were used,
// and the per-address limits. A single relay keeps them in memory (the defaults below); the
// nodes of a cluster share them through Redis (relay/redis/), behind the same interfaces.
import { AddressGuard, type AddressGuardOptions } from './guard.ts';
import { createRevisions } from './sessions.ts';
import type { ErrorCode } from './protocol.ts';
import type { Offer } from './mailbox/store.ts';
import type { ServerOptions } from 'socket.io';

type AdapterConstructor = ServerOptions['adapter'];

export interface Presence {
  /** A socket of the user was admitted here. Resolves with the directory rev of the change. */
  join(userId: string): Promise<number>;
  /** A socket of the user left. `offline` when the user has no socket left on any live node. */
  leave(userId: string): Promise<{ offline: boolean; rev: number }>;
  /** Which of these users have a socket on some live node. */
  online(ids: readonly string[]): Promise<Set<string>>;
  /** A directory revision, increasing across the whole network. */
  nextRev(): Promise<number>;
  /**
   * Revisions kept by this process alone (a single relay's): the revs handed out from now on
   * are above `rev`, the highest the store holds, so that they keep increasing after a restart
   * with the clock set back. Absent where the revisions outlive the process (a cluster's, in Redis).
   */
  continueAbove?(rev: number): void;
}

export interface ChallengeLedger {
  /** Records a challenge as used for `ttlMs`; false when it was used before. */
  claim(challenge: string, ttlMs: number): Promise<boolean>;
}

export interface AddressLimits {
  /**
   * Why a new connection from `address` is refused, or null to admit it: then it counts from
   * now on (checked and counted in one step, so a burst cannot pass the check together), and
   * `closed(address)` must follow once, when it ends or if it never opens.
   */
  admit(address: string): Promise<ErrorCode | null>;
  isThrottled(address: string): Promise<boolean>;
  closed(address: string): void;
  /** A failed handshake from `address`. */
  failed(address: string): void;
}

/** In memory: online while this process holds a socket of the user. */
export function memoryPresence(now: () => number = Date.now): Presence {
  const sockets = new Map<string, number>();
  const rev = createRevisions(now);
  return {
    join: (userId) => {
      sockets.set(userId, (sockets.get(userId) ?? 0) + 1);
      return Promise.resolve(rev.next());
    },
    leave: (userId) => {
      const left = (sockets.get(userId) ?? 1) - 1;
      if (left > 0) sockets.set(userId, left);
      else sockets.delete(userId);
      return Promise.resolve({ offline: left <= 0, rev: rev.next() });
    },
    online: (ids) => Promise.resolve(new Set(ids.filter((id) => sockets.has(id)))),
    nextRev: () => Promise.resolve(rev.next()),
    continueAbove: (stored) => rev.continueAbove(stored),
  };
}

/** In memory: used challenges until they expire; bounded by the handshake rate x ttl. */
export function memoryChallengeLedger(now: () => number = Date.now): ChallengeLedger {
  // challenge -> expiry, in insertion order: about expiry order (each kept at most ttl + 2 skew + 1 s,
  // relay/auth.ts), so the sweep below stops at the first live one and misses little.
  const used = new Map<string, number>();
  return {
    claim(challenge, ttlMs) {
      const t = now();
      for (const [c, expiry] of used) {
        if (expiry > t) break;
        used.delete(c);
      }
      if (used.has(challenge)) return Promise.resolve(false);
      used.set(challenge, t + ttlMs);
      return Promise.resolve(true);
    },
  };
}

export function memoryAddressLimits(options: AddressGuardOptions): AddressLimits {
  const guard = new AddressGuard(options);
  return {
    admit: (address) => Promise.resolve(guard.admit(address)),
    isThrottled: (address) => Promise.resolve(guard.isThrottled(address)),
    closed: (address) => guard.closed(address),
    failed: (address) => guard.failed(address),
  };
}

/** What makes a relay one node of a cluster (relay/redis/cluster.ts builds it). */
export interface RelayCluster {
  readonly nodeId: string;
  readonly presence: Presence;
  readonly challenges: ChallengeLedger;
  addressLimits(options: AddressGuardOptions): AddressLimits;
  /** Socket.IO adapter that carries broadcasts (presence, typing) between the nodes. */
  readonly adapter: AdapterConstructor;
  /**
   * Another node queued something for a user with sockets here: an offer to their delivery
   * streams. 'all': every stream here should page now (a periodic sweep, and after the
   * wake-up channel reconnected, in case a wake-up was lost).
   */
  onWake(listener: (wake: Offer | 'all') => void): void;
  /**
   * Users who went offline with a dead node (or with this node's counts while it was cut off),
   * their rev and last-seen time already saved in the directory: to be told to the watchers
   * here. Every node hears of each of them.
   */
  onLost(listener: (lost: { userId: string; rev: number; lastSeen: number }[]) => void): void;
  /** The shared state is reachable and up to date again; `presumedDead`: the other nodes may have taken this node's users for offline. */
  onRestored(listener: (presumedDead: boolean) => void): void;
  /** Stops heartbeats and closes the connections. Called by the relay's close(). */
  close(): Promise<void>;
}
