// What the Redis store reads back: its scripts' replies, and the mailbox's members (a header
// line, then the envelope's JSON; see README.md), checked for shape before they are used.
import { z } from 'zod';
import type { Envelope } from '../protocol.ts';
import { StorageError } from '../mailbox/store.ts';

export const Strings = z.array(z.string());
/** A ZRANGE … WITHSCORES reply, as the client gives it: [member, score] pairs. */
export const Scored = z.array(z.tuple([z.string(), z.union([z.number(), z.string()])]));
export const Int = z.number().int();
export const AcceptReply = z.tuple([z.enum(['accepted', 'waiting', 'duplicate', 'held', 'conflict', 'full', 'elsewhere']), Int, Int]);
export const AcknowledgeReply = z.tuple([Int, z.array(z.union([z.string(), Int])), Strings]);
export const IdentityReply = z.tuple([z.string().regex(/^[a-z2-7]{26}$/), z.string().min(43)]);
// What the scripts wrote: checked for shape (cheaply: it is read once per delivery), not re-validated as client input.
const StoredEnvelope = z.discriminatedUnion('kind', [
  z.object({ seq: Int, kind: z.literal('message'), id: z.string(), from: z.string(), body: z.string(), sentAt: z.number(), at: z.number() }),
  z.object({ seq: Int, kind: z.literal('receipt'), from: z.string(), state: z.enum(['delivered', 'read']), ids: Strings, at: z.number() }),
]);

/** A message member's header line: its body's bytes (what fitting() counts), sender and id. */
export const messageHeader = (size: number, from: string, id: string) => `m ${size} ${from} ${id}\n`;

/** A mailbox member (a header line, then the envelope's JSON), or undefined when it cannot be read. */
export function readMember(member: string): Envelope | undefined {
  let value: unknown;
  try {
    value = JSON.parse(member.slice(member.indexOf('\n') + 1));
  } catch {
    return undefined;
  }
  const parsed = StoredEnvelope.safeParse(value);
  return parsed.success ? parsed.data : undefined;
}

/** A mailbox member's envelope; throws when it cannot be read. */
export function toEnvelope(member: string): Envelope {
  const envelope = readMember(member);
  if (!envelope) throw new StorageError('E_STORAGE', 'a mailbox entry in redis is malformed');
  return envelope;
}

/** The JSON of an envelope without its opening brace: the script puts `{"seq":N,` in front. */
export const tail = (fields: object) => JSON.stringify(fields).slice(1);

/**
 * The first members of a page that fit `bytes` of bodies (at least one), counted from their
 * header lines (a message's gives its body's bytes; a receipt counts its whole member), so
 * that what a page cannot send is not parsed. `cut`: some were left out.
 */
export function fitting(members: string[], bytes: number): { members: string[]; cut: boolean } {
  let used = 0;
  for (let i = 0; i < members.length; i++) {
    const member = members[i] as string;
    used += member.startsWith('m ') ? Number.parseInt(member.slice(2, member.indexOf(' ', 2)), 10) || 0 : member.length;
    if (i > 0 && used > bytes) return { members: members.slice(0, i), cut: true };
  }
  return { members, cut: false };
}
