// End-to-end encryption of message bodies. Each message gets a fresh X25519 key; the AEAD
// key comes from HKDF over (ephemeral x recipient) and (sender x recipient) agreements, and
// the sender's Ed25519 signature covers every header field and the ciphertext. The relay
// sees only the sealed body.
import { createCipheriv, createDecipheriv, diffieHellman, generateKeyPairSync, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import { fromB64u, publicKeyFrom, signWith, toB64u, verifySignature, type Identity } from '../../relay/identity.ts';

const SealedSchema = z.strictObject({
  v: z.literal(1),
  e: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
  n: z.string().regex(/^[A-Za-z0-9_-]{16}$/),
  c: z.string().regex(/^[A-Za-z0-9_-]+$/).max(48 * 1024),
  s: z.string().regex(/^[A-Za-z0-9_-]{86}$/),
});

const PlainSchema = z.strictObject({ t: z.literal('text'), text: z.string() });

export interface Header {
  from: string;
  to: string;
  id: string;
  sentAt: number;
}

export type OpenResult = { ok: true; text: string } | { ok: false; reason: 'malformed' | 'bad-signature' | 'cannot-decrypt' };

const rawOf = (key: KeyObject): string => {
  const x = key.export({ format: 'jwk' }).x;
  if (typeof x !== 'string') throw new Error('not an OKP key');
  return x;
};

const context = (h: Header, eph: string, nonce: string) => `parley-msg-v1\n${h.from}\n${h.to}\n${h.id}\n${h.sentAt}\n${eph}\n${nonce}`;

function messageKey(ephShared: Buffer, staticShared: Buffer, info: string): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.concat([ephShared, staticShared]), Buffer.alloc(0), info, 32));
}

/** Encrypts `text` from `me` to the holder of `recipientKaKey`; returns the opaque body. */
export function seal(me: Identity, recipientKaKey: string, header: Header, text: string): string {
  const eph = generateKeyPairSync('x25519');
  const ephRaw = rawOf(eph.publicKey);
  const theirs = publicKeyFrom(recipientKaKey, 'X25519');
  const nonce = randomBytes(12);
  const info = context(header, ephRaw, toB64u(nonce));
  const key = messageKey(diffieHellman({ privateKey: eph.privateKey, publicKey: theirs }), diffieHellman({ privateKey: me.kaPrivate, publicKey: theirs }), info);
  const cipher = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
  const plain = Buffer.from(JSON.stringify({ t: 'text', text }), 'utf8');
  cipher.setAAD(Buffer.from(info), { plaintextLength: plain.length });
  const c = toB64u(Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()]));
  const s = signWith(me, Buffer.from(`${info}\n${c}`));
  return JSON.stringify({ v: 1, e: ephRaw, n: toB64u(nonce), c, s });
}

/**
 * Checks the sender's signature with their identity key, then decrypts with my key-agreement
 * key against each of the sender's candidate key-agreement keys (pinned first).
 */
export function open(me: Identity, sender: { idKey: string; kaKeys: readonly string[] }, header: Header, body: string): OpenResult {
  let sealed: z.infer<typeof SealedSchema>;
  try {
    sealed = SealedSchema.parse(JSON.parse(body));
  } catch {
    return { ok: false, reason: 'malformed' };
  }
  const info = context(header, sealed.e, sealed.n);
  if (!verifySignature(sender.idKey, Buffer.from(`${info}\n${sealed.c}`), sealed.s)) return { ok: false, reason: 'bad-signature' };
  const data = fromB64u(sealed.c);
  if (data.length < 16) return { ok: false, reason: 'malformed' };
  let ephShared: Buffer;
  try {
    ephShared = diffieHellman({ privateKey: me.kaPrivate, publicKey: publicKeyFrom(sealed.e, 'X25519', true) });
  } catch {
    // A one-time key no agreement can use (e.g. a low-order point, signed by a hostile sender):
    // flagged like any damaged body, never thrown (a throw would fail, and stall, the whole batch).
    return { ok: false, reason: 'malformed' };
  }
  for (const kaKey of sender.kaKeys) {
    try {
      const key = messageKey(ephShared, diffieHellman({ privateKey: me.kaPrivate, publicKey: publicKeyFrom(kaKey, 'X25519') }), info);
      const decipher = createDecipheriv('chacha20-poly1305', key, fromB64u(sealed.n), { authTagLength: 16 });
      decipher.setAAD(Buffer.from(info), { plaintextLength: data.length - 16 });
      decipher.setAuthTag(data.subarray(data.length - 16));
      const plain = Buffer.concat([decipher.update(data.subarray(0, data.length - 16)), decipher.final()]);
      const parsed = PlainSchema.safeParse(JSON.parse(plain.toString('utf8')));
      if (parsed.success) return { ok: true, text: parsed.data.text };
      return { ok: false, reason: 'malformed' };
    } catch {
      continue; // not this key: try the next candidate
    }
  }
  return { ok: false, reason: 'cannot-decrypt' };
}
