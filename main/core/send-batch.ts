// How the outbox's batches reach the relay: one message goes in a message:send, several in one
// message:send-many (PROTOCOL.md 13.1); the relay's answers are checked before they are believed.
import type { Result } from '../../preload/contract.ts';
import { resultSchema, SendManyResultSchema, SendResultSchema, type SendResult } from '../../relay/protocol.ts';
import type { Connection } from './connection.ts';
import type { Outgoing } from './outbox.ts';
import { fail, ok } from './result.ts';

export async function sendBatch(conn: Connection | null, batch: readonly Outgoing[]): Promise<Result<{ results: Result<SendResult>[] }>> {
  if (!conn) return fail('E_UNAVAILABLE', 'offline');
  const messages = batch.map(({ message, sealed }) => ({ id: message.id, to: message.peer, body: sealed, sentAt: message.sentAt }));
  const [one] = messages;
  const answer = one && messages.length === 1 ? await conn.request('message:send', one) : await conn.request('message:send-many', { messages });
  const checked = (messages.length === 1 ? resultSchema(SendResultSchema) : resultSchema(SendManyResultSchema)).safeParse(answer);
  if (!checked.success) return fail('E_INTERNAL', 'the relay gave a malformed answer');
  // Error codes this client does not know stay strings: the outbox treats them as final.
  const result = checked.data;
  if (!result.ok) return result;
  return 'results' in result.value ? ok({ results: result.value.results }) : ok({ results: [ok(result.value)] });
}
