// The total-queue check (RELIABILITY.md, section b) across failover clients: every message
// the relay acknowledged arrives, none is stored twice (one seq per id), and each
// conversation keeps the order in which its sender sent it.
import type { FailoverClient } from './failover.ts';

export interface QueueReport {
  acknowledged: number;
  lost: string[];
  duplicated: string[];
  reordered: string[];
}

export function totalQueue(clients: readonly FailoverClient[]): QueueReport {
  const byId = new Map(clients.map((c) => [c.id, c]));
  const report: QueueReport = { acknowledged: 0, lost: [], duplicated: [], reordered: [] };
  for (const recipient of clients) {
    for (const [key, seqs] of recipient.seqsOf) if (seqs.size > 1) report.duplicated.push(`${key.replace('\n', '/')} seqs ${[...seqs].join(',')}`);
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
        if (at < last || delivered.seq < lastSeq || delivered.seq !== seq) report.reordered.push(`${sender.id}->${to} ${id} at ${at} seq ${delivered.seq} (acked ${seq})`);
        last = at;
        lastSeq = delivered.seq;
      }
    }
  }
  return report;
}
