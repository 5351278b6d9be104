// Who is connected: the sockets (and their delivery pumps) of each user. A user is online
// while any of their sockets is connected.
import type { Pump } from './delivery.ts';
import type { Envelope } from './protocol.ts';
import type { Offer } from './mailbox/store.ts';

export class Sessions {
  private readonly byUser = new Map<string, Map<string, Pump>>();

  /** Returns true when this socket brings the user online. */
  add(userId: string, socketId: string, pump: Pump): boolean {
    let pumps = this.byUser.get(userId);
    const first = !pumps;
    if (!pumps) this.byUser.set(userId, (pumps = new Map()));
    pumps.set(socketId, pump);
    return first;
  }

  /** Returns true when this was the user's last socket. */
  remove(userId: string, socketId: string): boolean {
    const pumps = this.byUser.get(userId);
    pumps?.get(socketId)?.stop();
    pumps?.delete(socketId);
    if (pumps?.size !== 0) return false;
    this.byUser.delete(userId);
    return true;
  }

  /** Users with a socket on this relay. */
  users(): string[] {
    return [...this.byUser.keys()];
  }

  isOnline(userId: string): boolean {
    return this.byUser.has(userId);
  }

  /** Wakes the user's pumps: something was queued for them. */
  notify(userId: string): void {
    for (const pump of this.byUser.get(userId)?.values() ?? []) pump.notify();
  }

  /**
   * Things were queued, and the store says what (see Pump.offer). Envelopes that follow each
   * other in a mailbox go to its streams together, as one batch: a request's messages to one
   * recipient are delivered in one frame, not the first alone and the rest after its ack.
   */
  offer(offers: readonly Offer[]): void {
    const chains = new Map<string, { envelopes: Envelope[]; prev: number }>();
    const send = (to: string, chain: { envelopes: Envelope[]; prev: number }) => {
      for (const pump of this.byUser.get(to)?.values() ?? []) pump.offer(chain.envelopes, chain.prev);
    };
    for (const { to, envelope, prev } of offers) {
      const chain = chains.get(to);
      if (chain && chain.envelopes.at(-1)?.seq === prev) {
        chain.envelopes.push(envelope);
        continue;
      }
      if (chain) send(to, chain);
      chains.set(to, { envelopes: [envelope], prev });
    }
    for (const [to, chain] of chains) send(to, chain);
  }

  /** Wakes every pump here: after an outage, when wake-ups from other nodes may have been lost. */
  notifyAll(): void {
    for (const pumps of this.byUser.values()) for (const pump of pumps.values()) pump.notify();
  }

  stopAll(): void {
    for (const pumps of this.byUser.values()) for (const pump of pumps.values()) pump.stop();
  }
}

export interface Revisions {
  next(): number;
  /** Every rev handed out from now on is above `rev` (the highest a store holds from before a restart). */
  continueAbove(rev: number): void;
}

/**
 * Revisions for directory entries: increasing, even across clock steps back, and across
 * restarts once continued above the highest stored one (the clock may have gone back meanwhile).
 */
export function createRevisions(now: () => number): Revisions {
  let last = 0;
  return {
    next: () => (last = Math.max(last + 1, now() * 1000)),
    continueAbove: (rev) => void (last = Math.max(last, rev)),
  };
}
