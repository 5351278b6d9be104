// What the window shows on top of the conversation, and whether the window has focus
// (messages count as read only while it does).
import type { Message } from '../../../preload/contract.ts';

export type Dialog =
  | { kind: 'none' }
  | { kind: 'search' }
  | { kind: 'settings' }
  | { kind: 'jump' }
  | { kind: 'verify'; peer: string }
  | { kind: 'passphrase' }
  | { kind: 'delete'; message: Message }
  | { kind: 'clear'; peer: string };

export class UiState {
  dialog = $state<Dialog>({ kind: 'none' });
  /** Whether the window has focus; it may open without (focus-stealing prevention, a click elsewhere meanwhile). */
  focused = $state(document.hasFocus());
  /** Bumped to ask the composer to take focus (after choosing a person). */
  composerFocus = $state(0);
  /** The clock "last seen 5 min ago" is measured against, ticking twice a minute. */
  now = $state(Date.now());
  /** The quick switcher (Ctrl/Cmd+K). */
  jumpQuery = $state('');
  /** The highlighted person's id (null: the first match): the list re-sorts as people come and go. */
  jumpPerson = $state<string | null>(null);

  open(dialog: Dialog): void {
    if (dialog.kind === 'jump') this.setJumpQuery('');
    this.dialog = dialog;
  }

  setJumpQuery(query: string): void {
    this.jumpQuery = query;
    this.jumpPerson = null;
  }

  tick(): void {
    this.now = Date.now();
  }

  close(): void {
    this.dialog = { kind: 'none' };
  }

  /** The last request the composer acted on; plain, so acting on it changes no state. */
  private composerFocused = 0;

  focusComposer(): void {
    this.composerFocus++;
  }

  /** True once per request, whether the composer already existed or was just created. */
  claimComposerFocus(): boolean {
    const wanted = this.composerFocus;
    if (wanted === this.composerFocused) return false;
    this.composerFocused = wanted;
    return true;
  }

  windowFocus(focused: boolean): void {
    this.focused = focused;
  }
}
