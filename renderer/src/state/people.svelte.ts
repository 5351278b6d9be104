// Everyone the history knows, kept current by 'person' events, in the order a messenger
// shows them: online first, then whoever wrote last.
import { SvelteMap } from 'svelte/reactivity';
import type { ParleyApi, Person, SafetyInfo } from '../../../preload/contract.ts';
import { humanError, settle } from '../lib/errors.ts';

export function comparePeople(a: Person, b: Person): number {
  if (a.online !== b.online) return a.online ? -1 : 1;
  const recent = (b.last?.at ?? 0) - (a.last?.at ?? 0);
  if (recent !== 0) return recent;
  return a.name.localeCompare(b.name) || a.id.localeCompare(b.id);
}

export function matchesFilter(person: Person, filter: string): boolean {
  const needle = filter.trim().toLocaleLowerCase();
  if (!needle) return true;
  return person.name.toLocaleLowerCase().includes(needle);
}

export class PeopleState {
  private readonly byId = new SvelteMap<string, Person>();
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

  readonly sorted = $derived([...this.byId.values()].sort(comparePeople));
  readonly visible = $derived(this.filter.trim() ? this.sorted.filter((p) => matchesFilter(p, this.filter)) : this.sorted);
  readonly totalUnread = $derived(this.sorted.reduce((sum, p) => sum + p.unread, 0));
  readonly onlineCount = $derived(this.sorted.filter((p) => p.online).length);

  constructor(private readonly api: ParleyApi) {}

  get(id: string): Person | undefined {
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
    this.loaded = true;
  }

  upsert(person: Person): void {
    this.changedAt.set(person.id, ++this.events);
    this.byId.set(person.id, person);
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
