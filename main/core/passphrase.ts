// A passphrase over the stored identity, for when the OS gives no real protection (Linux's
// basic_text keyring). The secret is sealed with AES-256-GCM under a key scrypt derives from the
// passphrase, and the sealed envelope is what goes through the SecretStore, into the same file.
import { createCipheriv, createDecipheriv, randomBytes, scrypt, type ScryptOptions } from 'node:crypto';
import { z } from 'zod';
import { DamagedIdentityError, type SecretStore } from './identity.ts';

/** Shortest and longest passphrase accepted (the window checks the same, the IPC schema too). */
export const PASSPHRASE_MIN = 8;
export const PASSPHRASE_MAX = 1024;

/** The stored secret is sealed and no passphrase has been given yet: ask for one. */
export class IdentityLockedError extends Error {
  readonly code = 'E_LOCKED';
  constructor() {
    super('your keys are protected by a passphrase; enter it to unlock Parley');
  }
}

/** The passphrase does not open the stored secret. Nothing was changed. */
export class WrongPassphraseError extends Error {
  readonly code = 'E_PASSPHRASE';
  constructor() {
    super('that passphrase is not right');
  }
}

export interface ScryptCost {
  /** CPU/memory cost, a power of two. */
  N: number;
  r: number;
  p: number;
}

/** OWASP's scrypt floor (2^17, 8, 1): 128 MiB and a few hundred ms per derivation. */
export const DEFAULT_COST: ScryptCost = { N: 2 ** 17, r: 8, p: 1 };

const b64 = z.string().max(100_000).regex(/^[A-Za-z0-9+/]*={0,2}$/);
// Bounds on what a file may ask for, so a tampered file cannot make scrypt eat the machine.
const EnvelopeSchema = z.strictObject({
  parley: z.literal('sealed-secret'),
  v: z.literal(1),
  kdf: z.strictObject({
    name: z.literal('scrypt'),
    N: z.number().int().min(2 ** 10).max(2 ** 20).refine((n) => (n & (n - 1)) === 0, 'N must be a power of two'),
    r: z.number().int().min(1).max(16),
    p: z.number().int().min(1).max(4),
    salt: b64,
  }),
  cipher: z.literal('aes-256-gcm'),
  iv: b64,
  tag: b64,
  data: b64,
});
type Envelope = z.infer<typeof EnvelopeSchema>;

/** What the envelope binds the ciphertext to, so its header cannot be swapped. */
const AAD = Buffer.from('parley-sealed-secret-v1');

function deriveKey(passphrase: string, salt: Buffer, cost: ScryptCost): Promise<Buffer> {
  const options: ScryptOptions = { N: cost.N, r: cost.r, p: cost.p, maxmem: 256 * cost.N * cost.r + 1024 * 1024 };
  return new Promise((resolve, reject) => {
    // NFC: the same passphrase typed on another keyboard layout or OS gives the same key.
    scrypt(passphrase.normalize('NFC'), salt, 32, options, (error, key) => (error ? reject(error) : resolve(key)));
  });
}

/** Parses a stored text as an envelope; null when it is a plain secret. */
function envelopeOf(text: string): Envelope | null {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return null; // not JSON at all: not ours to judge here; the identity loader reports it
  }
  if (typeof json !== 'object' || json === null || !('parley' in json)) return null;
  const parsed = EnvelopeSchema.safeParse(json);
  if (!parsed.success) throw new DamagedIdentityError();
  return parsed.data;
}

/** True when a stored secret is passphrase-sealed. */
export function isSealed(text: string): boolean {
  return envelopeOf(text) !== null;
}

interface Key {
  key: Buffer;
  salt: Buffer;
  cost: ScryptCost;
}

function seal(secret: string, { key, salt, cost }: Key): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv).setAAD(AAD);
  const data = Buffer.concat([cipher.update(secret, 'utf8'), cipher.final()]);
  const envelope: Envelope = {
    parley: 'sealed-secret', v: 1,
    kdf: { name: 'scrypt', ...cost, salt: salt.toString('base64') },
    cipher: 'aes-256-gcm',
    iv: iv.toString('base64'), tag: cipher.getAuthTag().toString('base64'), data: data.toString('base64'),
  };
  return JSON.stringify(envelope);
}

