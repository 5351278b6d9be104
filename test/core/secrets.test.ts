// Keys at rest through safeStorage: only ciphertext on disk, and a weak backend is reported;
// over it, a passphrase (RELIABILITY C8) and the locked startup it brings.
import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { appSecretStore, safeStorageSecretStore, type SafeStorageLike } from '../../main/core/secrets.ts';
import { exportIdentity, type Identity } from '../../relay/identity.ts';
import { fileSecretStore, loadOrCreateIdentity } from '../../main/core/identity.ts';
import { DEFAULT_COST, IdentityLockedError, passphraseStore, WrongPassphraseError, type ScryptCost } from '../../main/core/passphrase.ts';
import { openCore } from '../../main/core/startup.ts';
import type { AppStatus } from '../../preload/contract.ts';
import { tempDir } from '../support/relay.ts';
import { must } from '../support/messenger.ts';

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

  it('keeps the keys where the first run put them: a start without the keychain fails and says why, and never makes new keys', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const identity = await loadOrCreateIdentity(appSecretStore(fakeSafeStorage('gnome_libsecret'), dir.path));
    expect(existsSync(join(dir.path, 'identity.bin'))).toBe(true);
    // The keyring is locked or missing at the next start (another desktop session, say).
    await expect(loadOrCreateIdentity(appSecretStore(fakeSafeStorage('unknown', false), dir.path))).rejects.toThrow(/keychain, which is not available now/);
    expect(existsSync(join(dir.path, 'identity.json'))).toBe(false);
    expect((await loadOrCreateIdentity(appSecretStore(fakeSafeStorage('gnome_libsecret'), dir.path))).userId).toBe(identity.userId);

    // A first run without any keychain keeps its keys in the 0600 file, also once a keychain appears.
    const other = tempDir();
    dirs.push(other);
    const plain = await loadOrCreateIdentity(appSecretStore(fakeSafeStorage('unknown', false), other.path));
    if (process.platform !== 'win32') expect(statSync(join(other.path, 'identity.json')).mode & 0o777).toBe(0o600);
    expect((await loadOrCreateIdentity(appSecretStore(fakeSafeStorage('gnome_libsecret'), other.path))).userId).toBe(plain.userId);
    expect(existsSync(join(other.path, 'identity.bin'))).toBe(false);
  });

  it('calls keys left empty or cut short (a power cut while they were written) damaged, and leaves the file alone', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const path = join(dir.path, 'identity.json');
    for (const left of ['', '{"v":1,"idPriv']) {
      writeFileSync(path, left);
      await expect(loadOrCreateIdentity(fileSecretStore(path))).rejects.toThrow(/stored identity is damaged/);
      expect(readFileSync(path, 'utf8')).toBe(left);
    }
  });
});

/** The lowest cost a file may name: keeps the tests quick; one test runs the real default. */
const QUICK: ScryptCost = { N: 2 ** 10, r: 8, p: 1 };
const PASS = 'correct horse battery staple';

/** A basic_text keyring (the weak case) holding the identity in a fresh temp folder. */
function weakKeyring() {
  const dir = tempDir();
  dirs.push(dir);
  const path = join(dir.path, 'identity.bin');
  const safe = fakeSafeStorage('basic_text');
  /** A new process's view of the same file. */
  const reopen = (cost = QUICK) => passphraseStore(safeStorageSecretStore(safe, path), cost);
  /** What anyone who knows basic_text's fixed key reads from the file. */
  const revealed = () => safe.decryptString(Buffer.from(readFileSync(path, 'utf8'), 'base64'));
  return { dir: dir.path, path, safe, reopen, revealed };
}

/** Every form of the private keys that must not be on disk. */
function secretsOf(identity: Identity): string[] {
  const { idPrivate, kaPrivate } = exportIdentity(identity);
  const bodies = (pem: string) => pem.split('\n').filter((line) => line && !line.startsWith('-----'));
  const escaped = (pem: string) => JSON.stringify(pem).slice(1, -1);
  return [idPrivate, kaPrivate, escaped(idPrivate), escaped(kaPrivate), ...bodies(idPrivate), ...bodies(kaPrivate), 'PRIVATE KEY', 'idPrivate', 'kaPrivate'];
}

