// The app's copy of the relay's directory (main/core/directory-sync.ts) over a real relay:
// someone new must be seen however their hint interleaves with the app's other directory
// work. A presence:watch answer carries entries at their newest rev, which can be above the
// rev of a change the app has not fetched yet (the relay sends its hints up to a second
// late): that answer must not move the point that directory:changes starts after.
import { describe, expect, it } from 'vitest';
import { connect, type Connection } from '../../main/core/connection.ts';
import { createDirectorySync } from '../../main/core/directory-sync.ts';
import { Presence } from '../../main/core/directory.ts';
import { openHistory } from '../../main/core/history/index.ts';
import { generateIdentity } from '../../relay/identity.ts';
import { eventually, tempDir, useRelay } from '../support/relay.ts';

const scope = useRelay();

describe('the directory kept in step with the relay', () => {
  it('sees someone new whose hint is older than a watch answer that came first', { timeout: 20_000 }, async () => {
    const relay = await scope.start();
    const bob = await scope.join({ name: 'Bob' });
    const dir = tempDir();
    scope.track(() => dir.remove());
    const history = openHistory(`${dir.path}/history.db`);
    scope.track(() => history.close());

    // Between the sync's directory read and its watch of the people the app knows, Carol
    // joins for the first time and Bob connects a second device (a newer rev for Bob).
    let meanwhile: (() => Promise<void>) | null = null;
    let carolId = '';
    const app = generateIdentity();
    const conn: Connection = scope.track(connect({
      identity: app,
      name: () => 'App',
      address: relay.url,
      handlers: {
        status: () => undefined,
        deliver: () => Promise.resolve({ ok: true }),
        presence: (user) => sync.presenceUpdated(user),
        directoryChanged: (rev) => sync.changed(rev),
        typing: () => undefined,
      },
    }));
    const intercepted: Connection = {
      get status() { return conn.status; },
      get hello() { return conn.hello; },
      typing: (to, typing) => conn.typing(to, typing),
      close: () => conn.close(),
      async request(event, payload, timeoutMs) {
        const before = meanwhile;
        if (event === 'presence:watch' && before) {
          meanwhile = null;
          await before();
        }
        return conn.request(event, payload, timeoutMs);
      },
    };
    // Bob is known from a first sync; a second one (as after a reconnect) meets the interleaving.
    const sync = createDirectorySync({ history, presence: new Presence(), me: app.userId, connection: () => intercepted, announce: () => undefined, named: () => undefined, emit: () => undefined });
    await eventually(() => conn.status.state === 'online', 'the app to connect');
    await sync.sync();
    expect(history.peerIds()).toEqual([bob.id]);
    meanwhile = async () => {
      const carol = await scope.join({ name: 'Carol' });
      carolId = carol.id;
      const bobAgain = await scope.join({ name: 'Bob', identity: bob.identity });
      const revOf = async (id: string) => {
        const got = await bobAgain.request('directory:get', { ids: [id] });
        return got.ok ? (got.value.users[0]?.rev ?? 0) : 0;
      };
      const carolRev = await revOf(carol.id);
      await eventually(async () => (await revOf(bob.id)) > carolRev, "Bob's second device to be recorded after Carol");
    };
    await sync.sync();
    expect(meanwhile).toBeNull();
    // Carol's hint arrives (within about a second) and is followed up.
    await eventually(() => history.peerIds().includes(carolId), 'the app to learn of Carol', 5_000);
    expect(history.peerIds().sort()).toEqual([bob.id, carolId].sort());
  });
});
