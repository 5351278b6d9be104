// A relay that sends what no Parley relay would: typing updates and answers of the wrong shape.
// The app drops what it cannot believe, keeps running, and loses nothing it was asked to send.
import { expect, it } from 'vitest';
import { generateIdentity } from '../../relay/identity.ts';
import { eventually, useRelay } from '../support/relay.ts';
import { admittingRelay } from '../support/scripted-relay.ts';
import { must, online, startCore } from '../support/messenger.ts';

const scope = useRelay();

it('drops malformed typing updates and answers, keeps running, and sends a message once the answers make sense', async () => {
  const bob = generateIdentity();
  const bobEntry = { id: bob.userId, name: 'Bob', idKey: bob.idKey, kaKey: bob.kaKey, kaSig: bob.kaSig, online: true, lastSeen: Date.now(), rev: 1 };
  const sends: unknown[] = [];
  const relay = scope.track(await admittingRelay((socket) => {
    socket.on('directory:changes', (_payload: unknown, ack: (answer: unknown) => void) => ack({ ok: true, value: { users: ['junk', { id: 'x' }, bobEntry], next: null } }));
    socket.on('presence:watch', (_payload: unknown, ack: (answer: unknown) => void) => ack(null));
    socket.on('message:send', (payload: unknown, ack: (answer: unknown) => void) => {
      sends.push(payload);
      ack(sends.length === 1 ? { ok: true, value: { seq: 'first' } } : { ok: true, value: { seq: sends.length } });
    });
    for (const update of [null, 'typing', { from: 'x', typing: true }, { from: bob.userId, typing: 'yes' }, { from: bob.userId, typing: true }]) socket.emit('typing:update', update);
  }));
  const alice = scope.track(await startCore({ name: 'Alice' }));
  const typing: unknown[] = [];
  alice.messenger.on('typing', (t) => typing.push(t));
  must(await alice.messenger.handlers['relay:join']({ address: relay.address }));
  await online(alice);
  await eventually(() => typing.length > 0, 'the one well-formed typing update');
  expect(typing).toEqual([{ peer: bob.userId, typing: true }]);
  // Bob, the one believable directory entry, is known; the rest were skipped.
  const people = await eventually(async () => {
    const listed = must(await alice.messenger.handlers['people:list'](null));
    return listed.length > 0 ? listed : undefined;
  }, 'bob listed');
  expect(people.map((p) => p.id)).toEqual([bob.userId]);

  // A malformed answer to a send is no answer: the message waits and goes again, the same id.
  const sent = must(await alice.messenger.handlers['message:send']({ peer: bob.userId, text: 'Are you there?' }));
  await eventually(() => alice.updated.find((m) => m.id === sent.id && m.state === 'sent'), 'sent after the retry', 10_000);
  expect(sends.length).toBe(2);
  expect(sends.map((s) => (s as { id: string }).id)).toEqual([sent.id, sent.id]);
  expect(alice.updated.filter((m) => m.id === sent.id).map((m) => m.state)).not.toContain('failed');
  expect(alice.statuses.at(-1)?.connection.state).toBe('online');
});
