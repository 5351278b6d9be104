// A relay chooses the error codes it answers with. Codes that are names of JavaScript object
// properties ("constructor", "__proto__", "toString") must be as unknown to the app as any
// other code it has no words for: a send fails with the relay's own text, once, and a refused
// join keeps retrying with the app's words.
import { describe, expect, it } from 'vitest';
import { StorageError, type RelayStore } from '../../relay/mailbox/store.ts';
import { LIMITS } from '../../relay/protocol.ts';
import { eventually, useRelay } from '../support/relay.ts';
import { refusingRelay } from '../support/scripted-relay.ts';
import { knows, must, online, startCore } from '../support/messenger.ts';

const scope = useRelay();
const CODES = ['constructor', '__proto__', 'toString', 'hasOwnProperty'];

describe('error codes named like object properties', () => {
  it('fail a send with the relay text, once, instead of retrying it for ever', async () => {
    const asked: string[] = [];
    const relay = await scope.start({
      wrapStore: (store): RelayStore => ({
        ...store,
        accept: async () => {
          const code = CODES[asked.length % CODES.length] ?? 'constructor';
          asked.push(code);
          throw new StorageError(code as StorageError['code'], `refused as ${code}`);
        },
      }),
    });
    const bob = await scope.join({ name: 'Bob' });
    const alice = scope.track(await startCore({ name: 'Alice' }));
    must(await alice.messenger.handlers['relay:join']({ address: `127.0.0.1:${relay.port}` }));
    await online(alice);
    await knows(alice, bob.id);
    const sent = [];
    for (const code of CODES) {
      const message = must(await alice.messenger.handlers['message:send']({ peer: bob.id, text: `hello ${code}` }));
      sent.push(message);
      await eventually(() => alice.updated.find((m) => m.id === message.id && m.state === 'failed'), `the send answered ${code} to fail`);
    }
    expect(sent.map((m) => alice.updated.find((u) => u.id === m.id && u.state === 'failed')?.error)).toEqual(CODES.map((code) => `refused as ${code}`));
    // Each was asked once: a failed message is not sent again by itself.
    await new Promise((r) => setTimeout(r, 500));
    expect(asked).toEqual(CODES);
  });

  it('an answer whose error is over the protocol limits is malformed: the message stays queued, not failed with that text', async () => {
    // A hostile relay's texts (the relay itself keeps within LIMITS.errorMessageChars).
    const refusals = [
      { code: 'E_NEWER', message: 'x'.repeat(LIMITS.errorMessageChars + 1) },
      { code: `E_${'X'.repeat(LIMITS.errorCodeChars)}`, message: 'refused' },
    ];
    let asked = 0;
    const relay = await scope.start({
      wrapStore: (store): RelayStore => ({
        ...store,
        accept: async (...args) => {
          const refusal = refusals[asked++];
          if (refusal) throw new StorageError(refusal.code as StorageError['code'], refusal.message);
          return store.accept(...args);
        },
      }),
    });
    const bob = await scope.join({ name: 'Bob' });
    const alice = scope.track(await startCore({ name: 'Alice' }));
    must(await alice.messenger.handlers['relay:join']({ address: `127.0.0.1:${relay.port}` }));
    await online(alice);
    await knows(alice, bob.id);
    const message = must(await alice.messenger.handlers['message:send']({ peer: bob.id, text: 'hello' }));
    // Sent again after each malformed answer, and then taken: never failed.
    await eventually(() => bob.messages().length === 1, 'the message delivered after two malformed answers', 15_000);
    expect(asked).toBe(3);
    expect(alice.updated.filter((m) => m.id === message.id).map((m) => m.state)).not.toContain('failed');
    expect(bob.messages().map((m) => m.id)).toEqual([message.id]);
  });

  it('leave a refused join retrying, with the reason in our words', async () => {
    const relay = scope.track(await refusingRelay());
    const alice = scope.track(await startCore({ name: 'Alice' }));
    for (const code of CODES) {
      relay.refusal.code = code;
      relay.refusal.message = `refused as ${code}`;
      const before = relay.refused.length;
      if (code === CODES[0]) must(await alice.messenger.handlers['relay:join']({ address: relay.address }));
      await eventually(() => relay.refused.length > before, `a handshake refused as ${code}`, 10_000);
    }
    const statuses = alice.statuses.map((s) => s.connection).filter((c) => c.state === 'reconnecting');
    expect(statuses.length).toBeGreaterThan(0);
    for (const status of statuses) expect(status.reason).toBe('The relay cannot be reached.');
    // Structured-clonable, as the window's channel needs: plain strings and numbers only.
    expect(() => structuredClone(alice.statuses)).not.toThrow();
  });
});
