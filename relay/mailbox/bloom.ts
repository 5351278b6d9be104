// A Bloom filter over record keys: it answers "certainly never added" or "maybe added". The
// SQLite store asks it before it looks for a (sender, id) record, so that a new message,
// which is nearly every message, costs no read of the records table. It takes the key's
// hash52(), which the store computes once per message anyway (the records table's index), so
// a message costs one pass over its key's characters, not three.

export class BloomFilter {
  /** Keys it is sized for at its false-positive rate; more still work, with more false positives. */
  readonly capacity: number;
  /** Keys added (a key added twice counts twice). */
  count = 0;
  private readonly bits: Uint32Array;
  private readonly size: number;
  private readonly hashes: number;

  constructor(capacity: number, falsePositiveRate = 0.01) {
    if (!(falsePositiveRate > 0 && falsePositiveRate < 1)) throw new RangeError('falsePositiveRate must be between 0 and 1');
    this.capacity = Math.max(1024, Math.ceil(capacity));
    const bits = Math.ceil((-this.capacity * Math.log(falsePositiveRate)) / Math.LN2 ** 2);
    this.bits = new Uint32Array(Math.ceil(bits / 32));
    this.size = this.bits.length * 32;
    this.hashes = Math.max(1, Math.round((this.size / this.capacity) * Math.LN2));
  }

  get full(): boolean {
    return this.count >= this.capacity;
  }

  add(hash: number): void {
    const a = high(hash);
    const b = step(hash, a);
    for (let i = 0; i < this.hashes; i++) {
      const bit = ((a + Math.imul(i, b)) >>> 0) % this.size;
      this.bits[bit >>> 5] = (this.bits[bit >>> 5] ?? 0) | (1 << (bit & 31));
    }
    this.count += 1;
  }

  /** False: the key was certainly never added. True: it may have been. */
  mightHave(hash: number): boolean {
    const a = high(hash);
    const b = step(hash, a);
    for (let i = 0; i < this.hashes; i++) {
      const bit = ((a + Math.imul(i, b)) >>> 0) % this.size;
      if (((this.bits[bit >>> 5] ?? 0) & (1 << (bit & 31))) === 0) return false;
    }
    return true;
  }
}

/** A 52-bit hash of a key (a safe integer): how the records table indexes (sender, id), and what the filter takes. */
export function hash52(key: string): number {
  const [a, b] = hashes(key);
  return a * 2 ** 20 + (b >>> 12);
}

/** The first of the filter's two hashes of a hash52(): its upper 32 bits. */
const high = (hash: number): number => Math.floor(hash / 2 ** 20) >>> 0;
/** The second, the double-hashing step: its lower 20 bits mixed with the first; odd. */
const step = (hash: number, high: number): number => (Math.imul((hash % 2 ** 20) ^ high, 0x9e3779b1) | 1) >>> 0;

/** The integer a recipient's mailbox rows are indexed by (relay.db's migration 6). */
export const boxKey = (recipient: string): number => hash52(recipient);

/** Two independent 32-bit FNV-1a hashes of the key's UTF-16 code units (double hashing; the step is odd). */
function hashes(key: string): [number, number] {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ 0x9747b28c;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 15;
  }
  a ^= a >>> 16;
  a = Math.imul(a, 0x85ebca6b);
  a ^= a >>> 13;
  return [a >>> 0, (b | 1) >>> 0];
}
