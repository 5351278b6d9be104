// Child process of the cluster bench: one relay node, over SQLite (BENCH_STORE=sqlite, in
// BENCH_DIR) or as a node of a Redis cluster (BENCH_STORE=redis, BENCH_REDIS_URL), with the
// limits opened up for a load test (every client comes from 127.0.0.1). It prints
// "READY <port>" and answers {cmd:'cpu'} with its process.cpuUsage() and {cmd:'stop'} by
// closing and exiting.
import { join } from 'node:path';
import { z } from 'zod';
import { createRelay, type RelayOptions } from '../../relay/server.ts';
import { openSqliteStore } from '../../relay/mailbox/sqlite.ts';
import { openRedisCluster } from '../../relay/redis/cluster.ts';
import { LOAD_TEST_LIMITS } from './child.ts';

const Env = z.object({
  BENCH_STORE: z.enum(['sqlite', 'redis']),
  BENCH_DIR: z.string().min(1),
  BENCH_REDIS_URL: z.string().optional(),
  BENCH_PREFIX: z.string().default('bench:'),
});
const env = Env.parse(process.env);
const Command = z.object({ cmd: z.enum(['cpu', 'stop']) });

const limits: Omit<RelayOptions, 'store'> = { name: 'bench node', ...LOAD_TEST_LIMITS };

let relayOptions: RelayOptions;
if (env.BENCH_STORE === 'redis') {
  if (!env.BENCH_REDIS_URL) throw new Error('BENCH_REDIS_URL is not set');
  const { store, cluster } = await openRedisCluster({ url: env.BENCH_REDIS_URL, prefix: env.BENCH_PREFIX });
  relayOptions = { ...limits, store, cluster };
} else {
  relayOptions = { ...limits, store: openSqliteStore({ path: join(env.BENCH_DIR, 'relay.db') }) };
}
const relay = createRelay(relayOptions);

process.on('message', (raw: unknown) => {
  const parsed = Command.safeParse(raw);
  if (!parsed.success) return;
  if (parsed.data.cmd === 'cpu') {
    process.send?.({ cpu: process.cpuUsage() });
    return;
  }
  void relay.close().then(() => {
    process.send?.({ stopped: true });
    setTimeout(() => process.exit(0), 20);
  });
});

const address = await relay.listen(0, '127.0.0.1');
process.stdout.write(`READY ${address.port}\n`);
