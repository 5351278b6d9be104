// One conversation: the loaded window of its history (paged both ways), the draft (kept by
// main, so that it survives a restart), the peer's typing and sending. Messages arrive from
// main as events and merge by n.
import type { DraftLimit, Message, ParleyApi, TextLimit } from '../../../preload/contract.ts';
import { humanError, settle } from '../lib/errors.ts';
import { lowerBound, merge, upsert } from '../lib/messages.ts';
import { TypingNotifier } from '../lib/typing.ts';
import { cutText, roomLeft } from '../lib/text-room.ts';
import { ListView } from './list-view.svelte.ts';

export const PAGE = 100;
/** What one message can hold (main refuses more); the composer counts down near it. */
export const TEXT_LIMIT: TextLimit = 16_384;
/** The longest draft main keeps: of a longer one, its beginning (the whole stays in the window). */
const DRAFT_LIMIT: DraftLimit = 65_536;
/** A draft is saved this long after the last keystroke, and at once when the conversation is left. */
export const DRAFT_SAVE_MS = 500;
/** Context loaded above a search hit so it is not the first thing in the list. */
const CONTEXT = 30;
/** A typing signal without a follow-up expires (the peer may have gone away). */
const TYPING_EXPIRES_MS = 8_000;

type LoadState = 'idle' | 'loading' | 'ready' | 'failed';
/** A message or conversation event that arrived while a page was on its way. */
type Raced = { kind: 'added' | 'updated'; message: Message } | { kind: 'removed'; n: number } | { kind: 'cleared'; upTo: number };

export class Conversation {
  messages = $state.raw<readonly Message[]>([]);
  load = $state<LoadState>('idle');
  loadError = $state<string | null>(null);
  /** Nothing older than the first loaded message. */
  reachedStart = $state(false);
  /** The loaded window ends at the newest message (false after jumping to a search hit). */
  atLatest = $state(true);
  loadingOlder = $state(false);
  loadingNewer = $state(false);
  peerTyping = $state(false);
  draft = $state('');
  sendError = $state<string | null>(null);
  /** A message to point out briefly (the search hit jumped to), until it has been (or the window moves on). */
  highlight = $state<number | null>(null);
  /** Where the "new messages" divider goes. */
  firstUnread = $state<number | null>(null);
  readonly view: ListView;

  private readonly typing: TypingNotifier;
  private typingTimer: ReturnType<typeof setTimeout> | null = null;
  /** The draft as main keeps it, as far as the window knows (null: not known, save anyway). */
  private savedDraft: string | null;
  private draftTimer: ReturnType<typeof setTimeout> | null = null;
  /** The person has typed or sent here: what main kept (or the list still says it keeps) is no longer what to show. */
  private edited = false;
  private markedUpTo = 0;
  private generation = 0;
  /** One list per page on its way, of the events that arrive meanwhile (plain: nothing renders it). */
  // eslint-disable-next-line svelte/prefer-svelte-reactivity
  private readonly racing = new Set<Raced[]>();

  /** `storedDraft`: the draft main keeps for this conversation (the people list carries it). */
  constructor(
    private readonly api: ParleyApi,
    readonly peer: string,
    private readonly storedDraft: () => string = () => '',
  ) {
    this.view = new ListView(() => this.messages);
    this.typing = new TypingNotifier((typing) => void settle(this.api.setTyping({ peer, typing })));
    this.draft = this.savedDraft = storedDraft();
  }

  /** Opened in the window: load the newest page the first time. */
  async open(): Promise<void> {
    this.restoreDraft();
    this.view.shown();
    this.highlight = null;
    if (this.load === 'idle' || this.load === 'failed') {
      await this.loadLatest(true);
      return;
    }
    this.firstUnread = this.findFirstUnread();
    // Left at the newest message: what came meanwhile is shown from its first message, as on
    // a first open, not from below (where it would all count as seen). Someone who had
    // scrolled back to older messages comes back to where they were.
    if (this.firstUnread !== null && this.view.stuck) this.view.reveal(this.firstUnread);
  }

