// The per-address connection cap across the nodes of a cluster: a burst of WebSocket upgrades
// from one address, spread over two nodes, is held to the cap as one relay holds it (the
// check and the count are one step in Redis), and what a connection counted is given back
// when its TCP connection closes, also when Engine.IO refused the upgrade.
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { openRawWebSocket, type RawWebSocket } from '../support/raw-ws.ts';
import { startRelay, type TestRelay } from '../support/relay.ts';
import { useRedis } from './support/redis.ts';
import { startNode, type TestNode } from './support/nodes.ts';
import { createClient } from 'redis';
import { createRedis, type Redis } from '../../relay/redis/commands.ts';
import { createClusterNode } from '../../relay/redis/node.ts';
import { redisAddressLimits } from '../../relay/redis/limits.ts';
import { ADMIT } from '../../relay/redis/node-scripts.ts';
import { silentLogger } from '../../relay/log.ts';
import { StorageError } from '../../relay/mailbox/store.ts';

const CAP = 3;
const redis = useRedis();
const nodes: TestNode[] = [];
const relays: TestRelay[] = [];
const open: RawWebSocket[] = [];

afterEach(async () => {
  for (const ws of open.splice(0)) ws.destroy();
  await Promise.all([...nodes.splice(0).map((n) => n.stop()), ...relays.splice(0).map((r) => r.stop())]);
});

/** Opens `n` WebSockets at once, spread over the ports; resolves with how many opened (they stay open). */
async function burst(ports: number[], n: number): Promise<number> {
  const tries = Array.from({ length: n }, (_, i) => openRawWebSocket(ports[i % ports.length]!).then((ws) => (open.push(ws), true), () => false));
  return (await Promise.all(tries)).filter(Boolean).length;
}

/** A WebSocket upgrade Engine.IO refuses after the relay admitted it (protocol 3); resolves once it is closed. */
function refusedByEngine(port: number): Promise<void> {
  return new Promise((resolve) => {
    const req = request({
      host: '127.0.0.1', port, path: '/socket.io/?EIO=3&transport=websocket',
      headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': randomBytes(16).toString('base64') },
    });
    req.on('upgrade', (_res, socket) => {
      socket.on('error', () => undefined);
      socket.once('close', () => resolve());
      socket.resume();
    });
    req.on('response', (res) => {
      res.resume();
      res.once('end', () => resolve());
    });
    req.on('error', () => resolve());
    req.end();
  });
}

const closeAll = async () => {
  const closing = open.splice(0);
  for (const ws of closing) ws.destroy();
  await new Promise((r) => setTimeout(r, 300));
};

describe('the per-address connection cap', () => {
  it('holds a burst of 40 upgrades to two nodes to the cap, and admits again once they close', { timeout: 30_000 }, async () => {
    const [a, b] = [await startNode(redis.url, { maxConnectionsPerAddress: CAP }), await startNode(redis.url, { maxConnectionsPerAddress: CAP })];
    nodes.push(a, b);
    expect(await burst([a.port, b.port], 40)).toBe(CAP);
    await closeAll();
    expect(await burst([a.port, b.port], 40)).toBe(CAP);
  });

  it('gives back the count of upgrades that Engine.IO refused, on one relay and on a node of a cluster', { timeout: 30_000 }, async () => {
    const relay = await startRelay({ maxConnectionsPerAddress: CAP });
    relays.push(relay);
    const node = await startNode(redis.url, { maxConnectionsPerAddress: CAP });
    nodes.push(node);
    for (const port of [relay.port, node.port]) {
      for (let i = 0; i < 2 * CAP; i++) await refusedByEngine(port);
      await new Promise((r) => setTimeout(r, 200));
      expect(await burst([port], CAP + 2)).toBe(CAP);
    }
  });

  it('still counts a connection admitted while the node rewrote its counts in Redis', { timeout: 30_000 }, async () => {
    const client = createClient({ url: redis.url });
    await client.connect();
    const real = createRedis(client, 2_000);
    // ADMIT's reply reaches this node 200 ms late (ADMIT itself ran in Redis at once), as when its event loop is busy.
    let admitLate = false;
    let admitFails = false;
    const slow: Redis = {
      ...real,
      run: (lua, keys, args, reply) => {
        if (lua === ADMIT && admitFails) return Promise.reject(new StorageError('E_UNAVAILABLE', 'redis is unreachable'));
        const sent = real.run(lua, keys, args, reply);
        return lua === ADMIT && admitLate ? sent.then(async (value) => (await new Promise((r) => setTimeout(r, 200)), value)) : sent;
      },
    };
    const node = createClusterNode({ redis: slow, prefix: 'lim:', nodeId: 'n1', ttlMs: 10_000, heartbeatMs: 50, log: silentLogger });
    await node.start();
    const limits = redisAddressLimits({ redis: slow, prefix: 'lim:', node, log: silentLogger, maxConnectionsPerAddress: CAP, maxFailures: 10, failureWindowMs: 60_000, blockMs: 60_000 });
    try {
      // Earlier Redis trouble (an admission Redis did not answer) left the node to rewrite its
      // counts at its next heartbeat (every 50 ms), which comes while the reply of the next
      // admission is on its way.
      admitFails = true;
      expect(await limits.admit('10.0.0.9')).toBeNull();
      admitFails = false;
      admitLate = true;
      expect(await limits.admit('10.0.0.1')).toBeNull();
      admitLate = false;
      await new Promise((r) => setTimeout(r, 200));
      // One connection from 10.0.0.1 is open: the cap lets CAP - 1 more in, not CAP.
      const more = [];
      for (let i = 0; i < CAP; i++) more.push(await limits.admit('10.0.0.1'));
      expect(more).toEqual([...Array.from({ length: CAP - 1 }, () => null), 'E_TOO_MANY_CONNECTIONS']);
    } finally {
      await node.close();
      real.close();
      await client.close();
    }
  });
});
