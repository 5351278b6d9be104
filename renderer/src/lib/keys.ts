// Whether the private keys sit on disk without encryption: a keyring that only obscures them
// (Linux's basic_text) or, with no keyring at all, a plain file only the user can read. Either
// way anyone who can read the user's files could impersonate them: warn, and offer a passphrase.
import type { Profile } from '../../../preload/contract.ts';

export function keysExposed(protection: Profile['secretProtection'] | undefined): boolean {
  return protection === 'plain-text-keyring' || protection === 'file-0600';
}
