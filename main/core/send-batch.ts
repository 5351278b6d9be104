// How the outbox's batches reach the relay: one message goes in a message:send, several in one
// message:send-many (PROTOCOL.md 13.1). The connection has checked the relay's answers.
import type { Result } from '../../preload/contract.ts';
import type { SendResult } from '../../relay/protocol.ts';
import type { Connection } from './connection.ts';
import type { Outgoing } from './outbox.ts';
import { fail, ok } from './result.ts';

export async function sendBatch(conn: Connection | null, batch: readonly Outgoing[]): Promise<Result<{ results: Result<SendResult>[] }>> {
  if (!conn) return fail('E_UNAVAILABLE', 'offline');
  const messages = batch.map(({ message, sealed }) => ({ id: message.id, to: message.peer, body: sealed, sentAt: message.sentAt }));
  const [one] = messages;
  if (one && messages.length === 1) {
    const answer = await conn.request('message:send', one);
    return answer.ok ? ok({ results: [answer] }) : answer;
  }
  // Error codes this client does not know stay strings: the outbox treats them as final.
  const answer = await conn.request('message:send-many', { messages });
  return answer.ok ? ok({ results: answer.value.results }) : answer;
}
