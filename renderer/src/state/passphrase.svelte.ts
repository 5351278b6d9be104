// The passphrase fields: unlocking at start, and sealing the keys when the system keyring
// does not really protect them (RELIABILITY C8).

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

/** A new passphrase, typed twice. */
export class PassphraseForm {
  passphrase = $state('');
  confirm = $state('');
  error = $state<string | null>(null);
  busy = $state(false);

  constructor(private readonly save: (passphrase: string) => Promise<string | null>) {}

  reset(): void {
    this.passphrase = '';
    this.confirm = '';
    this.error = null;
  }

  /** What is wrong with the fields, in words, or null. */
  problem(): string | null {
    if (this.passphrase.length < PASSPHRASE_MIN) return `Use at least ${PASSPHRASE_MIN} characters.`;
    if (this.passphrase.length > PASSPHRASE_MAX) return `Use at most ${PASSPHRASE_MAX} characters.`;
    if (this.passphrase !== this.confirm) return 'The two passphrases do not match.';
    return null;
  }

  async submit(): Promise<boolean> {
    this.error = this.problem();
    if (this.error) return false;
    this.busy = true;
    this.error = await this.save(this.passphrase);
    this.busy = false;
    if (this.error === null) this.reset();
    return this.error === null;
  }
}
