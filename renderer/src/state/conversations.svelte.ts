// Every conversation the window has touched, and which one is open. Conversations are
// kept when switching away, so drafts, loaded history and scroll position survive.
import { SvelteMap } from 'svelte/reactivity';
import type { Message, ParleyApi } from '../../../preload/contract.ts';
import { Conversation } from './conversation.svelte.ts';

export class Conversations {
  selected = $state<string | null>(null);
  private readonly byPeer = new SvelteMap<string, Conversation>();
  readonly current = $derived(this.selected === null ? null : (this.byPeer.get(this.selected) ?? null));

  /** `storedDraft`: the draft main keeps for a conversation. */
  constructor(
    private readonly api: ParleyApi,
    private readonly storedDraft: (peer: string) => string = () => '',
  ) {}

  get(peer: string): Conversation {
    let conversation = this.byPeer.get(peer);
    if (!conversation) {
      conversation = new Conversation(this.api, peer, () => this.storedDraft(peer));
      this.byPeer.set(peer, conversation);
    }
    return conversation;
  }

  peek(peer: string): Conversation | undefined {
    return this.byPeer.get(peer);
  }

  async open(peer: string): Promise<Conversation> {
    const conversation = this.get(peer);
    if (this.selected !== peer) this.current?.leave();
    this.selected = peer;
    await conversation.open();
    return conversation;
  }

  /** Opens a conversation at a message (a search result). */
  async openAt(peer: string, n: number): Promise<void> {
    const conversation = this.get(peer);
    if (this.selected !== peer) this.current?.leave();
    this.selected = peer;
    await conversation.jumpTo(n);
  }

  /** Has main keep every draft as it is now (the window is going away). */
  saveDrafts(): void {
    for (const conversation of this.byPeer.values()) conversation.saveDraft();
  }

  added(message: Message): void {
    this.byPeer.get(message.peer)?.added(message);
  }

  updated(message: Message): void {
    this.byPeer.get(message.peer)?.updated(message);
  }

  removed(peer: string, n: number): void {
    this.byPeer.get(peer)?.removed(n);
  }

  cleared(peer: string, upTo: number): void {
    this.byPeer.get(peer)?.cleared(upTo);
  }

  typing(peer: string, typing: boolean): void {
    this.get(peer).setPeerTyping(typing);
  }
}
