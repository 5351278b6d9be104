// Limits that keep one client or one address from hurting the others.
import type { ErrorCode } from './protocol.ts';

/** A token bucket: `capacity` tokens, refilled at `perSecond`. */
export class TokenBucket {
  private tokens: number;
  private last: number;
  private readonly capacity: number;
  private readonly perSecond: number;
  private readonly now: () => number;

  constructor(capacity: number, perSecond: number, now: () => number = Date.now) {
    this.capacity = capacity;
    this.perSecond = perSecond;
    this.now = now;
    this.tokens = capacity;
    this.last = now();
  }

  /** Takes `count` tokens, all or none. */
  take(count = 1): boolean {
    const t = this.now();
    // A clock stepped back (NTP, a user) refills nothing, rather than a day's worth of debt.
    this.tokens = Math.min(this.capacity, this.tokens + (Math.max(0, t - this.last) / 1000) * this.perSecond);
    this.last = t;
    if (this.tokens < count) return false;
    this.tokens -= count;
    return true;
  }
}

/**
 * A socket's request budget. Requests over the bucket are refused. A socket that keeps
 * being refused for `abuseMs`, never pausing a full `quietMs` between refusals, is to be
 * disconnected; a client that backs off after a refusal never is.
 */
export class RequestBudget {
  private readonly bucket: TokenBucket;
  private overSince: number | null = null;
  private lastRefusal = 0;
  private readonly abuseMs: number;
  private readonly quietMs = 1000;
  private readonly now: () => number;

  constructor(options: { capacity: number; perSecond: number; abuseMs: number; now?: () => number }) {
    this.now = options.now ?? Date.now;
    this.bucket = new TokenBucket(options.capacity, options.perSecond, this.now);
    this.abuseMs = options.abuseMs;
  }

  /** 'ok', 'limited' (answer E_RATE_LIMITED) or 'abuse' (disconnect). A request may cost several tokens. */
  spend(cost = 1): 'ok' | 'limited' | 'abuse' {
    const t = this.now();
    // (t < lastRefusal: the clock stepped back; the abuse window starts again.)
    if (this.overSince !== null && (t - this.lastRefusal >= this.quietMs || t < this.lastRefusal)) this.overSince = null;
    if (this.bucket.take(cost)) return 'ok';
    this.lastRefusal = t;
    this.overSince ??= t;
    return t - this.overSince >= this.abuseMs ? 'abuse' : 'limited';
  }
}

export interface AddressGuardOptions {
  maxConnectionsPerAddress: number;
  /** Failed handshakes from one address within `failureWindowMs` before it is refused for `blockMs`. */
  maxFailures: number;
  failureWindowMs: number;
  blockMs: number;
  now?: () => number;
}

/** Per-address connection counts and failed-handshake throttling. Bounded in memory. */
export class AddressGuard {
  private readonly connections = new Map<string, number>();
  private readonly failures = new Map<string, { count: number; since: number; blockedUntil: number }>();
  private readonly options: AddressGuardOptions;
  private readonly now: () => number;
  private static readonly MAX_TRACKED = 10_000;

  constructor(options: AddressGuardOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
  }

  /** Why a new connection from `address` is refused, or null: then it is counted until closed(). */
  admit(address: string): ErrorCode | null {
    if (this.isThrottled(address)) return 'E_THROTTLED';
    const open = this.connections.get(address) ?? 0;
    if (open >= this.options.maxConnectionsPerAddress) return 'E_TOO_MANY_CONNECTIONS';
    this.connections.set(address, open + 1);
    return null;
  }

  isThrottled(address: string): boolean {
    const entry = this.failures.get(address);
    if (!entry) return false;
    const t = this.now();
    // A block ends at most blockMs from now, even when the clock stepped back since it began.
    if (entry.blockedUntil - t > this.options.blockMs) entry.blockedUntil = t + this.options.blockMs;
    return entry.blockedUntil > t;
  }

  closed(address: string): void {
    const left = (this.connections.get(address) ?? 1) - 1;
    if (left > 0) this.connections.set(address, left);
    else this.connections.delete(address);
  }

  failed(address: string): void {
    const t = this.now();
    let entry = this.failures.get(address);
    if (!entry || t - entry.since > this.options.failureWindowMs || t < entry.since) {
      if (!entry && this.failures.size >= AddressGuard.MAX_TRACKED) this.prune(t);
      // A new count, but a block under way stands (a failure that comes late, from a
      // connection opened before the block, must not lift it).
      entry = { count: 0, since: t, blockedUntil: entry && this.isThrottled(address) ? entry.blockedUntil : 0 };
      this.failures.set(address, entry);
    }
    entry.count += 1;
    if (entry.count >= this.options.maxFailures) entry.blockedUntil = t + this.options.blockMs;
  }

  private prune(t: number): void {
    for (const [address, entry] of this.failures) {
      if (entry.blockedUntil <= t && t - entry.since > this.options.failureWindowMs) this.failures.delete(address);
    }
    // Still full of live entries: forget the oldest rather than grow without bound.
    const oldest = this.failures.keys().next();
    if (this.failures.size >= AddressGuard.MAX_TRACKED && !oldest.done) this.failures.delete(oldest.value);
  }
}

/**
 * The Origin header a browser sends from pages at `url`: scheme, host and port, lower case,
 * without a default port or a trailing slash ('HTTPS://App.Example.com:443/' gives
 * 'https://app.example.com'). Undefined for what no Origin header can match: not a URL, an
 * opaque origin ("null": file:, javascript:, data:), or a URL with a path other than "/", a
 * query, a fragment or credentials.
 */
export function browserOrigin(url: string): string | undefined {
  if (!URL.canParse(url)) return undefined;
  const { origin, href } = new URL(url);
  return origin !== 'null' && href === `${origin}/` ? origin : undefined;
}

/** A browser Origin header must be on the allow-list (of browserOrigin()s); non-browser clients send none. */
export function originAllowed(origin: string | undefined, allowed: readonly string[]): boolean {
  return origin === undefined || allowed.includes(origin);
}
