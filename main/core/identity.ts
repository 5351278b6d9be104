// The user's keys: made on first run, kept through a SecretStore (Electron's safeStorage in
// the app, a 0600 file in Node and tests), never written anywhere in the clear by Parley.
import { chmod, mkdir, open, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { exportIdentity, fromB64u, generateIdentity, importIdentity, type Identity } from '../../relay/identity.ts';

/** 'passphrase': sealed with the user's passphrase (main/core/passphrase.ts), over any of the others. */
export type SecretProtection = 'os-encrypted' | 'plain-text-keyring' | 'file-0600' | 'passphrase';

export interface SecretStore {
  read(): Promise<string | null>;
  write(secret: string): Promise<void>;
  /** How the secret is protected at rest: shown to the user where it is weak. */
  readonly protection: SecretProtection;
}

/** A secret in a file only its owner can read. For headless use and tests. */
export function fileSecretStore(path: string): SecretStore {
  return {
    protection: 'file-0600',
    async read() {
      try {
        return await readFile(path, 'utf8');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw error;
      }
    },
    // A new file, synced, then renamed over the old one, and the rename synced: a crash or a
    // power cut at any point leaves the old keys or the new ones, never an empty file.
    async write(secret) {
      const folder = dirname(path);
      await mkdir(folder, { recursive: true, mode: 0o700 });
      const temp = `${path}.tmp`;
      const file = await open(temp, 'w', 0o600);
      try {
        await file.writeFile(secret);
        await file.sync();
      } finally {
        await file.close();
      }
      await chmod(temp, 0o600);
      await rename(temp, path);
      await syncFolder(folder);
    },
  };
}

/** Makes a rename in `folder` durable. Windows cannot open a folder for that (its renames are journaled). */
async function syncFolder(folder: string): Promise<void> {
  if (process.platform === 'win32') return;
  const handle = await open(folder, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** The stored keys cannot be read back: Parley stops rather than make new ones (a new identity). */
export class DamagedIdentityError extends Error {
  constructor() {
    super('the stored identity is damaged; Parley will not replace it silently');
  }
}

const SecretSchema = z.strictObject({ v: z.literal(1), idPrivate: z.string(), kaPrivate: z.string() });

export async function loadOrCreateIdentity(store: SecretStore): Promise<Identity> {
  const text = await store.read();
  if (text !== null) {
    try {
      return importIdentity(SecretSchema.parse(JSON.parse(text)));
    } catch {
      // Not JSON, not the shape, or keys that do not decode: damaged all the same.
      throw new DamagedIdentityError();
    }
  }
  const identity = generateIdentity();
  await store.write(JSON.stringify({ v: 1, ...exportIdentity(identity) }));
  return identity;
}

/** A short, human-comparable fingerprint of an identity key: 5 groups of 4 hex digits. */
export function fingerprint(idKey: string): string {
  const hex = createHash('sha256').update(fromB64u(idKey)).digest('hex').slice(0, 20);
  return hex.match(/.{4}/g)?.join(' ') ?? hex;
}

/**
 * The safety number two people compare out of band: 60 digits from both identity keys,
 * the same on both sides whoever computes it.
 */
export function safetyNumber(idKeyA: string, idKeyB: string): string {
  const [first, second] = [idKeyA, idKeyB].sort();
  const digest = createHash('sha512').update(`parley-safety-v1\n${first}\n${second}`).digest();
  let digits = '';
  for (let i = 0; i < 12; i++) digits += String(digest.readUInt32BE(i * 4) % 100000).padStart(5, '0');
  return digits.match(/.{5}/g)?.join(' ') ?? digits;
}
