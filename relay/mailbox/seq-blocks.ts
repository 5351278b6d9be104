// Where the SQLite store's seqs come from (relay/mailbox/sqlite.ts).
import type { Logger } from '../log.ts';

/**
 * Seqs are handed out from a block that is on disk first (meta `seq` is the block's end), so a
 * seq given to a sender or a recipient is never given again after a crash, even when nothing
 * else about its envelope was written (taken from memory, its record not yet committed). One
 * small commit of its own per block, the first one at open.
 */
const SEQ_BLOCK = 10_000;

export interface Seqs {
  /** The next seq; first reserves a new block when this one is used up (it throws when that cannot be written). */
  next(): number;
  /**
   * Makes sure the next `count` seqs need no write: reserves a new block now if fewer are
   * left (it throws when that cannot be written). For a step that must not fail halfway.
   */
  ensure(count: number): void;
}

/**
 * Seqs going on after `last` (the stored block's end or the highest seq on disk). `saveEnd`
 * writes a block's end to disk; the first block is reserved now.
 */
export function seqBlocks(last: number, saveEnd: (end: number) => void, log: Logger): Seqs {
  let seq = last;
  let reserved = last;
  const reserve = (count: number) => {
    const end = seq + Math.max(SEQ_BLOCK, count);
    saveEnd(end);
    reserved = end;
  };
  // The first block now, not in a sender's turn. On a full disk the first send tries again.
  try {
    reserve(0);
  } catch (error) {
    log.warn('cannot reserve message seqs yet; sends are refused until the disk has room', { error: String(error) });
  }
  return {
    next() {
      if (seq >= reserved) reserve(1);
      return ++seq;
    },
    ensure(count) {
      if (seq + count > reserved) reserve(count);
    },
  };
}