/** Opens an envelope with a derived key; a wrong key fails GCM's authentication. */
function open(envelope: Envelope, key: Buffer): string {
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(envelope.iv, 'base64')).setAAD(AAD);
    decipher.setAuthTag(Buffer.from(envelope.tag, 'base64'));
    return Buffer.concat([decipher.update(Buffer.from(envelope.data, 'base64')), decipher.final()]).toString('utf8');
  } catch {
    throw new WrongPassphraseError(); // GCM cannot tell a wrong key from a tampered file: both refuse
  }
}

async function keyFor(envelope: Envelope, passphrase: string): Promise<Key> {
  const { N, r, p, salt } = envelope.kdf;
  const cost = { N, r, p };
  const saltBytes = Buffer.from(salt, 'base64');
  return { key: await deriveKey(passphrase, saltBytes, cost), salt: saltBytes, cost };
}

export interface PassphraseStore extends SecretStore {
  /** True when the stored secret is sealed and unlock() has not opened it yet. */
  locked(): Promise<boolean>;
  /** Opens a sealed secret for this process; throws WrongPassphraseError. No-op when not sealed. */
  unlock(passphrase: string): Promise<void>;
  /**
   * Seals the stored secret under a new passphrase, replacing the file atomically (the inner
   * store writes a temp file and renames it). Changing a passphrase needs the current one.
   */
  setPassphrase(passphrase: string, current?: string): Promise<void>;
  /**
   * Takes the passphrase away, proven by the current one: the secret goes back into the inner
   * store as it was before (atomically), and the next start asks for nothing. No-op when not sealed.
   */
  removePassphrase(current: string): Promise<void>;
}

/** Wraps a SecretStore: reads and writes go through the passphrase once one is set or given. */
export function passphraseStore(inner: SecretStore, cost: ScryptCost = DEFAULT_COST): PassphraseStore {
  let unlocked: Key | null = null;
  // One change at a time: two rewrites would race on the inner store's temp file.
  let changing: Promise<unknown> = Promise.resolve();

  const store: PassphraseStore = {
    get protection() {
      return unlocked ? 'passphrase' : inner.protection;
    },
    async read() {
      const text = await inner.read();
      if (text === null) return null;
      const envelope = envelopeOf(text);
      if (!envelope) return text;
      if (!unlocked) throw new IdentityLockedError();
      // Sealed under the key this process holds (the only writer is this store).
      return open(envelope, unlocked.key);
    },
    async write(secret) {
      await inner.write(unlocked ? seal(secret, unlocked) : secret);
    },
    async locked() {
      const text = await inner.read();
      return text !== null && envelopeOf(text) !== null && unlocked === null;
    },
    async unlock(passphrase) {
      const text = await inner.read();
      const envelope = text === null ? null : envelopeOf(text);
      if (!envelope) return;
      const key = await keyFor(envelope, passphrase);
      open(envelope, key.key);
      unlocked = key;
    },
    setPassphrase(passphrase, current) {
      return oneAtATime(() => change(passphrase, current));
    },
    removePassphrase(current) {
      return oneAtATime(() => remove(current));
    },
  };

  function oneAtATime(work: () => Promise<void>): Promise<void> {
    const run = changing.then(work);
    changing = run.catch(() => undefined);
    return run;
  }

  async function change(passphrase: string, current: string | undefined): Promise<void> {
    if (passphrase.length < PASSPHRASE_MIN || passphrase.length > PASSPHRASE_MAX) throw new Error(`a passphrase has ${PASSPHRASE_MIN} to ${PASSPHRASE_MAX} characters`);
    const text = await inner.read();
    if (text === null) throw new Error('there is no identity to protect yet');
    const envelope = envelopeOf(text);
    let secret = text;
    if (envelope) {
      // Changing: prove the current passphrase, not just an unlocked process.
      if (current === undefined) throw new WrongPassphraseError();
      secret = open(envelope, (await keyFor(envelope, current)).key);
    }
    const salt = randomBytes(16);
    const next: Key = { salt, cost, key: await deriveKey(passphrase, salt, cost) };
    await inner.write(seal(secret, next));
    // Only once the new file is in place: a failed write leaves the old state in force.
    unlocked = next;
  }

  async function remove(current: string): Promise<void> {
    const text = await inner.read();
    const envelope = text === null ? null : envelopeOf(text);
    if (!envelope) return;
    const secret = open(envelope, (await keyFor(envelope, current)).key);
    await inner.write(secret);
    // As above: only once the plain file is in place does this process stop sealing.
    unlocked = null;
  }
  return store;
}
