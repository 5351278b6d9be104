// The handshake: stateless, MAC-protected challenges handed out by GET /parley/hello, each
// usable once within its lifetime, and the checks on the Socket.IO `auth` object.
import { createHash, createHmac, createSecretKey, randomBytes, timingSafeEqual } from 'node:crypto';
import { AuthSchema, isCanonicalBase64url, LIMITS, PROTOCOL_VERSION, type ErrorCode } from './protocol.ts';
import { authStatement, kaStatement, userIdOf, verifySignature } from './identity.ts';
import { memoryChallengeLedger, type ChallengeLedger } from './state.ts';

const TS_BYTES = 8;
const NONCE_BYTES = 16;
const MAC_BYTES = 16;

export interface Challenges {
  issue(): string;
  /**
   * Consumes a challenge: valid only once, and only while fresh (issued at most `ttlMs` ago
   * and at most `skewMs` ahead, by this relay's clock). Rejects (with the ledger's error)
   * when the ledger of used challenges cannot be reached.
   */
  redeem(challenge: string): Promise<'ok' | 'stale' | 'replayed' | 'invalid'>;
}

export function createChallenges(
  secret: Buffer,
  now: () => number = Date.now,
  ttlMs: number = LIMITS.challengeTtlMs,
  ledger: ChallengeLedger = memoryChallengeLedger(now),
  skewMs: number = LIMITS.challengeClockSkewMs,
): Challenges {
  // Imported once: an HMAC keyed by a Buffer imports the key again on every call (~5x the cost here).
  const key = createSecretKey(secret);
  const mac = (head: Buffer) => createHmac('sha256', key).update(head).digest().subarray(0, MAC_BYTES);

  return {
    issue() {
      const head = Buffer.alloc(TS_BYTES + NONCE_BYTES);
      head.writeBigUInt64BE(BigInt(now()));
      randomBytes(NONCE_BYTES).copy(head, TS_BYTES);
      return Buffer.concat([head, mac(head)]).toString('base64url');
    },
    async redeem(challenge) {
      // Only the spelling issue() made: the ledger records the text, and another spelling of
      // the same bytes (the unused low bits of the last character set) would be a new entry.
      if (!isCanonicalBase64url(challenge)) return 'invalid';
      const bytes = Buffer.from(challenge, 'base64url');
      if (bytes.length !== TS_BYTES + NONCE_BYTES + MAC_BYTES) return 'invalid';
      const head = bytes.subarray(0, TS_BYTES + NONCE_BYTES);
      if (!timingSafeEqual(mac(head), bytes.subarray(TS_BYTES + NONCE_BYTES))) return 'invalid';
      const t = now();
      const issued = Number(head.readBigUInt64BE());
      if (issued > t + skewMs || t - issued > ttlMs) return 'stale';
      // Remembered for as long as any node could still take it: until it is stale here, plus
      // the difference tolerated between two nodes' clocks (a node whose clock is behind this
      // one's takes it for that much longer), plus a second. So at most ttl + 2 skew + 1 s.
      return (await ledger.claim(challenge, issued + ttlMs - t + skewMs + 1000)) ? 'ok' : 'replayed';
    },
  };
}

/** Constant-time comparison of access codes (hashing first hides the length too). */
export function accessCodeMatches(given: string | undefined, expected: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(digest(given ?? ''), digest(expected)) && given !== undefined;
}

export interface Authenticated {
  userId: string;
  name: string;
  idKey: string;
  kaKey: string;
  kaSig: string;
}

export type AuthOutcome = { ok: true; user: Authenticated } | { ok: false; code: ErrorCode; message: string };

export interface AuthContext {
  relayId: string;
  accessCode: string | undefined;
  challenges: Challenges;
  /**
   * The key-agreement key and its signature that the directory holds for a user: they were
   * verified when saved, so a returning user who presents the same two is not verified again
   * (an Ed25519 verification is most of what a reconnect costs the relay).
   */
  keysOnRecord?: (userId: string) => Promise<{ kaKey: string; kaSig: string } | undefined>;
}

/** Rejects only when the ledger of used challenges or the directory cannot be reached. */
export async function checkAuth(input: unknown, ctx: AuthContext): Promise<AuthOutcome> {
  const fail = (code: ErrorCode, message: string): AuthOutcome => ({ ok: false, code, message });
  if (typeof input === 'object' && input !== null && 'v' in input && input.v !== PROTOCOL_VERSION) {
    return fail('E_VERSION', `this relay speaks protocol ${PROTOCOL_VERSION}`);
  }
  const parsed = AuthSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    if (issue?.path[0] === 'name') return fail('E_SCHEMA', issue.message);
    return fail('E_AUTH', `handshake auth is malformed${issue ? ` at ${issue.path.join('.') || '(root)'}: ${issue.message}` : ''}`);
  }
  const auth = parsed.data;
  if (ctx.accessCode !== undefined && !accessCodeMatches(auth.accessCode, ctx.accessCode)) {
    return fail('E_ACCESS_CODE', auth.accessCode === undefined ? 'this relay needs an access code' : 'wrong access code');
  }
  if (!verifySignature(auth.idKey, authStatement(ctx.relayId, auth.challenge, auth.idKey, auth.kaKey), auth.sig)) {
    return fail('E_AUTH', 'handshake signature does not verify');
  }
  const userId = userIdOf(auth.idKey);
  // Looked up only for someone who has just proved the identity key.
  const onRecord = await ctx.keysOnRecord?.(userId);
  const known = onRecord?.kaKey === auth.kaKey && onRecord.kaSig === auth.kaSig;
  if (!known && !verifySignature(auth.idKey, kaStatement(auth.kaKey), auth.kaSig)) return fail('E_AUTH', 'key-agreement key is not signed by the identity key');
  // Only a correctly signed proof consumes the challenge, so nobody can burn another's.
  const redeemed = await ctx.challenges.redeem(auth.challenge);
  if (redeemed !== 'ok') return fail('E_AUTH', `challenge is ${redeemed}; fetch a fresh one from /parley/hello`);
  return { ok: true, user: { userId, name: auth.name, idKey: auth.idKey, kaKey: auth.kaKey, kaSig: auth.kaSig } };
}
