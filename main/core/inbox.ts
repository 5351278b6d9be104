// Incoming deliveries: check, decrypt, store, and only then acknowledge. A redelivery is
// recognised by (sender, id) and stored once; a message that fails to decrypt or to
// authenticate is kept, flagged, and never shown as genuine.
import { EnvelopeSchema, type Answer, type DeliverAck, type Envelope, type UserEntry } from '../../relay/protocol.ts';
import type { Identity } from '../../relay/identity.ts';
import type { Message, Result } from '../../preload/contract.ts';
import type { History, IncomingMessage } from './history/index.ts';
import { open } from './crypto.ts';
import { verifiedEntry } from './directory.ts';

export interface InboxOptions {
  identity: Identity;
  history: History;
  /** Asks the relay about senders we have not seen yet (each entry is verified here). */
  lookup: (ids: string[]) => Promise<Result<Answer<'directory:get'>>>;
  /** Records a verified directory entry (pins keys on first sight). */
  seePeer: (entry: UserEntry) => void;
  /** New messages, in order; a big batch arrives in several calls, as it is stored. */
  added: (messages: Message[]) => void;
  updated: (messages: Message[]) => void;
  progress: (received: number) => void;
}

const FLAG_REASONS = {
  malformed: 'This message arrived damaged and cannot be shown.',
  'bad-signature': 'This message is not signed by its sender: it may be forged.',
  'cannot-decrypt': 'This message could not be decrypted.',
} as const;

/**
 * A batch (up to 500) is opened and stored a little at a time, with turns of the event loop
 * in between: checking a signature and decrypting costs 0.2 to 1 ms a message, and storing
 * (insert, full-text index, unread count) adds more. Opening yields after SLICE_MS; opened
 * messages are stored STORE_CHUNK at a time, each chunk in one transaction and its own turn.
 */
const SLICE_MS = 10;
const STORE_CHUNK = 64;
/** A receipt's ids weigh this much less than a message in a chunk. */
const RECEIPT_IDS_PER_MESSAGE = 8;
/** A batch this large means a backlog is arriving; progress ends after SYNC_IDLE_MS without batches. */
const SYNC_BATCH = 100;
const SYNC_IDLE_MS = 1500;

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

export function createInbox(options: InboxOptions): (batch: unknown) => Promise<DeliverAck> {
  const { identity, history } = options;
  let received = 0;
  let syncDone: NodeJS.Timeout | undefined;

  async function take(batch: unknown): Promise<DeliverAck> {
    const envelopes: Envelope[] = [];
    let sliceEnds = performance.now() + SLICE_MS;
    for (const item of Array.isArray(batch) ? batch : []) {
      const parsed = EnvelopeSchema.safeParse(item);
      if (parsed.success) envelopes.push(parsed.data);
      if (performance.now() >= sliceEnds) {
        await nextTurn();
        sliceEnds = performance.now() + SLICE_MS;
      }
    }
    const senders = new Set<string>();
    for (const e of envelopes) if (e.kind === 'message') senders.add(e.from);
    const unknown = [...senders].filter((id) => !history.peer(id));
    if (unknown.length > 0) {
      const found = await options.lookup(unknown);
      if (!found.ok) return { ok: false, retryInMs: 3000 };
      for (const user of found.value.users) {
        const entry = verifiedEntry(user);
        if (entry) options.seePeer(entry);
      }
      // The relay could not vouch for some sender's keys: store nothing of this batch yet (so
      // order is kept) and decide that before opening anything; it stays at the relay.
      if (unknown.some((id) => !history.peer(id))) return { ok: false, retryInMs: 5000 };
    }

    const syncing = envelopes.length >= SYNC_BATCH || received > 0;
    if (syncing) clearTimeout(syncDone);
    try {
      let incoming: IncomingMessage[] = [];
      let receipts: Extract<Envelope, { kind: 'receipt' }>[] = [];
      let weight = 0;
      let reported = false;
      // Stores one chunk: a redelivery after a crash between chunks is deduplicated by (sender, id),
      // and nothing is acknowledged until every chunk is stored.
      const store = () => {
        const added = incoming.length > 0 ? history.addIncoming(incoming) : [];
        const changed: Message[] = [];
        for (const r of receipts) changed.push(...history.applyReceipt(r.from, r.ids, r.state));
        incoming = [];
        receipts = [];
        weight = 0;
        if (added.length > 0) options.added(added);
        if (changed.length > 0) options.updated(changed);
        if (syncing && added.length > 0) {
          received += added.length;
          options.progress(received);
          reported = true;
        }
      };

      for (const e of envelopes) {
        if (e.kind === 'receipt') {
          receipts.push(e);
          weight += 1 + e.ids.length / RECEIPT_IDS_PER_MESSAGE;
        } else {
          // Read for each message: a key change seen between turns applies from then on.
          const sender = history.peer(e.from);
          if (!sender) return { ok: false, retryInMs: 5000 }; // cannot happen: peers are never removed
          const header = { from: e.from, to: identity.userId, id: e.id, sentAt: e.sentAt };
          const kaKeys = sender.pendingKaKey ? [sender.kaKey, sender.pendingKaKey] : [sender.kaKey];
          const opened = open(identity, { idKey: sender.idKey, kaKeys }, header, e.body);
          incoming.push({
            id: e.id, peer: e.from, sentAt: e.sentAt, seq: e.seq,
            text: opened.ok ? opened.text : '',
            flagged: !opened.ok,
            error: opened.ok ? null : FLAG_REASONS[opened.reason],
          });
          weight += 1;
        }
        if (weight >= STORE_CHUNK) {
          // A chunk is stored in a turn of its own: its cost (5 to 15 ms, more when the full-text
          // index merges segments) does not add to a slice of opening.
          await nextTurn();
          store();
          await nextTurn();
          sliceEnds = performance.now() + SLICE_MS;
        } else if (performance.now() >= sliceEnds) {
          await nextTurn();
          sliceEnds = performance.now() + SLICE_MS;
        }
      }
      if (weight > 0) {
        if (performance.now() > sliceEnds - SLICE_MS / 2) await nextTurn();
        store();
      }

      if (syncing && !reported) options.progress(received);
      return { ok: true };
    } finally {
      // A backlog shows progress while batches keep coming; it is over once they stop, also
      // when this batch failed to store (it is answered as failed, so it comes again).
      if (syncing) {
        clearTimeout(syncDone);
        syncDone = setTimeout(() => {
          received = 0;
          options.progress(0);
        }, SYNC_IDLE_MS);
        syncDone.unref();
      }
    }
  }

  // One batch at a time: a batch redelivered after an ack timeout waits for the first to finish.
  let queue: Promise<unknown> = Promise.resolve();
  return (batch) => {
    const done = queue.then(() => take(batch));
    queue = done.catch(() => undefined);
    return done;
  };
}