  /** Made before the people list came (by a typing notice), it had no draft: the kept one is known now. */
  private restoreDraft(): void {
    if (!this.edited && this.draft === '') this.draft = this.savedDraft = this.storedDraft();
  }

  private findFirstUnread(): number | null {
    return this.messages.find((m) => m.direction === 'in' && m.readAt === null && m.n > this.markedUpTo)?.n ?? null;
  }

  /**
   * Replaces the window with the newest page. On opening, with unread messages, it opens at
   * the first of them instead, with the "new messages" line there: the newest page alone
   * would miss (and, scrolled past, mark read) any beyond it.
   */
  async loadLatest(showUnread = false): Promise<void> {
    const generation = ++this.generation;
    this.load = 'loading';
    if (showUnread) {
      const first = await settle(this.api.firstUnread({ peer: this.peer }));
      if (generation !== this.generation) return;
      if (first.ok && first.value !== null) {
        await this.loadAround(first.value, generation, 'unread');
        return;
      }
    }
    const [result, raced] = await this.paged(settle(this.api.page({ peer: this.peer, limit: PAGE })));
    if (generation !== this.generation) return;
    if (!result.ok) {
      this.load = 'failed';
      this.loadError = humanError(result.error);
      return;
    }
    this.messages = result.value;
    this.reachedStart = result.value.length < PAGE;
    this.atLatest = true;
    this.load = 'ready';
    this.loadError = null;
    this.highlight = null;
    this.replay(raced);
    this.view.follow();
    if (showUnread) {
      // Before the window renders (and marks them read), note where unread messages start.
      this.firstUnread = this.findFirstUnread();
      if (this.firstUnread !== null) this.view.reveal(this.firstUnread);
    }
  }

  async loadOlder(): Promise<void> {
    const first = this.messages[0];
    if (this.reachedStart || this.loadingOlder || this.load !== 'ready' || !first) return;
    const generation = this.generation;
    this.loadingOlder = true;
    const [result, raced] = await this.paged(settle(this.api.page({ peer: this.peer, before: first.n, limit: PAGE })));
    this.loadingOlder = false;
    if (generation !== this.generation || !result.ok) return;
    this.reachedStart = result.value.length < PAGE;
    this.messages = merge(this.messages, result.value);
    this.replay(raced);
  }

  async loadNewer(): Promise<void> {
    const last = this.messages[this.messages.length - 1];
    if (this.atLatest || this.loadingNewer || this.load !== 'ready' || !last) return;
    const generation = this.generation;
    this.loadingNewer = true;
    const [result, raced] = await this.paged(settle(this.api.pageFrom({ peer: this.peer, n: last.n + 1, limit: PAGE })));
    this.loadingNewer = false;
    if (generation !== this.generation || !result.ok) return;
    this.atLatest = result.value.length < PAGE;
    this.messages = merge(this.messages, result.value);
    this.replay(raced);
  }

  /** Loads the history around message `n` and scrolls to it (opening a search result). */
  async jumpTo(n: number): Promise<void> {
    this.restoreDraft();
    await this.loadAround(n, ++this.generation, 'hit');
  }

  /**
   * Replaces the window with a page from message `n` and a little before it, and shows `n`:
   * a search hit, highlighted, or the first unread message, under the "new messages" line.
   */
  private async loadAround(n: number, generation: number, show: 'hit' | 'unread'): Promise<void> {
    this.load = 'loading';
    const [[from, before], raced] = await this.paged(
      Promise.all([settle(this.api.pageFrom({ peer: this.peer, n, limit: PAGE })), settle(this.api.page({ peer: this.peer, before: n, limit: CONTEXT }))]),
    );
    if (generation !== this.generation) return;
    if (!from.ok) {
      this.load = 'failed';
      this.loadError = humanError(from.error);
      return;
    }
    const older = before.ok ? before.value : [];
    this.messages = merge(older, from.value);
    this.reachedStart = before.ok && older.length < CONTEXT;
    this.atLatest = from.value.length < PAGE;
    this.load = 'ready';
    this.loadError = null;
    this.replay(raced);
    // Now, before the window renders (and marks what it shows read).
    if (show === 'unread') this.firstUnread = this.findFirstUnread();
    this.highlight = show === 'hit' ? n : null;
    this.view.reveal(show === 'unread' ? (this.firstUnread ?? n) : n);
  }