describe('a passphrase over a weak keyring', () => {
  it('keeps the private keys on disk only sealed, and the passphrase opens the same identity', async () => {
    const keyring = weakKeyring();
    const store = keyring.reopen(DEFAULT_COST);
    const identity = await loadOrCreateIdentity(store);
    // Before: basic_text hides nothing from whoever knows its key.
    for (const secret of secretsOf(identity).slice(2)) expect(keyring.revealed()).toContain(secret);

    await store.setPassphrase(PASS);
    expect(store.protection).toBe('passphrase');
    const onDisk = keyring.revealed();
    for (const secret of secretsOf(identity)) expect(onDisk).not.toContain(secret);
    expect(JSON.parse(onDisk)).toMatchObject({ parley: 'sealed-secret', v: 1, kdf: { name: 'scrypt', N: 2 ** 17, r: 8, p: 1 }, cipher: 'aes-256-gcm' });
    expect(existsSync(`${keyring.path}.tmp`)).toBe(false);
    if (process.platform !== 'win32') expect(statSync(keyring.path).mode & 0o777).toBe(0o600);

    // The next start: locked, and no key comes out (nor is a new identity made) without it.
    const next = keyring.reopen();
    expect(await next.locked()).toBe(true);
    await expect(loadOrCreateIdentity(next)).rejects.toBeInstanceOf(IdentityLockedError);
    expect(keyring.revealed()).toBe(onDisk);

    await next.unlock(PASS);
    expect(await next.locked()).toBe(false);
    expect((await loadOrCreateIdentity(next)).userId).toBe(identity.userId);
    expect(exportIdentity(await loadOrCreateIdentity(next))).toEqual(exportIdentity(identity));
  });

  it('refuses a wrong passphrase with a typed error and leaves the file as it was', async () => {
    const keyring = weakKeyring();
    const store = keyring.reopen();
    const identity = await loadOrCreateIdentity(store);
    await store.setPassphrase(PASS);
    const before = readFileSync(keyring.path);
    const mtime = statSync(keyring.path).mtimeMs;

    const next = keyring.reopen();
    for (const wrong of ['correct horse battery stapler', '', 'x'.repeat(5000), PASS.toUpperCase()]) {
      await expect(next.unlock(wrong), wrong.slice(0, 30)).rejects.toBeInstanceOf(WrongPassphraseError);
    }
    expect(await next.locked()).toBe(true);
    await expect(next.read()).rejects.toBeInstanceOf(IdentityLockedError);
    // Changing it needs the current passphrase, proven.
    await expect(store.setPassphrase('another passphrase')).rejects.toBeInstanceOf(WrongPassphraseError);
    await expect(store.setPassphrase('another passphrase', 'not the current one')).rejects.toBeInstanceOf(WrongPassphraseError);
    expect(readFileSync(keyring.path).equals(before)).toBe(true);
    expect(statSync(keyring.path).mtimeMs).toBe(mtime);

    await next.unlock(PASS);
    expect((await loadOrCreateIdentity(next)).userId).toBe(identity.userId);
  });

  it('changes the passphrase: the old one no longer opens, the new one opens the same identity', async () => {
    const keyring = weakKeyring();
    const store = keyring.reopen();
    const identity = await loadOrCreateIdentity(store);
    await store.setPassphrase(PASS);
    await store.setPassphrase('a brand new passphrase', PASS);
    await expect(keyring.reopen().unlock(PASS)).rejects.toBeInstanceOf(WrongPassphraseError);
    const next = keyring.reopen();
    await next.unlock('a brand new passphrase');
    expect((await loadOrCreateIdentity(next)).userId).toBe(identity.userId);
  });

  it('removes the passphrase only with the current one: the keys go back to the keyring and the next start asks nothing', async () => {
    const keyring = weakKeyring();
    const store = keyring.reopen();
    const identity = await loadOrCreateIdentity(store);
    await store.setPassphrase(PASS);
    const sealed = readFileSync(keyring.path);

    for (const wrong of ['not the current one', '', PASS.toUpperCase()]) {
      await expect(store.removePassphrase(wrong), wrong).rejects.toBeInstanceOf(WrongPassphraseError);
    }
    expect(readFileSync(keyring.path).equals(sealed)).toBe(true);
    expect(store.protection).toBe('passphrase');
    // A failed write (temp file blocked) keeps the sealed file and this process sealing.
    mkdirSync(`${keyring.path}.tmp`);
    await expect(store.removePassphrase(PASS)).rejects.toThrow();
    expect(readFileSync(keyring.path).equals(sealed)).toBe(true);
    expect(store.protection).toBe('passphrase');
    rmSync(`${keyring.path}.tmp`, { recursive: true });

    await store.removePassphrase(PASS);
    expect(store.protection).toBe('plain-text-keyring');
    expect(JSON.stringify(keyring.revealed())).not.toContain('sealed-secret');
    const next = keyring.reopen();
    expect(await next.locked()).toBe(false);
    expect(exportIdentity(await loadOrCreateIdentity(next))).toEqual(exportIdentity(identity));
    // What this process writes from now on is no longer sealed either.
    const text = await store.read();
    expect(text).not.toBeNull();
    await store.write(text as string);
    expect(await keyring.reopen().locked()).toBe(false);
    // Nothing left to remove: no error, nothing written.
    const plain = readFileSync(keyring.path);
    await store.removePassphrase('anything at all');
    expect(readFileSync(keyring.path).equals(plain)).toBe(true);
  });

  it('rewrites crash-safely: a write that fails half-way leaves the old file, still readable', async () => {
    const keyring = weakKeyring();
    const store = keyring.reopen();
    const identity = await loadOrCreateIdentity(store);
    const before = readFileSync(keyring.path);
    // The temp file cannot be written (as on a crash or a full disk before the rename).
    mkdirSync(`${keyring.path}.tmp`);
    await expect(store.setPassphrase(PASS)).rejects.toThrow();
    expect(readFileSync(keyring.path).equals(before)).toBe(true);
    expect(store.protection).not.toBe('passphrase');
    const next = keyring.reopen();
    expect(await next.locked()).toBe(false);
    expect((await loadOrCreateIdentity(next)).userId).toBe(identity.userId);
  });

  it('treats a file asking for an absurd scrypt cost as damaged, without running it', async () => {
    const keyring = weakKeyring();
    const store = keyring.reopen();
    await loadOrCreateIdentity(store);
    await store.setPassphrase(PASS);
    const envelope = JSON.parse(keyring.revealed()) as { kdf: { N: number } };
    envelope.kdf.N = 2 ** 30;
    writeFileSync(keyring.path, keyring.safe.encryptString(JSON.stringify(envelope)).toString('base64'));
    await expect(keyring.reopen().unlock(PASS)).rejects.toThrow(/damaged/);
  });
});

