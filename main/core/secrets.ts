// The SecretStore the app uses: Electron's safeStorage (OS keychain / DPAPI / libsecret),
// written to a file that holds only ciphertext. Typed structurally, so tests pass a fake.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileSecretStore, type SecretStore } from './identity.ts';

export interface SafeStorageLike {
  isEncryptionAvailable(): boolean;
  encryptString(plain: string): Buffer;
  decryptString(encrypted: Buffer): string;
  /** Linux only: 'basic_text' means the "encryption" is a hard-coded key. */
  getSelectedStorageBackend?(): string;
}

export function safeStorageSecretStore(safe: SafeStorageLike, path: string): SecretStore {
  const file = fileSecretStore(path);
  const weak = process.platform === 'linux' && safe.getSelectedStorageBackend?.() === 'basic_text';
  return {
    protection: weak || !safe.isEncryptionAvailable() ? 'plain-text-keyring' : 'os-encrypted',
    async read() {
      const stored = await file.read();
      if (stored === null) return null;
      if (!safe.isEncryptionAvailable()) throw new Error('your keys are locked in the system keychain, which is not available now: unlock it (or start your keyring) and open Parley again');
      return safe.decryptString(Buffer.from(stored, 'base64'));
    },
    async write(secret) {
      if (!safe.isEncryptionAvailable()) throw new Error('the system keychain is not available to protect your keys');
      await file.write(safe.encryptString(secret).toString('base64'));
    },
  };
}

/**
 * Where the app keeps the keys: wherever the first run put them. That is the OS keychain
 * (identity.bin) when it was available then, else a file only this user can read
 * (identity.json). Keys sealed by the keychain are never replaced by new ones because the
 * keychain is missing at a later start (that start fails and says why instead).
 */
export function appSecretStore(safe: SafeStorageLike, dataDir: string): SecretStore {
  const sealed = join(dataDir, 'identity.bin');
  const plain = join(dataDir, 'identity.json');
  if (existsSync(sealed)) return safeStorageSecretStore(safe, sealed);
  if (existsSync(plain) || !safe.isEncryptionAvailable()) return fileSecretStore(plain);
  return safeStorageSecretStore(safe, sealed);
}
