// The total-queue check (RELIABILITY.md, section b) across failover clients: every message
// the relay acknowledged arrives, none is stored twice (one seq per id), and each
// conversation keeps the order in which its sender sent it.
//
// After a relay was killed (`afterKills`), one exception is allowed and counted apart: a
// message the relay delivered from memory just before it died, unwritten, and whose sender got
// no answer, is accepted again under a new seq when the sender resends it (PROTOCOL.md 7.4).
// The recipient keeps the first copy; the sender's ok names the second seq.
import type { FailoverClient } from './failover.ts';

export interface QueueReport {
  acknowledged: number;
  lost: string[];
  duplicated: string[];
  reordered: string[];
  /** With `afterKills`: messages delivered twice because their sender resent them after a kill. */
  redelivered?: string[];
}

export function totalQueue(clients: readonly FailoverClient[], options: { afterKills?: boolean } = {}): QueueReport {
  const byId = new Map(clients.map((c) => [c.id, c]));
  const report: QueueReport = { acknowledged: 0, lost: [], duplicated: [], reordered: [], ...(options.afterKills ? { redelivered: [] } : {}) };
  /** A second delivery the exception above allows. */
  const resentAfterKill = (from: string, id: string) => options.afterKills === true && (byId.get(from)?.unanswered.has(id) ?? false);
  for (const recipient of clients) {
    for (const [key, seqs] of recipient.seqsOf) {
      if (seqs.size <= 1) continue;
      const [from = '', id = ''] = key.split('\n');
      (resentAfterKill(from, id) ? (report.redelivered ??= []) : report.duplicated).push(`${key.replace('\n', '/')} seqs ${[...seqs].join(',')}`);
    }
  }
  for (const sender of clients) {
    for (const [to, ids] of sender.sent) {
      const recipient = byId.get(to);
      if (!recipient) throw new Error(`no client for recipient ${to}`);
      const arrived = recipient.history.filter((m) => m.from === sender.id);
      const position = new Map(arrived.map((m, i) => [m.id, i]));
      let last = -1;
      let lastSeq = 0;
      for (const id of ids) {
        const seq = sender.acked.get(id);
        if (seq === undefined) continue;
        report.acknowledged += 1;
        const at = position.get(id);
        if (at === undefined) {
          report.lost.push(`${sender.id}->${to} ${id}`);
          continue;
        }
        const delivered = arrived[at]!;
        const seqAgrees = delivered.seq === seq || (resentAfterKill(sender.id, id) && (recipient.seqsOf.get(`${sender.id}\n${id}`)?.has(seq) ?? false));
        if (at < last || delivered.seq < lastSeq || !seqAgrees) report.reordered.push(`${sender.id}->${to} ${id} at ${at} seq ${delivered.seq} (acked ${seq})`);
        last = at;
        lastSeq = delivered.seq;
      }
    }
  }
  return report;
}
