// The SecretStore the app uses: Electron's safeStorage (OS keychain / DPAPI / libsecret),
// written to a file that holds only ciphertext. Typed structurally, so tests pass a fake.
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
      return safe.decryptString(Buffer.from(stored, 'base64'));
    },
    async write(secret) {
      if (!safe.isEncryptionAvailable()) throw new Error('the system keychain is not available to protect your keys');
      await file.write(safe.encryptString(secret).toString('base64'));
    },
  };
}