  /**
   * Asks main for pages, noting the events that arrive meanwhile. Main sends events and
   * answers in order, so each event is at least as new as what the pages hold: `replay`
   * applies them once the pages are in place, including those the window dropped meanwhile
   * (newer than it, or outside it).
   */
  private async paged<T>(pages: Promise<T>): Promise<[T, readonly Raced[]]> {
    const raced: Raced[] = [];
    this.racing.add(raced);
    try {
      return [await pages, raced];
    } finally {
      this.racing.delete(raced);
    }
  }

  private replay(raced: readonly Raced[]): void {
    for (const event of raced) {
      if (event.kind === 'removed') this.drop(event.n);
      else if (event.kind === 'cleared') this.dropUpTo(event.upTo);
      else if (event.kind === 'added') this.take(event.message);
      else this.updated(event.message);
    }
  }

  added(message: Message): void {
    if (message.direction === 'in') this.setPeerTyping(false);
    for (const raced of this.racing) raced.push({ kind: 'added', message });
    this.take(message);
  }

  private take(message: Message): void {
    // Outside the loaded window, paging forward will bring it.
    if (!this.atLatest || this.load === 'failed') return;
    this.messages = upsert(this.messages, message);
  }

  updated(message: Message): void {
    for (const raced of this.racing) raced.push({ kind: 'updated', message });
    const before = this.messages;
    const first = before[0];
    const last = before[before.length - 1];
    if (!first || !last || message.n < first.n || message.n > last.n) return;
    this.messages = upsert(before, message);
  }

  /** Main deleted message `n`: it leaves the window. */
  removed(n: number): void {
    for (const raced of this.racing) raced.push({ kind: 'removed', n });
    this.drop(n);
  }

  private drop(n: number): void {
    const at = lowerBound(this.messages, n);
    if (this.messages[at]?.n !== n) return;
    const next = this.messages.slice();
    next.splice(at, 1);
    this.messages = next;
    if (this.highlight === n) this.highlight = null;
    if (this.firstUnread === n) this.firstUnread = this.unreadAfter(n);
  }

  /** Where the "new messages" line goes when the message under it is deleted: to the next one that was unread with it. */
  private unreadAfter(n: number): number | null {
    return this.messages.find((m) => m.n > n && m.direction === 'in' && m.readAt === null)?.n ?? null;
  }

  /** Main deleted every message up to `upTo` (the conversation was cleared). */
  cleared(upTo: number): void {
    for (const raced of this.racing) raced.push({ kind: 'cleared', upTo });
    this.dropUpTo(upTo);
  }

  private dropUpTo(upTo: number): void {
    const at = lowerBound(this.messages, upTo + 1);
    if (at > 0) this.messages = this.messages.slice(at);
    // Nothing older than what is left: it was all deleted.
    this.reachedStart = true;
    if (this.highlight !== null && this.highlight <= upTo) this.highlight = null;
    if (this.firstUnread !== null && this.firstUnread <= upTo) this.firstUnread = this.unreadAfter(upTo);
    // Scrolled back, the window may hold nothing now, with newer messages not loaded.
    if (!this.atLatest && this.load === 'ready') void this.loadLatest();
  }

  /** Deletes every message with this person from this computer ('conversation:cleared' empties the window). */
  async clear(): Promise<void> {
    const result = await settle(this.api.clearConversation({ peer: this.peer }));
    if (!result.ok) this.sendError = humanError(result.error);
  }

  /**
   * Deletes a message from this computer ('message:removed' takes it out of the window). A
   * queued message that may have reached the relay meanwhile may still arrive: the person is told.
   */
  async remove(n: number): Promise<void> {
    const result = await settle(this.api.deleteMessage({ n }));
    if (!result.ok) this.sendError = humanError(result.error);
    else if (result.value.state === 'queued' && !result.value.withdrawn) this.sendError = 'That message may have reached the relay before you deleted it, so it may still arrive.';
  }

