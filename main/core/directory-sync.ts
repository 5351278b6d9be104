// The relay's directory, kept in step on one connection: a full sync when the connection comes
// online, the changes after each directory:changed hint, and the presence of everyone this
// client knows (the relay tells presence to watchers only). Entries are verified before use.
//
// Both syncs read directory:changes, in rev order, and only those answers move the point the
// next read starts after: a change made during a read gets a later rev, so it comes on a later
// page or after the next hint. (In a relay cluster two nodes may save changes a moment out of
// rev order; one missed so is read with that person's next change.) A presence answer or event carries an entry at its newest rev,
// which can be above a change not read yet (the relay sends hints up to a second late), so it
// never moves that point.
import { LIMITS, type UserEntry } from '../../relay/protocol.ts';
import type { Connection } from './connection.ts';
import type { History } from './history/index.ts';
import { people, verifiedEntry, type Presence } from './directory.ts';
import type { EventHub } from './events.ts';

export interface DirectorySyncOptions {
  history: History;
  presence: Presence;
  /** The user's own id: not a peer, never watched. */
  me: string;
  /** The connection in use now; work for an older one stops when it is replaced. */
  connection: () => Connection | null;
  /** People whose row changed, told to the window in batches. */
  announce: (ids: Iterable<string>) => void;
  /** Someone took or gave up these names (announcer.ts named()). */
  named: (names: Iterable<string | undefined>) => void;
  emit: EventHub['emit'];
}

export interface DirectorySync {
  /** Records a verified directory entry: pins keys on first sight, and updates presence. */
  seePeer(entry: UserEntry): void;
  /** The full sync for a connection that came online; it takes over from any directory work under way. */
  sync(): Promise<void>;
  /** After a directory:changed hint: fetch what changed, and watch whoever is new. */
  changed(rev: number): void;
  /** A presence:update from the relay. */
  presenceUpdated(user: unknown): void;
}

export function createDirectorySync(options: DirectorySyncOptions): DirectorySync {
  const { history, presence, me, connection: current, announce, named, emit } = options;
  /** The rev that directory:changes has been read up to on this connection. */
  let directoryRev = 0;
  /** Users whose presence this connection watches. */
  let watching = new Set<string>();
  /**
   * The directory work under way, a full sync or a fetch of changes, one at a time: a change
   * fetched during a sync would start from a partial rev and watch alongside the sync's watch.
   */
  let fetching: Promise<void> | null = null;
  let hintedMeanwhile = 0;

  const seePeer = (entry: UserEntry) => {
    const { formerName } = history.seePeer({ id: entry.id, name: entry.name, idKey: entry.idKey, kaKey: entry.kaKey, lastSeen: entry.lastSeen });
    presence.update(entry);
    if (formerName !== entry.name) named([entry.name, formerName]);
  };

  /** Takes in directory entries; returns the ids of those that were new to this connection's watch. */
  function takeEntries(users: readonly unknown[], fromChanges: boolean): string[] {
    const fresh: string[] = [];
    for (const user of users) {
      const entry = verifiedEntry(user);
      if (!entry) continue;
      if (fromChanges) directoryRev = Math.max(directoryRev, entry.rev);
      if (entry.id === me) continue;
      seePeer(entry);
      if (!watching.has(entry.id)) fresh.push(entry.id);
    }
    return fresh;
  }

  /** Asks for the presence of these people (the relay tells presence to watchers only). */
  async function watch(conn: Connection, ids: string[]): Promise<void> {
    const room = LIMITS.watchIds - watching.size;
    const wanted = ids.filter((id) => !watching.has(id)).slice(0, Math.max(0, room));
    for (let i = 0; i < wanted.length; i += LIMITS.idsPerRequest) {
      const chunk = wanted.slice(i, i + LIMITS.idsPerRequest);
      const result = await conn.request('presence:watch', { ids: chunk });
      // Left, switched relays or closed meanwhile: this connection's work is over.
      if (!result.ok || current() !== conn) return;
      chunk.forEach((id) => watching.add(id));
      takeEntries(result.value.users, false);
    }
  }

  async function syncDirectory(): Promise<void> {
    const conn = current();
    if (!conn) return;
    watching = new Set();
    directoryRev = 0;
    // A hint that came before is answered by this sync.
    hintedMeanwhile = 0;
    // The whole directory: every change since the start.
    if ((await readChanges(conn)) === null) return;
    // Everyone the history knows.
    await watch(conn, history.peerIds().filter((id) => id !== me));
    if (current() !== conn) return;
    for (const p of people(history, presence, me)) emit('person', p);
  }

  function directoryWork(work: () => Promise<void>): Promise<void> {
    const running: Promise<void> = work().finally(() => {
      // A sync for a newer connection took over: it answers what was hinted.
      if (fetching !== running) return;
      fetching = null;
      // A hint that came meanwhile may speak of a later change: one more look.
      const rev = hintedMeanwhile;
      hintedMeanwhile = 0;
      if (rev > 0) syncChanges(rev);
    });
    fetching = running;
    return running;
  }

  function syncChanges(rev: number): void {
    if (rev <= directoryRev) return;
    if (fetching) {
      hintedMeanwhile = Math.max(hintedMeanwhile, rev);
      return;
    }
    void directoryWork(fetchChanges);
  }

  /**
   * Reads the changes after directoryRev, page by page, and takes them in. Returns the ids new
   * to this connection's watch, or null when the connection was replaced meanwhile.
   */
  async function readChanges(conn: Connection): Promise<string[] | null> {
    const fresh: string[] = [];
    for (;;) {
      const page = await conn.request('directory:changes', { since: directoryRev, limit: 500 });
      if (current() !== conn) return null;
      // A failed page: those before it are taken in; the next hint reads on from there.
      if (!page.ok) break;
      fresh.push(...takeEntries(page.value.users, true));
      if (page.value.next === null) break;
      directoryRev = Math.max(directoryRev, page.value.next);
    }
    return fresh;
  }

  async function fetchChanges(): Promise<void> {
    const conn = current();
    if (!conn) return;
    const fresh = await readChanges(conn);
    if (fresh === null) return;
    await watch(conn, fresh);
    if (current() === conn) announce(fresh);
  }

  return {
    seePeer,
    sync: () => directoryWork(syncDirectory),
    changed: syncChanges,
    presenceUpdated(user) {
      const entry = verifiedEntry(user);
      if (!entry || entry.id === me) return;
      seePeer(entry);
      announce([entry.id]);
    },
  };
}
