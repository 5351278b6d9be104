// People whose row changed are told to the window together: a backlog is stored 64 messages
// at a time, and a row per chunk and sender would be most of its cost. The first change after
// a quiet spell shows within ANNOUNCE_MS; after that, at most one announcement per ANNOUNCE_EVERY_MS.
import type { History } from './history/index.ts';
import { people, type Presence } from './directory.ts';
import type { EventHub } from './events.ts';

const ANNOUNCE_MS = 50;
const ANNOUNCE_EVERY_MS = 250;

export interface AnnouncerOptions {
  history: History;
  presence: Presence;
  /** The user's own id: never announced as a person. */
  me: string;
  emit: EventHub['emit'];
}

export interface Announcer {
  /** These people's rows changed: 'person' events follow, batched. */
  announce(ids: Iterable<string>): void;
  /**
   * Someone took these names, or gave them up (a rename, or someone new): whoever bears one may
   * have gained or lost a clash (Person.nameClash), so their rows are announced too.
   */
  named(names: Iterable<string | undefined>): void;
  /** The history is about to close, so nothing more is announced. */
  close(): void;
}

export function createAnnouncer({ history, presence, me, emit }: AnnouncerOptions): Announcer {
  const changedPeople = new Set<string>();
  let announceTimer: NodeJS.Timeout | undefined;
  let announcedAt = 0;
  let closed = false;
  /** Names taken or given up since the last announcement (see named()), lower case. */
  const namesTouched = new Set<string>();
  const flushAnnounce = () => {
    announceTimer = undefined;
    announcedAt = performance.now();
    if (namesTouched.size > 0) {
      // One read of everyone's name for all the renames of a moment (a directory sync is thousands).
      for (const p of history.peerNames()) if (p.id !== me && namesTouched.has(p.name.toLocaleLowerCase())) changedPeople.add(p.id);
      namesTouched.clear();
    }
    const ids = [...changedPeople];
    changedPeople.clear();
    for (const p of people(history, presence, me, ids)) emit('person', p);
  };
  const schedule = () => {
    if (announceTimer || (changedPeople.size === 0 && namesTouched.size === 0) || closed) return;
    announceTimer = setTimeout(flushAnnounce, Math.max(ANNOUNCE_MS, announcedAt + ANNOUNCE_EVERY_MS - performance.now()));
  };
  return {
    announce(ids) {
      for (const id of ids) changedPeople.add(id);
      schedule();
    },
    named(names) {
      for (const name of names) if (name !== undefined) namesTouched.add(name.toLocaleLowerCase());
      schedule();
    },
    close() {
      closed = true;
      clearTimeout(announceTimer);
    },
  };
}
