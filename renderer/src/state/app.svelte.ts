// The window's state, created once in main.ts and shared by context. It owns the event
// subscriptions from main and hands each event to the part of the state it concerns.
import type { AppInfo, ParleyApi, Profile, Result } from '../../../preload/contract.ts';
import { humanError, settle } from '../lib/errors.ts';
import { ConnectionState } from './connection.svelte.ts';
import { Conversations } from './conversations.svelte.ts';
import { PeopleState } from './people.svelte.ts';
import { RelaysState } from './relays.svelte.ts';
import { SearchState } from './search.svelte.ts';
import { SettingsState } from './settings.svelte.ts';
import { UiState } from './ui.svelte.ts';
import { NameForm } from './name-form.svelte.ts';
import { PassphraseForm, UnlockForm, type PassphraseAction, type PassphraseChange } from './passphrase.svelte.ts';

export type Phase = 'loading' | 'failed' | 'locked' | 'setup' | 'connect' | 'chat';

export class AppState {
  readonly connection: ConnectionState;
  readonly people: PeopleState;
  readonly chats: Conversations;
  readonly relays: RelaysState;
  readonly search: SearchState;
  readonly settings: SettingsState;
  readonly ui = new UiState();
  readonly nameForm = new NameForm((name) => this.setupProfile(name));
  readonly unlockForm = new UnlockForm((passphrase) => this.unlock(passphrase));
  readonly passphraseForm = new PassphraseForm((change) => this.changePassphrase(change));

  profile = $state<Profile | null>(null);
  info = $state<AppInfo | null>(null);
  problem = $state<string | null>(null);
  private started = $state(false);
  /** The keys are sealed with a passphrase not given yet: main answers E_LOCKED to everything. */
  locked = $state(false);
  /** After setup: the connect screen or the conversations. */
  view = $state<'connect' | 'chat'>('connect');

  readonly phase = $derived<Phase>(this.problem ? 'failed' : this.locked ? 'locked' : !this.started ? 'loading' : !this.profile ? 'setup' : this.view);

  private readonly unsubscribe: (() => void)[] = [];

  constructor(readonly api: ParleyApi) {
    this.connection = new ConnectionState(api, () => (this.view = 'chat'));
    this.people = new PeopleState(api);
    this.chats = new Conversations(api, (peer) => this.people.get(peer)?.draft ?? '');
    this.relays = new RelaysState(api);
    this.search = new SearchState(api);
    this.settings = new SettingsState(api);
  }

  /** Subscribes first (so nothing is missed), then loads what the window shows. */
  async start(): Promise<void> {
    const api = this.api;
    this.unsubscribe.push(
      api.onStatus((status) => this.connection.changed(status)),
      api.onPerson((person) => this.people.upsert(person)),
      api.onMessageAdded((message) => this.chats.added(message)),
      api.onMessageUpdated((message) => this.chats.updated(message)),
      api.onMessageRemoved(({ peer, n }) => {
        this.chats.removed(peer, n);
        this.search.removed(peer, { n });
      }),
      api.onConversationCleared(({ peer, upTo }) => {
        this.chats.cleared(peer, upTo);
        this.search.removed(peer, { upTo });
      }),
      api.onTyping(({ peer, typing }) => this.chats.typing(peer, typing)),
      api.onRelaysFound((relays) => this.relays.discovered(relays)),
    );
    const clock = setInterval(() => this.ui.tick(), 30_000);
    this.unsubscribe.push(() => clearInterval(clock));
    // Closing or reloading the window: drafts typed in the last moment are sent to be kept too
    // (a call made as the page unloads may not arrive; the pause after typing is the promise).
    const saveDrafts = () => this.chats.saveDrafts();
    addEventListener('pagehide', saveDrafts);
    this.unsubscribe.push(() => removeEventListener('pagehide', saveDrafts));
    await this.load();
  }

  /**
   * Loads what the window shows, each part as its answer arrives (events that arrive
   * meanwhile are newer than the answers and win); with sealed keys, shows the unlock screen
   * instead.
   */
  private async load(): Promise<void> {
    const api = this.api;
    const [profile] = await Promise.all([
      settle(api.profile()),
      this.connection.load(),
      settle(api.settings()).then((settings) => {
        if (settings.ok) this.settings.loaded(settings.value);
      }),
      this.people.load(),
      settle(api.appInfo()).then((info) => {
        if (info.ok) this.info = info.value;
      }),
      this.relays.refresh(),
    ]);
    if (!profile.ok) {
      if (profile.error.code === 'E_LOCKED') this.locked = true;
      else this.problem = humanError(profile.error);
      return;
    }
    this.profile = profile.value;
    const c = this.connection.status.connection.state;
    this.view = c === 'offline' && !this.connection.hosting ? 'connect' : 'chat';
    this.started = true;
  }

  /** First run, or a new display name from Settings. Returns an error to show, or null. */
  async setupProfile(name: string): Promise<string | null> {
    const trimmed = name.trim();
    if (!trimmed) return 'Choose a name people will recognise.';
    const result = await settle(this.api.setupProfile({ name: trimmed }));
    if (!result.ok) return humanError(result.error);
    this.profile = result.value;
    return null;
  }

  /** The unlock screen's passphrase. Returns an error to show, or null once the keys are open. */
  async unlock(passphrase: string): Promise<string | null> {
    const result = await settle(this.api.unlock({ passphrase }));
    if (!result.ok) return humanError(result.error);
    this.locked = false;
    await this.load();
    return null;
  }

  /** Seals the keys with a new passphrase, changes it, or takes it away. Returns an error to show, or null. */
  async changePassphrase(change: PassphraseChange): Promise<string | null> {
    const result = await settle(this.passphraseRequest(change));
    if (!result.ok) return humanError(result.error);
    if (this.profile) this.profile = { ...this.profile, secretProtection: result.value };
    this.ui.close();
    return null;
  }

  private passphraseRequest(change: PassphraseChange): Promise<Result<Profile['secretProtection']>> {
    switch (change.action) {
      case 'protect':
        return this.api.setPassphrase({ passphrase: change.passphrase });
      case 'change':
        return this.api.setPassphrase({ passphrase: change.passphrase, current: change.current });
      case 'remove':
        return this.api.removePassphrase({ current: change.current });
    }
  }

  openPassphrase(action: PassphraseAction): void {
    this.passphraseForm.reset(action);
    this.ui.open({ kind: 'passphrase' });
  }

  openSettings(): void {
    this.nameForm.reset(this.profile?.name ?? '');
    // Relays joined since the list was read (main remembers one once it is online there).
    void this.relays.refresh();
    this.ui.open({ kind: 'settings' });
  }

  openVerify(peer: string): void {
    this.ui.open({ kind: 'verify', peer });
    void this.people.loadSafety(peer);
  }

  /** Opens a conversation chosen from a list and puts the cursor in its composer. */
  async openChat(peer: string): Promise<void> {
    this.ui.focusComposer();
    await this.chats.open(peer);
  }

  showConversations(): void {
    this.view = 'chat';
  }

  showConnect(): void {
    this.ui.close();
    this.connection.clearError();
    void this.relays.refresh();
    this.view = 'connect';
  }

  dispose(): void {
    for (const stop of this.unsubscribe.splice(0)) stop();
  }
}
