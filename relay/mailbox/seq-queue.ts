// A recipient's envelopes not written yet, in seq order: a ring that they join at the back
// and mostly leave from the front. It was a Map by seq, dropped when empty and made again:
// under a steady load every recipient's map was rebuilt every few messages, and each new
// table outlived a young collection (~40 % of what the store's bookkeeping promoted). A ring
// that a burst grew goes back to its first size once empty, so that a recipient who once had
// thousands waiting does not keep room for them.

/** A ring's first size, and the most an empty one keeps. */
const SMALL = 4;
const KEPT_EMPTY = 64;

interface HasSeq {
  envelope: { seq: number };
}

export class SeqQueue<T extends HasSeq> {
  private ring: (T | undefined)[] = new Array<T | undefined>(SMALL).fill(undefined);
  private head = 0;
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** Places in the ring. */
  get capacity(): number {
    return this.ring.length;
  }

  /** Adds `item`, whose seq is above every other's here. */
  push(item: T): void {
    if (this.count === this.ring.length) this.grow();
    this.ring[(this.head + this.count) & (this.ring.length - 1)] = item;
    this.count += 1;
  }

  /** The newest seq here, if any. */
  newest(): number | undefined {
    return this.count === 0 ? undefined : this.at(this.count - 1).envelope.seq;
  }

  get(seq: number): T | undefined {
    const i = this.find(seq);
    return i < 0 ? undefined : this.at(i);
  }

  /** Removes the item of this seq; false if there is none. */
  delete(seq: number): boolean {
    const i = this.find(seq);
    if (i < 0) return false;
    const mask = this.ring.length - 1;
    if (i === 0) {
      this.ring[this.head] = undefined;
      this.head = (this.head + 1) & mask;
    } else {
      // Rare: envelopes mostly leave oldest first. Those after it move up one place.
      for (let j = i; j < this.count - 1; j++) this.ring[(this.head + j) & mask] = this.ring[(this.head + j + 1) & mask];
      this.ring[(this.head + this.count - 1) & mask] = undefined;
    }
    this.count -= 1;
    if (this.count === 0 && this.ring.length > KEPT_EMPTY) {
      this.ring = new Array<T | undefined>(SMALL).fill(undefined);
      this.head = 0;
    }
    return true;
  }

  *[Symbol.iterator](): Iterator<T> {
    for (let i = 0; i < this.count; i++) yield this.at(i);
  }

  private at(i: number): T {
    return this.ring[(this.head + i) & (this.ring.length - 1)] as T;
  }

  /** The place of `seq` from the front, or -1. */
  private find(seq: number): number {
    let lo = 0;
    let hi = this.count - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const s = this.at(mid).envelope.seq;
      if (s < seq) lo = mid + 1;
      else if (s > seq) hi = mid - 1;
      else return mid;
    }
    return -1;
  }

  private grow(): void {
    const ring = new Array<T | undefined>(this.ring.length * 2).fill(undefined);
    for (let i = 0; i < this.count; i++) ring[i] = this.at(i);
    this.ring = ring;
    this.head = 0;
  }
}
