// Identity keys, user ids and the exact bytes that get signed. Shared by the relay and
// every client so that both sides build the same bytes (see PROTOCOL.md, "What is signed").
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';

export interface Identity {
  /** Ed25519 private key (signing). */
  idPrivate: KeyObject;
  /** X25519 private key (key agreement). */
  kaPrivate: KeyObject;
  /** Raw public keys, base64url. */
  idKey: string;
  kaKey: string;
  /** Signature of the key-agreement key by the identity key. */
  kaSig: string;
  userId: string;
}

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

/** RFC 4648 base32, lower case, no padding. */
export function base32(bytes: Uint8Array): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

export const toB64u = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64url');
export const fromB64u = (text: string): Buffer => Buffer.from(text, 'base64url');

/** The user id: base32 of the first 20 bytes of SHA-256 over the raw Ed25519 public key. */
export function userIdOf(idKey: string): string {
  return base32(createHash('sha256').update(fromB64u(idKey)).digest().subarray(0, 20));
}

function rawPublic(key: KeyObject): string {
  const jwk = key.export({ format: 'jwk' });
  if (typeof jwk.x !== 'string') throw new Error('not an OKP public key');
  return jwk.x;
}

/** Imported public keys of the people seen lately: an import costs about 100 µs, and each message checks one. */
const imported = new Map<string, KeyObject>();
const IMPORTED_MAX = 4096;

/**
 * A raw (base64url) public key as a KeyObject; `once`: a key used a single time (an
 * ephemeral one), not worth keeping. Throws on a key that is not a valid point.
 */
export function publicKeyFrom(raw: string, crv: 'Ed25519' | 'X25519', once = false): KeyObject {
  const name = `${crv} ${raw}`;
  const known = imported.get(name);
  if (known) return known;
  const key = createPublicKey({ key: { kty: 'OKP', crv, x: raw }, format: 'jwk' });
  if (once) return key;
  if (imported.size >= IMPORTED_MAX) imported.delete(imported.keys().next().value ?? '');
  imported.set(name, key);
  return key;
}

/** The bytes a user signs to publish their key-agreement key. */
export const kaStatement = (kaKey: string): Buffer => Buffer.from(`parley-ka-v1\n${kaKey}`, 'utf8');

/** The bytes a user signs to prove their identity key to one relay, for one challenge. */
export const authStatement = (relayId: string, challenge: string, idKey: string, kaKey: string): Buffer =>
  Buffer.from(`parley-auth-v1\n${relayId}\n${challenge}\n${idKey}\n${kaKey}`, 'utf8');

export function signWith(identity: Pick<Identity, 'idPrivate'>, bytes: Buffer): string {
  return toB64u(sign(null, bytes, identity.idPrivate));
}

/** Verifies an Ed25519 signature over `bytes` by the raw public key `idKey`; false on any malformed input. */
export function verifySignature(idKey: string, bytes: Buffer, signature: string): boolean {
  try {
    const sig = fromB64u(signature);
    if (sig.length !== 64) return false;
    return verify(null, bytes, publicKeyFrom(idKey, 'Ed25519'), sig);
  } catch {
    return false; // a key that is not a valid curve point is simply not a valid signer
  }
}

export function identityFromKeys(idPrivate: KeyObject, kaPrivate: KeyObject): Identity {
  const idKey = rawPublic(createPublicKey(idPrivate));
  const kaKey = rawPublic(createPublicKey(kaPrivate));
  return { idPrivate, kaPrivate, idKey, kaKey, kaSig: signWith({ idPrivate }, kaStatement(kaKey)), userId: userIdOf(idKey) };
}

export function generateIdentity(): Identity {
  return identityFromKeys(generateKeyPairSync('ed25519').privateKey, generateKeyPairSync('x25519').privateKey);
}

/** PKCS#8 PEM of both private keys, for a SecretStore to keep. */
export function exportIdentity(identity: Identity): { idPrivate: string; kaPrivate: string } {
  const pem = (k: KeyObject) => k.export({ format: 'pem', type: 'pkcs8' }).toString();
  return { idPrivate: pem(identity.idPrivate), kaPrivate: pem(identity.kaPrivate) };
}

export function importIdentity(secret: { idPrivate: string; kaPrivate: string }): Identity {
  return identityFromKeys(createPrivateKey(secret.idPrivate), createPrivateKey(secret.kaPrivate));
}
