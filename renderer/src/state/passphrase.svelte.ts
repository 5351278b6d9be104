// The passphrase fields: unlocking at start; sealing the keys when the system keyring does
// not really protect them (RELIABILITY C8); changing or removing the passphrase later.

/** Shortest passphrase offered; main/core/passphrase.ts and the IPC schema hold the same limits. */
export const PASSPHRASE_MIN = 8;
export const PASSPHRASE_MAX = 1024;

/** The unlock screen's field. */
export class UnlockForm {
  passphrase = $state('');
  error = $state<string | null>(null);
  busy = $state(false);

  constructor(private readonly open: (passphrase: string) => Promise<string | null>) {}

  async submit(): Promise<boolean> {
    if (!this.passphrase) {
      this.error = 'Enter your passphrase.';
      return false;
    }
    this.busy = true;
    this.error = await this.open(this.passphrase);
    this.busy = false;
    if (this.error === null) this.passphrase = '';
    return this.error === null;
  }
}

/** What the passphrase dialog does: seal the keys, change the passphrase, or take it away. */
export type PassphraseAction = 'protect' | 'change' | 'remove';

/** What the dialog asks main to do, with just the fields that action needs. */
export type PassphraseChange =
  | { action: 'protect'; passphrase: string }
  | { action: 'change'; passphrase: string; current: string }
  | { action: 'remove'; current: string };

/** The current passphrase (to change or remove it) and a new one, typed twice. */
export class PassphraseForm {
  action = $state<PassphraseAction>('protect');
  current = $state('');
  passphrase = $state('');
  confirm = $state('');
  error = $state<string | null>(null);
  busy = $state(false);

  constructor(private readonly save: (change: PassphraseChange) => Promise<string | null>) {}

  reset(action: PassphraseAction = this.action): void {
    this.action = action;
    this.current = '';
    this.passphrase = '';
    this.confirm = '';
    this.error = null;
  }

  /** What is wrong with the fields, in words, or null. */
  problem(): string | null {
    if (this.action !== 'protect' && !this.current) return 'Enter your current passphrase.';
    if (this.action === 'remove') return null;
    if (this.passphrase.length < PASSPHRASE_MIN) return `Use at least ${PASSPHRASE_MIN} characters.`;
    if (this.passphrase.length > PASSPHRASE_MAX) return `Use at most ${PASSPHRASE_MAX} characters.`;
    if (this.passphrase !== this.confirm) return 'The two passphrases do not match.';
    return null;
  }

  private change(): PassphraseChange {
    switch (this.action) {
      case 'protect':
        return { action: 'protect', passphrase: this.passphrase };
      case 'change':
        return { action: 'change', passphrase: this.passphrase, current: this.current };
      case 'remove':
        return { action: 'remove', current: this.current };
      default: {
        const unknown: never = this.action;
        return unknown;
      }
    }
  }

  async submit(): Promise<boolean> {
    this.error = this.problem();
    if (this.error) return false;
    this.busy = true;
    this.error = await this.save(this.change());
    this.busy = false;
    if (this.error === null) this.reset();
    return this.error === null;
  }
}
