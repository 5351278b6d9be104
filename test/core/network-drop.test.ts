// RELIABILITY.md B5 network-drop, as the app sees it: the link to the relay is cut in the
// middle of a frame and then swallows everything for 30 s, with no FIN (a pulled cable, a
// laptop asleep). The app notices within 20 s, keeps what is written meanwhile queued (the
// window shows it pending), and once the network is back delivers everything once, in order.
import { describe, expect, it } from 'vitest';
import { eventually, useRelay } from '../support/relay.ts';
import { startProxy } from '../support/proxy.ts';
import { conversation, knows, must, online, startCore } from '../support/messenger.ts';

const scope = useRelay();

describe('the network drops without a word', () => {
  it('is noticed within 20 s; what is written meanwhile waits as queued and is delivered once, in order, after it heals', { timeout: 90_000 }, async () => {
    const relay = await scope.start(); // the default heartbeat: the one users get
    const proxy = scope.track(await startProxy(relay.port));
    const [ann, ben] = await Promise.all([startCore({ name: 'Ann' }), startCore({ name: 'Ben' })]);
    scope.track(ann);
    scope.track(ben);
    must(await ann.messenger.handlers['relay:join']({ address: proxy.url }));
    must(await ben.messenger.handlers['relay:join']({ address: relay.url }));
    await Promise.all([online(ann), online(ben)]);
    await knows(ann, ben.id);
    must(await ann.messenger.handlers['message:send']({ peer: ben.id, text: 'before' }));
    await eventually(async () => (await conversation(ben, ann.id)).length === 1, 'the first message', 10_000);

    // The next frame Ann sends is cut in half, and from then on nothing passes either way.
    proxy.cutMidFrame();
    const cutAt = Date.now();
    const texts = Array.from({ length: 10 }, (_, i) => `during ${i}`);
    must(await ann.messenger.handlers['message:send']({ peer: ben.id, text: texts[0]! }));
    await eventually(() => ann.statuses.at(-1)?.connection.state !== 'online' && ann.statuses.at(-1), 'the dead link noticed', 25_000);
    expect(Date.now() - cutAt).toBeLessThan(20_000);
    for (const text of texts.slice(1)) must(await ann.messenger.handlers['message:send']({ peer: ben.id, text }));

    const waiting = (await conversation(ann, ben.id)).filter((m) => m.text.startsWith('during'));
    expect(waiting.map((m) => m.text)).toEqual(texts);
    expect(waiting.every((m) => m.state === 'queued')).toBe(true);
    expect((await conversation(ben, ann.id)).map((m) => m.text)).toEqual(['before']);

    await new Promise((r) => setTimeout(r, Math.max(0, 30_000 - (Date.now() - cutAt))));
    expect(ann.statuses.at(-1)?.connection.state).not.toBe('online'); // still cut off after 30 s
    proxy.heal();

    await online(ann);
    const got = await eventually(async () => {
      const messages = await conversation(ben, ann.id);
      return messages.length >= 11 ? messages : undefined;
    }, 'everything after healing', 20_000);
    await new Promise((r) => setTimeout(r, 500)); // a duplicate would arrive by now
    expect((await conversation(ben, ann.id)).map((m) => m.text)).toEqual(['before', ...texts]);
    expect(got.map((m) => m.text)).toEqual(['before', ...texts]);
    await eventually(async () => (await conversation(ann, ben.id)).every((m) => m.state === 'delivered' || m.state === 'read'), 'every message marked delivered', 10_000);
  });
});
