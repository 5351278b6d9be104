// Child process: the Parley relay under test, over SQLite in BENCH_DATA_DIR, with limits
// opened up for a load test (every client comes from 127.0.0.1). Reports its port on IPC.
// BENCH_DURABLE=1: synchronous=FULL, and every message committed before its sender is answered.
import { join } from 'node:path';
import { createRelay } from '../../relay/server.ts';
import { openSqliteStore } from '../../relay/mailbox/sqlite.ts';
import { serve, type RelayApi } from './ipc.ts';
import { LOAD_TEST_LIMITS, lagSinceLast, memoryNow, ready } from './child.ts';

const dir = process.env.BENCH_DATA_DIR;
if (!dir) throw new Error('BENCH_DATA_DIR is not set');

const relay = createRelay({
  store: openSqliteStore({ path: join(dir, 'relay.db'), ...(process.env.BENCH_DURABLE === '1' ? { durability: 'full', holdMs: 0 } : {}) }),
  name: 'bench relay',
  ...LOAD_TEST_LIMITS,
});

serve<RelayApi>({
  mem: async () => memoryNow(),
  lag: async () => lagSinceLast(),
  stop: async () => {
    await relay.close();
    // Exit after the answer is on its way; --cpu-prof writes its profile on a normal exit.
    setTimeout(() => process.exit(0), 50);
    return { stopped: true };
  },
});

const address = await relay.listen(0, '127.0.0.1');
ready(address.port);
