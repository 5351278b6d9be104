// Incoming deliveries: check, decrypt, store, and only then acknowledge. A redelivery is
// recognised by (sender, id) and stored once; a message that fails to decrypt or to
// authenticate is kept, flagged, and never shown as genuine.
import { EnvelopeSchema, type DeliverAck, type Envelope, type Result, type UserEntry } from '../../relay/protocol.ts';
import type { Identity } from '../../relay/identity.ts';
import type { Message } from '../../preload/contract.ts';
import type { History, IncomingMessage } from './history/index.ts';
import { open } from './crypto.ts';
import { verifiedEntry } from './directory.ts';

export interface InboxOptions {
  identity: Identity;
  history: History;
  /** Asks the relay about senders we have not seen yet. */
  lookup: (ids: string[]) => Promise<Result<{ users: UserEntry[] }>>;
  /** Records a verified directory entry (pins keys on first sight). */
  seePeer: (entry: UserEntry) => void;
  added: (messages: Message[]) => void;
  updated: (messages: Message[]) => void;
  progress: (received: number) => void;
}

const FLAG_REASONS = {
  malformed: 'This message arrived damaged and cannot be shown.',
  'bad-signature': 'This message is not signed by its sender: it may be forged.',
  'cannot-decrypt': 'This message could not be decrypted.',
} as const;

const YIELD_EVERY = 64;
/** A batch this large means a backlog is arriving; progress ends after SYNC_IDLE_MS without batches. */
const SYNC_BATCH = 100;
const SYNC_IDLE_MS = 1500;

export function createInbox(options: InboxOptions): (batch: unknown) => Promise<DeliverAck> {
  const { identity, history } = options;
  let received = 0;
  let syncDone: NodeJS.Timeout | undefined;

  return async (batch) => {
    const envelopes: Envelope[] = [];
    for (const item of Array.isArray(batch) ? batch : []) {
      const parsed = EnvelopeSchema.safeParse(item);
      if (parsed.success) envelopes.push(parsed.data);
    }
    const unknown = [...new Set(envelopes.filter((e) => e.kind === 'message' && !history.peer(e.from)).map((e) => e.from))];
    if (unknown.length > 0) {
      const found = await options.lookup(unknown);
      if (!found.ok) return { ok: false, retryInMs: 3000 };
      for (const user of found.value.users) {
        const entry = verifiedEntry(user);
        if (entry) options.seePeer(entry);
      }
    }

    const incoming: IncomingMessage[] = [];
    const receipts: Extract<Envelope, { kind: 'receipt' }>[] = [];
    let sinceYield = 0;
    for (const e of envelopes) {
      // Checking signatures and decrypting costs ~0.2 ms a message: let the app breathe during a backlog.
      if (++sinceYield === YIELD_EVERY) {
        sinceYield = 0;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      if (e.kind === 'receipt') {
        receipts.push(e);
        continue;
      }
      const sender = history.peer(e.from);
      if (!sender) continue; // the relay could not vouch for this sender's keys: leave it at the relay
      const header = { from: e.from, to: identity.userId, id: e.id, sentAt: e.sentAt };
      const kaKeys = sender.pendingKaKey ? [sender.kaKey, sender.pendingKaKey] : [sender.kaKey];
      const opened = open(identity, { idKey: sender.idKey, kaKeys }, header, e.body);
      incoming.push({
        id: e.id, peer: e.from, sentAt: e.sentAt, seq: e.seq,
        text: opened.ok ? opened.text : '',
        flagged: !opened.ok,
        error: opened.ok ? null : FLAG_REASONS[opened.reason],
      });
    }
    if (incoming.length < envelopes.length - receipts.length) {
      // Some senders are still unknown: store nothing of this batch yet, so order is kept.
      return { ok: false, retryInMs: 5000 };
    }

    const added = history.addIncoming(incoming);
    const changed: Message[] = [];
    for (const r of receipts) changed.push(...history.applyReceipt(r.from, r.ids, r.state));
    if (added.length > 0) options.added(added);
    if (changed.length > 0) options.updated(changed);
    // A backlog shows progress while batches keep coming; it is over once they stop.
    if (envelopes.length >= SYNC_BATCH || received > 0) {
      received += added.length;
      options.progress(received);
      clearTimeout(syncDone);
      syncDone = setTimeout(() => {
        received = 0;
        options.progress(0);
      }, SYNC_IDLE_MS);
      syncDone.unref();
    }
    return { ok: true };
  };
}
