// The handshake's used-challenge set and the per-address limits, shared by every node: a
// challenge redeemed on one node is spent on all of them, and an address's connections and
// failed handshakes count across the cluster.
import { z } from 'zod';
import type { ErrorCode } from '../protocol.ts';
import type { Logger } from '../log.ts';
import type { AddressLimits, ChallengeLedger } from '../state.ts';
import type { Redis } from './commands.ts';
import type { ClusterNode } from './node.ts';
import { FAILED } from './node-scripts.ts';

export function redisChallengeLedger(redis: Redis, prefix: string): ChallengeLedger {
  return {
    // SET NX PX: the first node to record a challenge wins; it expires with the challenge.
    claim: async (challenge, ttlMs) => (await redis.command(['SET', `${prefix}ch:${challenge}`, '1', 'NX', 'PX', Math.max(1, Math.ceil(ttlMs))], z.string().nullable())) === 'OK',
  };
}

export interface RedisLimitsOptions {
  redis: Redis;
  prefix: string;
  node: ClusterNode;
  log: Logger;
  maxConnectionsPerAddress: number;
  maxFailures: number;
  failureWindowMs: number;
  blockMs: number;
}

/**
 * When Redis cannot be asked, connections are admitted (the handshake itself then answers
 * E_UNAVAILABLE, which is what a client should see while the relay cannot work).
 */
export function redisAddressLimits(options: RedisLimitsOptions): AddressLimits {
  const { redis, prefix: p, node, log } = options;
  const block = (address: string) => `${p}block:${address}`;
  const unreachable = (what: string) => (error: unknown) => {
    log.debug(`redis: ${what} skipped`, { error: String(error) });
    return null;
  };
  return {
    async admit(address) {
      const code = await node.admit(address, block(address), options.maxConnectionsPerAddress);
      return code === '' ? null : (code satisfies ErrorCode);
    },
    async isThrottled(address) {
      return (await redis.command(['EXISTS', block(address)], z.number().int()).catch(unreachable('throttle check'))) === 1;
    },
    closed: (address) => node.released(address),
    failed(address) {
      void redis.run(FAILED, [`${p}fail:${address}`, block(address)], [options.failureWindowMs, options.maxFailures, options.blockMs], z.number().int()).catch(unreachable('failure count'));
    },
  };
}
