// The client half of the handshake (PROTOCOL.md, "Joining"): fetch a fresh challenge from
// GET /parley/hello, then prove the identity key over it in the Socket.IO `auth` object.
import { ERROR_CODES, HELLO_PATH, HelloSchema, PROTOCOL_VERSION, type Auth, type ErrorCode, type Hello } from './protocol.ts';
import { authStatement, signWith, type Identity } from './identity.ts';

/** Normalises "host:port", "http(s)://…" or "ws(s)://…" to the relay's http(s) base URL. */
export function relayBaseUrl(address: string): URL {
  const text = address.trim();
  const withScheme = /^[a-z]+:\/\//i.test(text) ? text : `http://${text}`;
  const url = new URL(withScheme);
  if (url.protocol === 'ws:') url.protocol = 'http:';
  if (url.protocol === 'wss:') url.protocol = 'https:';
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`unsupported relay address scheme ${url.protocol}`);
  url.pathname = '/';
  url.search = '';
  url.hash = '';
  return url;
}

/** The relay answered its hello with an error status; `code` is the one its body named, if any (E_THROTTLED). */
export class HelloRefused extends Error {
  readonly status: number;
  readonly code: ErrorCode | undefined;
  constructor(status: number, code: ErrorCode | undefined) {
    super(`relay answered ${status} to hello${code ? ` (${code})` : ''}`);
    this.status = status;
    this.code = code;
  }
}

const KNOWN_CODES: ReadonlySet<string> = new Set(ERROR_CODES);

export async function fetchHello(base: URL, signal?: AbortSignal): Promise<Hello> {
  const response = await fetch(new URL(HELLO_PATH, base), { signal: signal ?? AbortSignal.timeout(10_000) });
  if (!response.ok) {
    const body: unknown = await response.json().catch(() => undefined);
    const code = body && typeof body === 'object' && 'code' in body && typeof body.code === 'string' && KNOWN_CODES.has(body.code) ? (body.code as ErrorCode) : undefined;
    throw new HelloRefused(response.status, code);
  }
  return HelloSchema.parse(await response.json());
}

export function buildAuth(identity: Identity, hello: Hello, profile: { name: string; accessCode?: string }): Auth {
  const auth: Auth = {
    v: PROTOCOL_VERSION,
    idKey: identity.idKey,
    kaKey: identity.kaKey,
    kaSig: identity.kaSig,
    name: profile.name,
    challenge: hello.challenge,
    sig: signWith(identity, authStatement(hello.relayId, hello.challenge, identity.idKey, identity.kaKey)),
  };
  if (profile.accessCode !== undefined) auth.accessCode = profile.accessCode;
  return auth;
}