describe('startup with a sealed identity', () => {
  it('answers E_LOCKED until the right passphrase, then starts the messenger with the same identity', async () => {
    const keyring = weakKeyring();
    const deps = () => ({ dataDir: keyring.dir, secrets: safeStorageSecretStore(keyring.safe, keyring.path), scryptCost: QUICK });

    const first = await openCore(deps());
    const profile = must(await first.handlers['profile:setup']({ name: 'Ada' }));
    expect(profile.secretProtection).toBe(process.platform === 'linux' ? 'plain-text-keyring' : 'os-encrypted');
    expect(must(await first.handlers['identity:setPassphrase']({ passphrase: PASS }))).toBe('passphrase');
    expect(must(await first.handlers['profile:get'](null))?.secretProtection).toBe('passphrase');
    await first.close();

    const core = await openCore(deps());
    expect(core.messenger).toBeNull();
    const statuses: AppStatus[] = [];
    core.on('status', (status) => statuses.push(status));
    for (const answer of [await core.handlers['profile:get'](null), await core.handlers['status:get'](null), await core.handlers['people:list'](null), await core.handlers['identity:setPassphrase']({ passphrase: 'something else' })]) {
      expect(answer).toMatchObject({ ok: false, error: { code: 'E_LOCKED' } });
    }
    expect(await core.handlers['identity:unlock']({ passphrase: 'not it at all' })).toMatchObject({ ok: false, error: { code: 'E_PASSPHRASE', message: 'That passphrase is not right.' } });
    expect(core.messenger).toBeNull();

    expect(await core.handlers['identity:unlock']({ passphrase: PASS })).toEqual({ ok: true, value: null });
    expect(must(await core.handlers['profile:get'](null))).toEqual({ ...profile, secretProtection: 'passphrase' });
    // Events subscribed while locked reach the listener once the messenger runs.
    must(await core.handlers['relay:leave'](null));
    expect(statuses.at(-1)?.connection).toEqual({ state: 'offline' });
    // A second unlock (another window, a double click) starts nothing new.
    const messenger = core.messenger;
    must(await core.handlers['identity:unlock']({ passphrase: PASS }));
    expect(core.messenger).toBe(messenger);
    await core.close();
  });

  it('on Linux without a keyring (Electron reports basic_text and no encryption) keeps the keys in a plain file, reports it so the window can warn, and seals them with a passphrase', async () => {
    const dir = tempDir();
    dirs.push(dir);
    // What Electron 45's safeStorage reports there unless told to use its fixed key.
    const noKeyring = fakeSafeStorage('basic_text', false);
    const deps = () => ({ dataDir: dir.path, secrets: appSecretStore(noKeyring, dir.path), scryptCost: QUICK });
    const core = await openCore(deps());
    expect(must(await core.handlers['profile:setup']({ name: 'Ada' })).secretProtection).toBe('file-0600');
    expect(must(await core.handlers['identity:setPassphrase']({ passphrase: PASS }))).toBe('passphrase');
    await core.close();
    expect(readFileSync(join(dir.path, 'identity.json'), 'utf8')).not.toContain('PRIVATE KEY');

    const next = await openCore(deps());
    expect(await next.handlers['profile:get'](null)).toMatchObject({ ok: false, error: { code: 'E_LOCKED' } });
    must(await next.handlers['identity:unlock']({ passphrase: PASS }));
    expect(must(await next.handlers['profile:get'](null))?.secretProtection).toBe('passphrase');
    await next.close();
  });

  it('changes and removes the passphrase only with the current one; after removal a start asks for nothing', async () => {
    const keyring = weakKeyring();
    const deps = () => ({ dataDir: keyring.dir, secrets: safeStorageSecretStore(keyring.safe, keyring.path), scryptCost: QUICK });
    const core = await openCore(deps());
    const profile = must(await core.handlers['profile:setup']({ name: 'Ada' }));
    must(await core.handlers['identity:setPassphrase']({ passphrase: PASS }));

    const WRONG = { ok: false, error: { code: 'E_PASSPHRASE', message: 'The current passphrase is not right.' } };
    expect(await core.handlers['identity:setPassphrase']({ passphrase: 'a brand new passphrase', current: 'not it at all' })).toEqual(WRONG);
    expect(await core.handlers['identity:removePassphrase']({ current: 'not it at all' })).toEqual(WRONG);
    expect(must(await core.handlers['identity:setPassphrase']({ passphrase: 'a brand new passphrase', current: PASS }))).toBe('passphrase');
    expect(await core.handlers['identity:removePassphrase']({ current: PASS })).toEqual(WRONG);
    expect(must(await core.handlers['identity:removePassphrase']({ current: 'a brand new passphrase' }))).toBe(profile.secretProtection);
    expect(must(await core.handlers['profile:get'](null))).toEqual(profile);
    await core.close();

    const next = await openCore(deps());
    expect(next.messenger).not.toBeNull();
    expect(must(await next.handlers['profile:get'](null))).toEqual(profile);
    await next.close();
  });
});