  /** The error shown is that the draft is too long: it goes once the draft fits. */
  private tooLong = false;

  /** Characters the draft (as it would be sent) can still take: negative when it is too long (lib/text-room.ts). Once per draft. */
  readonly charactersLeft = $derived(roomLeft(this.draft.trim(), TEXT_LIMIT));

  /** Sends the draft. Returns false (keeping the draft) when it could not be sent. */
  async send(): Promise<boolean> {
    const text = this.draft.trim();
    if (!text) return false;
    const left = this.charactersLeft;
    if (left < 0) {
      const why = text.length > TEXT_LIMIT ? `over the limit of ${TEXT_LIMIT.toLocaleString()}` : 'too many (letters outside the Latin alphabet and emoji take more room)';
      this.sendError = `This message is too long to send: ${(-left).toLocaleString()} characters ${why}. Shorten it or send it in parts.`;
      this.tooLong = true;
      return false;
    }
    this.typing.stop();
    this.draft = '';
    // Main removes the kept draft when it stores the message: a save still waiting would bring
    // it back, and so would the list's copy of it until main's update comes.
    this.cancelDraftSave();
    this.savedDraft = '';
    this.edited = true;
    this.sendError = null;
    this.tooLong = false;
    // Asked before anything typed from now on is saved, which the message's storing would remove.
    const sending = settle(this.api.send({ peer: this.peer, text }));
    if (!this.atLatest) await this.loadLatest();
    this.view.follow();
    const result = await sending;
    if (!result.ok) {
      this.sendError = humanError(result.error);
      // Back in the composer, before anything typed while it was being sent; kept, as it was not sent.
      this.draft = this.draft.trim() ? `${text}\n${this.draft}` : text;
      this.savedDraft = null;
      this.saveDraft();
      return false;
    }
    this.added(result.value);
    return true;
  }

  async retry(n: number): Promise<void> {
    const result = await settle(this.api.retry({ n }));
    if (result.ok) {
      this.updated(result.value);
    } else {
      this.tooLong = false;
      this.sendError = humanError(result.error);
    }
  }

  /** The person typed in the composer. */
  composing(): void {
    this.edited = true;
    this.cancelDraftSave();
    this.draftTimer = setTimeout(() => this.saveDraft(), DRAFT_SAVE_MS);
    if (this.draft.trim()) this.typing.input();
    else this.typing.stop();
    if (this.tooLong && this.charactersLeft >= 0) {
      this.tooLong = false;
      this.sendError = null;
    }
  }

  /** The conversation left the window (or the composer its focus). */
  leave(): void {
    this.typing.stop();
    this.saveDraft();
  }

  /** Has main keep the draft as it is now, unless it already does. */
  saveDraft(): void {
    this.cancelDraftSave();
    const text = this.draft.trim() === '' ? '' : cutText(this.draft, DRAFT_LIMIT);
    if (text === this.savedDraft) return;
    this.savedDraft = text;
    void settle(this.api.saveDraft({ peer: this.peer, text })).then((result) => {
      // Not kept (a full disk): the next save tries again.
      if (!result.ok && this.savedDraft === text) this.savedDraft = null;
    });
  }

  private cancelDraftSave(): void {
    if (this.draftTimer !== null) clearTimeout(this.draftTimer);
    this.draftTimer = null;
  }

  setPeerTyping(typing: boolean): void {
    if (this.typingTimer !== null) clearTimeout(this.typingTimer);
    this.typingTimer = typing ? setTimeout(() => this.setPeerTyping(false), TYPING_EXPIRES_MS) : null;
    this.peerTyping = typing;
  }

  /** Tells main that incoming messages up to `n` were seen (only ever forward). */
  markReadUpTo(n: number): void {
    if (n <= this.markedUpTo) return;
    this.markedUpTo = n;
    void settle(this.api.markRead({ peer: this.peer, upTo: n }));
  }
}
