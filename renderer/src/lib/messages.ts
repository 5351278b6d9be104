// Ordered message lists: every list is sorted by n (the local order) with no duplicates.
import type { Message } from '../../../preload/contract.ts';
import { sameDay } from './time.ts';

/** Messages closer together than this, one way and on one day, are shown as a group. */
const GROUP_GAP_MS = 5 * 60_000;

/** Whether `message` opens a new day in the list (a day separator above it). */
export function startsDay(previous: Message | undefined, message: Message): boolean {
  return previous === undefined || !sameDay(previous.createdAt, message.createdAt);
}

/** Whether `message` is shown as a continuation of `previous` (a small gap above it, no day separator). */
export function continues(previous: Message | undefined, message: Message): boolean {
  return previous !== undefined && previous.direction === message.direction && message.createdAt - previous.createdAt < GROUP_GAP_MS && !startsDay(previous, message);
}

/** Index of the first message whose n is >= `n` (messages.length when none). */
export function lowerBound(messages: readonly Message[], n: number): number {
  let lo = 0;
  let hi = messages.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((messages[mid]?.n ?? Infinity) < n) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** One message in or replaced; returns the same array when nothing changed. */
export function upsert(messages: readonly Message[], message: Message): readonly Message[] {
  const last = messages[messages.length - 1];
  if (!last || last.n < message.n) return [...messages, message];
  const at = lowerBound(messages, message.n);
  const next = messages.slice();
  if (messages[at]?.n === message.n) next[at] = message;
  else next.splice(at, 0, message);
  return next;
}

/** Union of two sorted lists; on the same n, `fresher` wins. */
export function merge(current: readonly Message[], fresher: readonly Message[]): readonly Message[] {
  if (fresher.length === 0) return current;
  if (current.length === 0) return fresher;
  const first = fresher[0];
  const last = fresher[fresher.length - 1];
  // The common cases, a page before or after what is loaded, without a full merge.
  if (last && current[0] && last.n < current[0].n) return [...fresher, ...current];
  const tail = current[current.length - 1];
  if (first && tail && first.n > tail.n) return [...current, ...fresher];
  const out: Message[] = [];
  let i = 0;
  let j = 0;
  while (i < current.length || j < fresher.length) {
    const a = current[i];
    const b = fresher[j];
    if (b && (!a || b.n <= a.n)) {
      out.push(b);
      j++;
      if (a && a.n === b.n) i++;
    } else if (a) {
      out.push(a);
      i++;
    }
  }
  return out;
}
