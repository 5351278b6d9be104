// Everyone the history knows, kept current by 'person' events, in the order a messenger
// shows them: online first, then whoever wrote last.
//
// With thousands of people (a relay for an organisation), 'person' events come by the
// hundred when people come online, and by the thousand after a directory sync. An event
// moves its person within the sorted list (a binary search) instead of sorting everyone
// again; and events that arrive while the window is still busy with the one before (a
// flood, one IPC message after another) are put in the list together, once it is done.
import { untrack } from 'svelte';
import { SvelteMap } from 'svelte/reactivity';
import type { ParleyApi, Person, SafetyInfo } from '../../../preload/contract.ts';
import { humanError, settle } from '../lib/errors.ts';

export function comparePeople(a: Person, b: Person): number {
  if (a.online !== b.online) return a.online ? -1 : 1;
  const recent = (b.last?.at ?? 0) - (a.last?.at ?? 0);
  if (recent !== 0) return recent;
  return a.name.localeCompare(b.name) || a.id.localeCompare(b.id);
}

/** Index of the first person in `list` (sorted by comparePeople) that does not sort before `person`. */
function lowerBound(list: readonly Person[], person: Person): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (comparePeople(list[mid] as Person, person) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** A person as listed before a change (undefined if new) and after it. */
export type PersonChange = readonly [before: Person | undefined, after: Person];

/** More changes at once than this, and sorting everyone again is quicker than moving each. */
const RESORT_AFTER = 256;

/** The sorted list with each change's `before` taken out and its `after` put in its place in the order. */
export function moved(list: readonly Person[], changes: readonly PersonChange[]): Person[] {
  const next = list.slice();
  for (const [before, after] of changes) {
    if (before) {
      let at = lowerBound(next, before);
      if (next[at] !== before) at = next.findIndex((p) => p.id === before.id);
      if (at >= 0) next.splice(at, 1);
    }
    next.splice(lowerBound(next, after), 0, after);
  }
  return next;
}

/** The people whose name contains `filter` (any case), in the list's order. */
export function filterPeople(list: readonly Person[], filter: string): readonly Person[] {
  const needle = filter.trim().toLocaleLowerCase();
  return needle ? list.filter((p) => p.name.toLocaleLowerCase().includes(needle)) : list;
}

export class PeopleState {
  // Plain, with one signal for all (`revision`): a reactive map would cost a signal per
  // person, thousands of them to set up when the list arrives.
  // eslint-disable-next-line svelte/prefer-svelte-reactivity
  private readonly byId = new Map<string, Person>();
  /** Bumped whenever someone in byId changes. */
  private revision = $state(0);
  /** Changes not in `list` yet: they came while the window was busy with the one before. */
  private queued: PersonChange[] = [];
  /** A change was shown, and the window has not yet done what was waiting meanwhile (a task later). */
  private busy = false;
  /**
   * Runs catchUp a task later, as setTimeout(0) would, but through a MessageChannel: a timer is
   * throttled in a hidden window (and held by a page's fake clock), and changes would wait behind it.
   */
  private readonly later = (() => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => this.catchUp();
    return () => channel.port2.postMessage(null);
  })();
  filter = $state('');
  loaded = $state(false);
  /** The safety number shown in the Verify dialog. */
  safety = $state<SafetyInfo | null>(null);
  /** What went wrong checking, verifying or accepting someone's key, by person, until an action for them succeeds. */
  private readonly trustErrors = new SvelteMap<string, string>();
  /** 'person' events so far, and the count when each person last changed: to tell which came after a list was asked for. */
  private events = 0;
  // Plain: nothing renders it.
  // eslint-disable-next-line svelte/prefer-svelte-reactivity
  private readonly changedAt = new Map<string, number>();

  /** Everyone, sorted by comparePeople: replaced (never changed in place) on every change. */
  private list = $state.raw<readonly Person[]>([]);
  readonly visible = $derived(filterPeople(this.list, this.filter));
  readonly totalUnread = $derived(this.sorted.reduce((sum, p) => sum + p.unread, 0));
  readonly onlineCount = $derived(this.sorted.filter((p) => p.online).length);

  constructor(private readonly api: ParleyApi) {}

  /** Everyone, in the order the list shows them. */
  get sorted(): readonly Person[] {
    return this.list;
  }

  get(id: string): Person | undefined {
    void this.revision;
    return this.byId.get(id);
  }

  trustError(peer: string): string | null {
    return this.trustErrors.get(peer) ?? null;
  }

  /**
   * Everyone, as main lists them. A person whose event arrives while the list is on its way
   * keeps what the event said: main sends events and answers in order, so it is newer.
   */
  async load(): Promise<void> {
    const asked = this.events;
    const result = await settle(this.api.people());
    if (result.ok) this.replaceAll(result.value, asked);
  }

  /** The people main listed; those changed by an event after `asked` keep that event's state. */
  replaceAll(people: readonly Person[], asked = this.events): void {
    const newer = (id: string) => (this.changedAt.get(id) ?? 0) > asked;
    for (const id of [...this.byId.keys()]) if (!newer(id)) this.byId.delete(id);
    for (const person of people) if (!newer(person.id)) this.byId.set(person.id, person);
    this.queued = [];
    this.list = [...this.byId.values()].sort(comparePeople);
    this.changed();
    this.loaded = true;
  }

  upsert(person: Person): void {
    this.changedAt.set(person.id, ++this.events);
    const change: PersonChange = [this.byId.get(person.id), person];
    this.byId.set(person.id, person);
    this.changed();
    if (!this.busy) {
      this.list = moved(untrack(() => this.list), [change]);
      this.busy = true;
      this.later();
    } else {
      this.queued.push(change);
    }
  }

  /** Puts the changes that came meanwhile in the list, all at once; the next ones wait for the window again. */
  private catchUp(): void {
    this.busy = false;
    const changes = this.queued;
    if (changes.length === 0) return;
    this.queued = [];
    this.list = changes.length > RESORT_AFTER ? [...this.byId.values()].sort(comparePeople) : moved(untrack(() => this.list), changes);
    this.busy = true;
    this.later();
  }

  private changed(): void {
    this.revision = untrack(() => this.revision) + 1;
  }

  async loadSafety(peer: string): Promise<void> {
    this.safety = null;
    this.trustErrors.delete(peer);
    const result = await settle(this.api.safety({ peer }));
    if (result.ok) this.safety = result.value;
    else this.trustErrors.set(peer, humanError(result.error));
  }

  async verify(peer: string, verified: boolean): Promise<void> {
    const result = await settle(this.api.verify({ peer, verified }));
    if (!result.ok) {
      this.trustErrors.set(peer, humanError(result.error));
      return;
    }
    this.trustErrors.delete(peer);
    this.upsert(result.value);
    if (this.safety?.peer === peer) this.safety = { ...this.safety, verified };
  }

  async acceptKey(peer: string): Promise<void> {
    const result = await settle(this.api.acceptKey({ peer }));
    if (!result.ok) {
      this.trustErrors.set(peer, humanError(result.error));
      return;
    }
    this.trustErrors.delete(peer);
    this.upsert(result.value);
  }
}
