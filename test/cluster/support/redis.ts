// Test support: a real redis-server on a free loopback port, with its append-only file in a
// temp folder, that a test can stop (gracefully or with SIGKILL) and start again on the same
// port and folder.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createConnection } from 'node:net';
import { afterAll, beforeAll } from 'vitest';
import { freePort } from '../../support/cli.ts';
import { tempDir } from '../../support/relay.ts';

export const REDIS_SERVER = process.env.PARLEY_REDIS_SERVER ?? 'redis-server';

/** Fails with a clear message where redis-server is missing (CI installs it: .ci/run). */
export function requireRedisServer(): void {
  const found = spawnSync(REDIS_SERVER, ['--version'], { encoding: 'utf8' });
  if (found.status !== 0) throw new Error(`${REDIS_SERVER} is needed for the cluster tests (apt-get install redis-server)`);
}

export interface TestRedis {
  url: string;
  port: number;
  dir: string;
  /** The server's pid while it runs. */
  pid(): number | undefined;
  /** Stops it: SIGTERM (it writes its AOF and exits) or SIGKILL. */
  stop(signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  /** Starts it again on the same port and folder (it replays its AOF). */
  start(): Promise<void>;
  /** Stops it and removes its folder. */
  remove(): Promise<void>;
}

async function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    socket.setTimeout(500);
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => {
      socket.destroy();
      resolve(data.toString().startsWith('+PONG'));
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

export async function startRedis(options: { appendfsync?: 'always' | 'everysec' } = {}): Promise<TestRedis> {
  requireRedisServer();
  const port = await freePort();
  const dir = tempDir('parley-redis-');
  let child: ChildProcess | null = null;
  let output = '';

  const start = async () => {
    output = '';
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir.path, '--save', '', '--appendonly', 'yes', '--appendfsync', options.appendfsync ?? 'everysec', '--protected-mode', 'yes', '--loglevel', 'warning'];
    const started = spawn(REDIS_SERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    started.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    started.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child = started;
    const deadline = Date.now() + 10_000;
    while (!(await answersPing(port))) {
      if (started.exitCode !== null || Date.now() > deadline) throw new Error(`redis-server did not start on ${port}:\n${output}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  };

  const stop = async (signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM') => {
    const running = child;
    child = null;
    if (!running || running.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => running.once('exit', () => resolve()));
    running.kill(signal);
    await exited;
  };

  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir: dir.path,
    pid: () => child?.pid,
    stop,
    start,
    async remove() {
      await stop();
      dir.remove();
    },
  };
}

/** A redis-server for the tests of a file: started before them, removed after. Call it at module level. */
export function useRedis(): TestRedis {
  let redis: TestRedis | undefined;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.remove();
  });
  const started = () => {
    if (!redis) throw new Error('redis starts before the tests (useRedis at module level)');
    return redis;
  };
  return {
    get url() {
      return started().url;
    },
    get port() {
      return started().port;
    },
    get dir() {
      return started().dir;
    },
    pid: () => started().pid(),
    stop: (signal) => started().stop(signal),
    start: () => started().start(),
    remove: () => started().remove(),
  };
}
