import { afterEach, describe, expect, it } from 'vitest';
import { connectClient, eventually, newMessageId, startRelay, type TestClient, type TestRelay } from '../support/relay.ts';

let relay: TestRelay | undefined;
const clients: TestClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await relay?.stop();
  relay = undefined;
});

describe('a flooding client', () => {
  it('is rate limited while other people’s messages still flow', async () => {
    relay = await startRelay({ rate: { capacity: 50, perSecond: 25, abuseMs: 60_000 } });
    const [flooder, victim, carol, dave] = await Promise.all([0, 1, 2, 3].map(() => connectClient(relay!.url)));
    clients.push(flooder!, victim!, carol!, dave!);

    const flood = Promise.all(Array.from({ length: 2000 }, (_, i) => flooder!.send(victim!.id, `spam ${i}`, newMessageId()).catch(() => undefined)));
    const conversation: string[] = [];
    for (let i = 0; i < 20; i++) {
      const id = newMessageId();
      expect(await carol!.send(dave!.id, `hello ${i}`, id)).toMatchObject({ ok: true });
      conversation.push(id);
    }
    await eventually(() => conversation.every((id) => dave!.messages().some((m) => m.id === id)), 'carol to dave during the flood');

    const results = await flood;
    const limited = results.filter((r) => r && !r.ok && r.error.code === 'E_RATE_LIMITED').length;
    const accepted = results.filter((r) => r?.ok).length;
    expect(limited).toBeGreaterThan(1000);
    expect(accepted).toBeGreaterThanOrEqual(50);
    await eventually(() => victim!.messages().length === accepted, `the ${accepted} accepted spam messages, once each`);
  });

  it('is disconnected when it stays over the limit', async () => {
    relay = await startRelay({ rate: { capacity: 10, perSecond: 5, abuseMs: 500 } });
    const [flooder, target] = await Promise.all([0, 1].map(() => connectClient(relay!.url)));
    clients.push(flooder!, target!);
    const gone = new Promise<string>((resolve) => flooder!.socket.once('disconnect', resolve));
    const spam = setInterval(() => {
      for (let i = 0; i < 20; i++) flooder!.socket.emit('message:send', { id: newMessageId(), to: target!.id, body: 'x', sentAt: 0 }, () => undefined);
    }, 20);
    try {
      expect(await gone).toBe('io server disconnect');
    } finally {
      clearInterval(spam);
    }
    const fresh = await connectClient(relay.url);
    clients.push(fresh);
    expect(await fresh.send(target!.id, 'hello')).toMatchObject({ ok: true });
  });
});
