// The relay's Redis commands keep their deadline whatever the wall clock does: a command
// Redis does not answer in time is answered E_UNAVAILABLE (a send is then refused, never
// left hanging), even when the machine's clock steps back meanwhile (an NTP correction).
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createClient } from 'redis';
import { z } from 'zod';
import { createRedis } from '../../relay/redis/commands.ts';
import { openRedisCluster } from '../../relay/redis/cluster.ts';
import { ACCEPT, ACKNOWLEDGE, CLAIM, POST } from '../../relay/redis/scripts.ts';
import { eventually } from '../support/relay.ts';
import { startRedis, type TestRedis } from './support/redis.ts';

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.remove();
});

describe('a Redis command', () => {
  it('is answered E_UNAVAILABLE at its deadline even when the clock steps back an hour meanwhile', async () => {
    const client = createClient({ url: redis.url });
    const admin = createClient({ url: redis.url });
    await Promise.all([client.connect(), admin.connect()]);
    const commands = createRedis(client, 300);
    try {
      // Redis stops answering for 1.5 s; the command's deadline is 300 ms.
      await admin.sendCommand(['CLIENT', 'PAUSE', '1500', 'ALL']);
      const reply = commands.command(['GET', 'k'], z.string().nullable()).then(() => 'answered', (error: unknown) => error);
      const realNow = Date.now.bind(Date);
      vi.spyOn(Date, 'now').mockImplementation(() => realNow() - 3_600_000);
      const outcome = await reply;
      expect(outcome).toMatchObject({ code: 'E_UNAVAILABLE' });
    } finally {
      vi.restoreAllMocks();
      commands.close();
      await client.close();
      await admin.close();
    }
  });

  it('knows every script of the relay again as soon as a restarted Redis is back, before any is used', { timeout: 30_000 }, async () => {
    // A script Redis does not know is sent again after its NOSCRIPT reply, behind whatever
    // was sent meanwhile: a message's script would run after a later one (its order lost).
    const { store, cluster } = await openRedisCluster({ url: redis.url, prefix: 'c2:', nodeTtlMs: 2_000 });
    const probe = createClient({ url: redis.url });
    const shas = [ACCEPT, CLAIM, ACKNOWLEDGE, POST].map((s) => s.sha);
    try {
      await probe.connect();
      expect(await probe.scriptExists(shas)).toEqual([1, 1, 1, 1]);
      await probe.close();
      await redis.stop('SIGTERM');
      await redis.start();
      await probe.connect();
      await eventually(async () => (await probe.scriptExists(shas)).every((n) => n === 1), 'the node to load its scripts again', 10_000);
    } finally {
      await probe.close().catch(() => undefined);
      await store.close();
      await cluster.close();
    }
  });
});
