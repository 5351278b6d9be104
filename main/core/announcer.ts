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
  /** The history is about to close, so nothing more is announced. */
  close(): void;
}

export function createAnnouncer({ history, presence, me, emit }: AnnouncerOptions): Announcer {
  const changedPeople = new Set<string>();
  let announceTimer: NodeJS.Timeout | undefined;
  let announcedAt = 0;
  let closed = false;
  const flushAnnounce = () => {
    announceTimer = undefined;
    announcedAt = performance.now();
    const ids = [...changedPeople];
    changedPeople.clear();
    for (const p of people(history, presence, me, ids)) emit('person', p);
  };
  return {
    announce(ids) {
      for (const id of ids) changedPeople.add(id);
      if (announceTimer || changedPeople.size === 0 || closed) return;
      announceTimer = setTimeout(flushAnnounce, Math.max(ANNOUNCE_MS, announcedAt + ANNOUNCE_EVERY_MS - performance.now()));
    },
    close() {
      closed = true;
      clearTimeout(announceTimer);
    },
  };
}
