// Keys at rest through safeStorage: only ciphertext on disk, and a weak backend is reported.
import { afterEach, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { safeStorageSecretStore, type SafeStorageLike } from '../../main/core/secrets.ts';
import { exportIdentity } from '../../relay/identity.ts';
import { loadOrCreateIdentity } from '../../main/core/identity.ts';
import { tempDir } from '../support/relay.ts';

const dirs: { remove: () => void }[] = [];
afterEach(() => dirs.splice(0).forEach((d) => d.remove()));

/** A stand-in for Electron's safeStorage: a reversible transform, so the file must not show the secret. */
function fakeSafeStorage(backend: string, available = true): SafeStorageLike {
  const flip = (b: Buffer) => Buffer.from(b.map((x) => x ^ 0x5a));
  return {
    isEncryptionAvailable: () => available,
    encryptString: (plain) => flip(Buffer.from(`enc:${plain}`)),
    decryptString: (data) => flip(data).toString().replace(/^enc:/, ''),
    getSelectedStorageBackend: () => backend,
  };
}

describe('secrets at rest', () => {
  it('stores the private keys only encrypted, and loads the same identity back', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const path = join(dir.path, 'identity.bin');
    const store = safeStorageSecretStore(fakeSafeStorage('gnome_libsecret'), path);
    const identity = await loadOrCreateIdentity(store);
    const onDisk = readFileSync(path, 'utf8');
    const { idPrivate } = exportIdentity(identity);
    expect(onDisk).not.toContain('PRIVATE KEY');
    expect(onDisk).not.toContain(idPrivate.split('\n')[1]);
    expect((await loadOrCreateIdentity(store)).userId).toBe(identity.userId);
  });

  it('reports the plain-text keyring backend so the app can warn', () => {
    const weak = safeStorageSecretStore(fakeSafeStorage('basic_text'), '/nonexistent');
    expect(weak.protection).toBe(process.platform === 'linux' ? 'plain-text-keyring' : 'os-encrypted');
    expect(safeStorageSecretStore(fakeSafeStorage('kwallet5'), '/x').protection).toBe('os-encrypted');
  });

  it('refuses to write keys when no encryption is available', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const store = safeStorageSecretStore(fakeSafeStorage('unknown', false), join(dir.path, 'identity.bin'));
    await expect(loadOrCreateIdentity(store)).rejects.toThrow(/keychain is not available/);
  });
});
