// A relay may refuse a connection before Socket.IO sees it (PROTOCOL.md 5.5): an address that
// failed too many handshakes is held off for a minute, and one address may hold only so many
// connections. The person joining is told which, and the app waits as the refusal asks.
import { describe, expect, it } from 'vitest';
import { eventually, useRelay } from '../support/relay.ts';
import { must, online, startCore } from '../support/messenger.ts';

const scope = useRelay();

describe('a join refused before the handshake', () => {
  it('says the relay is holding off this computer after too many wrong codes, and waits instead of asking again', async () => {
    const relay = await scope.start({ accessCode: 'right-code', maxAuthFailures: 3 });
    const eve = scope.track(await startCore({ name: 'Eve' }));
    const address = `127.0.0.1:${relay.port}`;
    for (let i = 0; i < 3; i++) {
      const since = eve.statuses.length;
      must(await eve.messenger.handlers['relay:join']({ address, accessCode: `wrong-${i}` }));
      await eventually(() => eve.statuses.slice(since).find((s) => s.connection.state === 'refused'), `refusal ${i}`);
    }
    const since = eve.statuses.length;
    must(await eve.messenger.handlers['relay:join']({ address, accessCode: 'right-code' }));
    const held = await eventually(() => eve.statuses.slice(since).find((s) => s.connection.state === 'reconnecting')?.connection, 'held off');
    expect(held).toMatchObject({ reason: 'Too many failed attempts from this computer: the relay holds it off for a minute.' });
    // The usual backoff (from 100 ms here) would have tried several times by now.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(eve.statuses.slice(since).map((s) => s.connection.state).filter((state) => state !== 'offline')).toEqual(['connecting', 'reconnecting']);
  });

  it('says the relay holds too many connections from this network, and joins once one closes', async () => {
    const relay = await scope.start({ maxConnectionsPerAddress: 1 });
    const bob = await scope.join({ name: 'Bob' });
    const alice = scope.track(await startCore({ name: 'Alice' }));
    must(await alice.messenger.handlers['relay:join']({ address: `127.0.0.1:${relay.port}` }));
    const held = await eventually(() => alice.statuses.find((s) => s.connection.state === 'reconnecting')?.connection, 'held off');
    expect(held).toMatchObject({ reason: 'The relay holds too many connections from this network; trying again.' });
    await scope.close(bob);
    await online(alice);
  });
});
