// Test support: relay nodes of one cluster, in-process (createRelay over the Redis store) or
// as real `npm run relay -- --redis …` child processes, each in its own process group so
// that a SIGKILL takes the relay down for real.
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { resolve } from 'node:path';
import { createRelay, type Relay, type RelayOptions } from '../../../relay/server.ts';
import { openRedisCluster, type RedisCluster, type RedisClusterOptions } from '../../../relay/redis/cluster.ts';
import type { RelayCluster } from '../../../relay/state.ts';
import type { ClusterStore } from '../../../relay/redis/store.ts';
import { connectClient, type ClientOptions, type TestClient } from '../../support/relay.ts';
import { useRedis, type TestRedis } from './redis.ts';

const ROOT = resolve(import.meta.dirname, '../../..');

export interface TestNode {
  relay: Relay;
  store: ClusterStore;
  cluster: RelayCluster;
  url: string;
  port: number;
  stop(): Promise<void>;
}

export type NodeOptions = Partial<Omit<RelayOptions, 'store' | 'cluster'>> & Partial<Omit<RedisClusterOptions, 'url'>>;

export async function startNode(redisUrl: string, options: NodeOptions = {}): Promise<TestNode> {
  const { store, cluster } = await openRedisCluster({ url: redisUrl, nodeTtlMs: 2_000, heartbeatMs: 250, commandTimeoutMs: 1_000, sweepMs: 60_000, ...options });
  const relay = createRelay({ name: 'test node', ackTimeoutMs: 3_000, ...options, store, cluster });
  const address = await relay.listen(0, '127.0.0.1');
  return { relay, store, cluster, url: `http://127.0.0.1:${address.port}`, port: address.port, stop: () => relay.close() };
}

export interface CliNode {
  child: ChildProcess;
  url: string;
  port: number;
  output: () => string;
  exited: Promise<number | null>;
  /** Signals the whole process group (npm, its shell and the relay). */
  kill(signal: 'SIGKILL' | 'SIGTERM'): Promise<void>;
}

/** `npm run relay -- --redis <url> …` on a free port; resolves once it listens. */
export async function startCliNode(redisUrl: string, args: string[] = []): Promise<CliNode> {
  const child = spawn('npm', ['run', '--silent', 'relay', '--', '--redis', redisUrl, '--host', '127.0.0.1', '--port', '0', '--node-ttl', '2000', '--log-level', 'warn', ...args], {
    cwd: ROOT,
    env: { ...process.env, PARLEY_REDIS: '', PARLEY_PORT: '', PARLEY_HOST: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let text = '';
  child.stdout?.on('data', (chunk: Buffer) => (text += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  const port = await new Promise<number>((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`relay node did not start:\n${text}`)), 20_000);
    const check = () => {
      const match = /listening on 127\.0\.0\.1:(\d+)/.exec(text);
      if (!match) return;
      clearTimeout(timer);
      done(Number(match[1]));
    };
    child.stdout?.on('data', check);
    void exited.then((code) => fail(new Error(`relay node exited with ${code}:\n${text}`)));
  });
  return {
    child,
    url: `http://127.0.0.1:${port}`,
    port,
    output: () => text,
    exited,
    async kill(signal) {
      if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
      try {
        process.kill(-child.pid, signal);
      } catch {
        return; // already gone
      }
      await exited;
    },
  };
}

export interface TwoNodes {
  readonly redis: TestRedis;
  readonly a: TestNode;
  readonly b: TestNode;
  /** Connects a client to a node; it is closed after the test. */
  join(url: string, options?: ClientOptions): Promise<TestClient>;
}

/**
 * A redis-server and two in-process nodes on it for the tests of a file (started before
 * them, stopped after), and the clients those tests join, closed after each: call it at
 * module level. The nodes' periodic sweep stays off (startNode: 60 s), so a test sees what
 * the delivery streams do by themselves.
 */
export function useTwoNodes(options: NodeOptions = {}): TwoNodes {
  // Its after-all hook runs after this file's (Vitest runs them in reverse): the nodes stop first.
  const redis = useRedis();
  let a: TestNode | undefined;
  let b: TestNode | undefined;
  const clients: TestClient[] = [];
  const started = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('the nodes start before the tests (useTwoNodes at module level)');
    return value;
  };
  beforeAll(async () => {
    a = await startNode(redis.url, options);
    b = await startNode(redis.url, options);
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
  });
  return {
    redis,
    get a() {
      return started(a);
    },
    get b() {
      return started(b);
    },
    async join(url, clientOptions = {}) {
      const client = await connectClient(url, clientOptions);
      clients.push(client);
      return client;
    },
  };
}

export interface SharedState {
  readonly redis: TestRedis;
  /** Opens a store and the shared state on the file's redis-server; closed after its tests. */
  open(options?: Omit<RedisClusterOptions, 'url'>): Promise<RedisCluster>;
}

/**
 * A redis-server for the tests of a file (started before them, removed after), and the stores
 * and shared state they open on it, without a relay: call it at module level.
 */
export function useSharedState(): SharedState {
  const redis = useRedis(); // removed after the stores close (after-all hooks run in reverse)
  const opened: RedisCluster[] = [];
  afterAll(async () => {
    for (const { store, cluster } of opened.splice(0)) {
      await store.close();
      await cluster.close();
    }
  });
  return {
    redis,
    async open(options = {}) {
      const opening = await openRedisCluster({ url: redis.url, ...options });
      opened.push(opening);
      return opening;
    },
  };
}
