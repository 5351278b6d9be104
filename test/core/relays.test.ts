// Moving between relays, refusals the user must see, and hosting on a port that is taken.
import { describe, expect, it } from 'vitest';
import { createServer, type AddressInfo } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import { eventually, useRelay, type TestRelay } from '../support/relay.ts';
import { conversation, knows, must, online, startCore, type TestCore } from '../support/messenger.ts';
import { relayBaseUrl } from '../../relay/handshake.ts';

const scope = useRelay();

/** Alice and Bob, both on this relay, each knowing the other. */
async function aliceAndBob(on: TestRelay): Promise<{ alice: TestCore; bob: TestCore }> {
  const alice = await startCore({ name: 'Alice' });
  const bob = await startCore({ name: 'Bob' });
  scope.track(alice);
  scope.track(bob);
  for (const c of [alice, bob]) must(await c.messenger.handlers['relay:join']({ address: on.url }));
  await Promise.all([online(alice), online(bob)]);
  await knows(alice, bob.id);
  return { alice, bob };
}

describe('relays', () => {
  it("keeps messages queued, in order, when the recipient's mailbox is full, and sends them once there is room", async () => {
    const small = await scope.start({ mailbox: { maxMessages: 3, maxBytes: 1_000_000 } });
    const { alice, bob } = await aliceAndBob(small);
    must(await bob.messenger.handlers['relay:leave'](null));
    const texts = Array.from({ length: 6 }, (_, i) => `while away ${i}`);
    for (const text of texts) must(await alice.messenger.handlers['message:send']({ peer: bob.id, text }));
    // Three fit in Bob's mailbox; the rest wait in Alice's outbox instead of failing.
    await eventually(async () => (await conversation(alice, bob.id)).filter((m) => m.state === 'sent').length === 3, 'three accepted');
    await new Promise((r) => setTimeout(r, 300));
    expect((await conversation(alice, bob.id)).map((m) => m.state)).toEqual(['sent', 'sent', 'sent', 'queued', 'queued', 'queued']);
    must(await bob.messenger.handlers['relay:join']({ address: small.url }));
    await eventually(async () => (await conversation(bob, alice.id)).length === 3, 'bob takes the three');
    // Alice reconnects: her outbox tries again at once, and the rest follow in order.
    must(await alice.messenger.handlers['relay:join']({ address: small.url }));
    await eventually(async () => (await conversation(bob, alice.id)).length === 6, 'the other three', 10_000);
    expect((await conversation(bob, alice.id)).map((m) => m.text)).toEqual(texts);
  });

  it('keeps history when switching relays; a refused send fails with its reason and can be retried', async () => {
    const [first, second] = [await scope.start(), await scope.start()];
    const { alice, bob } = await aliceAndBob(first);
    must(await alice.messenger.handlers['message:send']({ peer: bob.id, text: 'on the first relay' }));
    await eventually(async () => (await conversation(bob, alice.id)).length === 1, 'first message');

    // Alice moves to a relay where Bob has never been: her message cannot be delivered there.
    must(await alice.messenger.handlers['relay:join']({ address: second.url }));
    await eventually(() => alice.statuses.at(-1)?.connection.state === 'online' && alice.statuses.at(-1)?.connection, 'alice on the second relay');
    const stranded = must(await alice.messenger.handlers['message:send']({ peer: bob.id, text: 'on the second relay' }));
    const failed = await eventually(() => alice.updated.find((m) => m.id === stranded.id && m.state === 'failed'), 'failed');
    expect(failed.error).toBe('This relay does not know the recipient.');
    expect((await conversation(alice, bob.id)).map((m) => m.text)).toEqual(['on the first relay', 'on the second relay']);

    // Bob comes to the second relay too; Alice retries the same message.
    must(await bob.messenger.handlers['relay:join']({ address: second.url }));
    await online(bob);
    await eventually(async () => must(await alice.messenger.handlers['people:list'](null)).find((p) => p.id === bob.id)?.online, 'bob online on the second relay');
    const retried = must(await alice.messenger.handlers['message:retry']({ n: stranded.n }));
    expect(retried).toMatchObject({ id: stranded.id, state: 'queued' });
    await eventually(async () => (await conversation(bob, alice.id)).length === 2, 'retried message arrives');
    expect((await conversation(bob, alice.id)).map((m) => m.text)).toEqual(['on the first relay', 'on the second relay']);
    const remembered = must(await alice.messenger.handlers['relay:remembered'](null)).map((r) => r.address);
    expect(remembered).toEqual([new URL(second.url).host, new URL(first.url).host]);
  });

  it('says clearly when the hosting port is taken', async () => {
    const blocker = scope.track(createServer());
    const port = await new Promise<number>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve((blocker.address() as { port: number }).port)));
    const host = scope.track(await startCore({ name: 'Host', host: true }));
    const result = await host.messenger.handlers['host:start']({ port, open: true });
    expect(result).toMatchObject({ ok: false, error: { code: 'E_PORT_IN_USE', message: expect.stringContaining(`Port ${port} is already in use`) } });
    const ok = must(await host.messenger.handlers['host:start']({ port: 0, open: true }));
    expect(ok.accessCode).toBeNull();
    await online(host);
    must(await host.messenger.handlers['host:stop'](null));
    expect(host.statuses.at(-1)).toMatchObject({ connection: { state: 'offline' }, hosting: null });
  });

  it('reports an unreachable relay as reconnecting, with a reason', async () => {
    const alice = scope.track(await startCore({ name: 'Alice' }));
    /** Joins `address` (unreachable) and waits for the reconnecting status it brings. */
    const tryJoin = async (address: string) => {
      must(await alice.messenger.handlers['relay:join']({ address }));
      return eventually(() => {
        const s = alice.statuses.at(-1)?.connection;
        return s?.state === 'reconnecting' ? s : undefined;
      }, `reconnecting to ${address}`);
    };
    const status = await tryJoin('127.0.0.1:1');
    expect(status.reason).toBe('The relay cannot be reached.');
    expect(status.relay).toBe('127.0.0.1:1');

    // An https relay is shown, and would be remembered, with its scheme: rejoining it uses https again.
    const secure = await tryJoin('https://127.0.0.1:1');
    expect(secure.relay).toBe('https://127.0.0.1:1');
    expect(relayBaseUrl(secure.relay).href).toBe('https://127.0.0.1:1/');
    expect(await alice.messenger.handlers['relay:join']({ address: 'ftp://x' })).toMatchObject({ ok: false, error: { code: 'E_ADDRESS' } });
  });

  it('says when something other than a Parley relay answers at the address (a web server on that port)', async () => {
    const web = createHttpServer((_req, res) => res.writeHead(404, { 'content-type': 'text/html' }).end('<h1>Not Found</h1>'));
    await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
    scope.track(() => new Promise<void>((resolve) => web.close(() => resolve())));
    const alice = scope.track(await startCore({ name: 'Alice' }));
    must(await alice.messenger.handlers['relay:join']({ address: `127.0.0.1:${(web.address() as AddressInfo).port}` }));
    const status = await eventually(() => {
      const s = alice.statuses.at(-1)?.connection;
      return s?.state === 'reconnecting' ? s : undefined;
    }, 'reconnecting');
    expect(status.reason).toBe('Something answers at this address, but not a Parley relay. Check the address and port.');
  });
});
