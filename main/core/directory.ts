// What the relay says about people, checked before it is believed: the id must derive from
// the identity key, and the key-agreement key must be signed by it. A relay cannot forge either.
import { UserEntrySchema, type UserEntry } from '../../relay/protocol.ts';
import { kaStatement, userIdOf, verifySignature } from '../../relay/identity.ts';
import type { Person } from '../../preload/contract.ts';
import type { History, PeerSummary } from './history/index.ts';
import { fingerprint } from './identity.ts';

export function verifiedEntry(input: unknown): UserEntry | null {
  const parsed = UserEntrySchema.safeParse(input);
  if (!parsed.success) return null;
  const entry = parsed.data;
  if (userIdOf(entry.idKey) !== entry.id) return null;
  if (!verifySignature(entry.idKey, kaStatement(entry.kaKey), entry.kaSig)) return null;
  return entry;
}

/** Live presence, newest revision wins. */
export class Presence {
  private readonly known = new Map<string, { online: boolean; lastSeen: number; rev: number }>();

  /** Returns false when the update is older than what is known. */
  update(entry: UserEntry): boolean {
    const current = this.known.get(entry.id);
    if (current && current.rev > entry.rev) return false;
    this.known.set(entry.id, { online: entry.online, lastSeen: entry.lastSeen, rev: entry.rev });
    return true;
  }

  get(id: string): { online: boolean; lastSeen: number } {
    return this.known.get(id) ?? { online: false, lastSeen: 0 };
  }

  /**
   * Leaving a relay: nobody is known to be online any more. Returns who was; they were last
   * seen `now` (the relay's lastSeen for someone online is when they connected). The revisions
   * are forgotten too: a rev is one relay's clock, and the next relay's (or this one's after a
   * restart) may be behind it.
   */
  clear(now: number): string[] {
    const were: string[] = [];
    for (const [id, value] of this.known) {
      if (value.online) {
        were.push(id);
        value.lastSeen = Math.max(value.lastSeen, now);
      }
      value.online = false;
      value.rev = Number.NEGATIVE_INFINITY;
    }
    return were;
  }
}

/**
 * Fingerprints by identity key, as they are shown in every person's row: hashing ten thousand
 * keys was half the time of listing everyone (a relay for an organisation). Bounded, though
 * keys change rarely.
 */
const fingerprints = new Map<string, string>();
const FINGERPRINTS_KEPT = 100_000;

function fingerprintOf(idKey: string): string {
  let known = fingerprints.get(idKey);
  if (known === undefined) {
    if (fingerprints.size >= FINGERPRINTS_KEPT) fingerprints.clear();
    known = fingerprint(idKey);
    fingerprints.set(idKey, known);
  }
  return known;
}

export function personOf(summary: PeerSummary, presence: Presence, me: string, namesInUse: Map<string, number>): Person {
  const { peer } = summary;
  const live = presence.get(peer.id);
  return {
    id: peer.id,
    name: peer.name,
    fingerprint: fingerprintOf(peer.idKey),
    online: live.online,
    lastSeen: Math.max(live.lastSeen, peer.lastSeen),
    unread: summary.unread,
    last: summary.last ? { text: summary.last.flagged ? '' : summary.last.text, direction: summary.last.direction, at: summary.last.createdAt, flagged: summary.last.flagged } : null,
    verified: peer.verified,
    keyChanged: peer.pendingKaKey !== null,
    nameClash: peer.id !== me && (namesInUse.get(peer.name.toLocaleLowerCase()) ?? 0) > 1,
    draft: summary.draft,
  };
}

/**
 * Everyone the history knows, as the window shows them; given ids, only those people (cheap
 * with thousands of peers: one summary each, and only names read of everyone else).
 */
export function people(history: History, presence: Presence, me: string, ids?: readonly string[]): Person[] {
  const summaries = history.summaries(ids).filter((s) => s.peer.id !== me);
  // A name clashes with anyone the history knows, not only with those asked for.
  const everyone = ids ? history.peerNames().filter((p) => p.id !== me) : summaries.map((s) => s.peer);
  const names = new Map<string, number>();
  for (const p of everyone) names.set(p.name.toLocaleLowerCase(), (names.get(p.name.toLocaleLowerCase()) ?? 0) + 1);
  return summaries.map((s) => personOf(s, presence, me, names));
}
