// What this node tells others of users: presence to those who watch a user, and a hint to
// everyone when the directory changed (a new user, a new name or key).
import type { Authenticated } from './auth.ts';
import { watchRoom, type RelayIo } from './handlers.ts';
import type { RelayStore, StoredUser } from './mailbox/store.ts';
import type { UserEntry } from './protocol.ts';
import type { Presence } from './state.ts';

/**
 * How long a node waits between directory:changed hints: a second, or longer on a node with
 * many connections, so that the hints (and the directory:changes requests that follow each)
 * stay at about 2,000 a second however many are connected; never over 10 s.
 */
export function hintIntervalMs(connections: number): number {
  return Math.min(10_000, Math.max(1_000, Math.ceil(connections / 2)));
}

/**
 * The highest rev a store holds, 0 when it holds none: a search over `changedUsers` (its rev
 * order), so some 50 lookups of one row whatever the size of the directory.
 */
export async function highestRev(store: Pick<RelayStore, 'changedUsers'>): Promise<number> {
  let low = 0; // a rev the store holds, or 0
  let high = Number.MAX_SAFE_INTEGER; // none is above it
  while (low < high) {
    const middle = low + Math.floor((high - low) / 2);
    const [above] = await store.changedUsers(middle, 1);
    if (above) low = above.rev;
    else high = middle;
  }
  return low;
}

export interface DirectoryContext {
  store: RelayStore;
  presence: Presence;
  io: Pick<RelayIo, 'emit' | 'to' | 'local' | 'sockets'>;
  /** Sockets connected to this node. */
  connections: () => number;
  now: () => number;
  closing: () => boolean;
}

export function createDirectory({ store, presence, io, connections, now, closing }: DirectoryContext) {
  /** Users this node has seen, with what others need to know of them (name and keys). */
  const known = new Map<string, string>();
  const profileOf = (u: { name: string; kaKey: string }) => `${u.name}\n${u.kaKey}`;

  // Revisions kept by this process continue above the stored ones (the clock may have gone
  // back since they were handed out). Every socket is recorded before its first rev is taken,
  // so recording waits for this; a store that cannot be read now is asked again next time.
  let continued: Promise<void> | undefined;
  const continueRevs = (): Promise<void> => {
    if (!presence.continueAbove) return Promise.resolve();
    return (continued ??= highestRev(store).then(
      (rev) => presence.continueAbove?.(rev),
      (error: unknown) => {
        continued = undefined;
        throw error;
      },
    ));
  };
  void continueRevs().catch(() => undefined); // at once; a failure shows at the first handshake

  // Presence goes only to those who watch the user: telling everyone of every connect costs
  // connections squared. Directory changes (new users, names, keys) are told to everyone,
  // as one small hint a second at most (less often with many connections: hintIntervalMs);
  // clients fetch what changed (directory:changes).
  const hint: { rev: number; timer: NodeJS.Timeout | undefined } = { rev: 0, timer: undefined };
  function directoryChanged(rev: number): void {
    hint.rev = Math.max(hint.rev, rev);
    hint.timer ??= setTimeout(() => {
      hint.timer = undefined;
      if (!closing()) io.emit('directory:changed', { rev: hint.rev });
    }, hintIntervalMs(connections()));
  }

  /** The last list of lost users being told (announceLost). */
  let telling: Promise<void> = Promise.resolve();

  const announce = (entry: UserEntry, changed = false) => {
    io.to(watchRoom(entry.id)).emit('presence:update', entry);
    if (changed) {
      known.set(entry.id, profileOf(entry));
      directoryChanged(entry.rev);
    }
  };

  /** The keys the directory holds for a user, which were verified when saved (relay/auth.ts). */
  const keysOnRecord = async (userId: string): Promise<StoredUser | undefined> => {
    const [found] = await store.getUsers([userId]);
    if (found) known.set(userId, profileOf(found));
    return found;
  };

  return {
    announce,

    /** Directory entries with their online flag: online while a socket is connected to any node. */
    async toEntries(users: StoredUser[]): Promise<UserEntry[]> {
      const online = await presence.online(users.map((u) => u.id));
      return users.map((u) => ({ ...u, online: online.has(u.id) }));
    },

    /** True at once when the directory holds the user (nearly always): no promise to wait for. */
    knownUser(id: string): boolean | Promise<boolean> {
      return known.has(id) || keysOnRecord(id).then((found) => found !== undefined);
    },

    keysOnRecord,

    /** Saves a user who has just proved their key. */
    async record(user: Authenticated): Promise<void> {
      await continueRevs();
      const rev = await store.saveUser({ id: user.userId, name: user.name, idKey: user.idKey, kaKey: user.kaKey, kaSig: user.kaSig, lastSeen: now(), rev: await presence.nextRev() });
      // New here, or a new name or key: the others learn of it from the directory (from the rev it was saved at).
      if (known.get(user.userId) !== profileOf(user)) directoryChanged(rev);
      known.set(user.userId, profileOf(user));
    },

    /**
     * Tells the watchers here of users who went offline with a dead node, as saved with their
     * rev and last-seen time (every node hears of them: relay/redis/node-scripts.ts). Only the
     * entries of those watched here are read, one list after the other: a reap brings a list
     * every few milliseconds, and reads started for all at once would queue before every send.
     * Those it could not tell (their entries could not be read) go to `untold`.
     */
    announceLost(lost: readonly { userId: string; rev: number; lastSeen: number }[], untold: (userIds: string[], error: unknown) => void): Promise<void> {
      const watched = new Map(lost.filter((l) => io.sockets.adapter.rooms.has(watchRoom(l.userId))).map((l) => [l.userId, l]));
      if (watched.size === 0) return Promise.resolve();
      telling = telling.then(async () => {
        try {
          for (const stored of await store.getUsers([...watched.keys()])) {
            const l = watched.get(stored.id);
            if (l) io.local.to(watchRoom(stored.id)).emit('presence:update', { ...stored, lastSeen: l.lastSeen, rev: l.rev, online: false });
          }
        } catch (error) {
          untold([...watched.keys()], error);
        }
      });
      return telling;
    },

    /** Announces what the directory holds for the user now (another socket may have renamed them). */
    async setPresence(userId: string, online: boolean, rev: number): Promise<void> {
      const lastSeen = now();
      await store.setLastSeen(userId, lastSeen, rev);
      const [stored] = await store.getUsers([userId]);
      if (stored) announce({ ...stored, lastSeen, rev, online });
    },

    stop(): void {
      clearTimeout(hint.timer);
    },
  };
}
