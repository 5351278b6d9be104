// How the relay talks to Redis: every command has a deadline, Lua scripts run by SHA (and are
// sent again when a restarted Redis has forgotten them), and every failure becomes a
// StorageError: E_UNAVAILABLE when Redis cannot be reached or is loading, E_STORAGE otherwise.
import { createHash } from 'node:crypto';
import { ErrorReply } from 'redis';
import type { z } from 'zod';
import { StorageError } from '../mailbox/store.ts';

/** The part of a `redis` client the relay uses. */
export interface CommandClient {
  sendCommand<T>(args: readonly string[]): Promise<T>;
}

export interface Script {
  readonly source: string;
  readonly sha: string;
}

/** Every script made here, for loadScripts(). */
const scripts: Script[] = [];

export function script(source: string): Script {
  const made = { source, sha: createHash('sha1').update(source).digest('hex') };
  scripts.push(made);
  return made;
}

export type Arg = string | number;

export interface Redis {
  /** One command; rejects with a StorageError. */
  command<T>(args: readonly Arg[], reply: z.ZodType<T>): Promise<T>;
  /** A Lua script (atomic in Redis); rejects with a StorageError. */
  run<T>(lua: Script, keys: readonly string[], args: readonly Arg[], reply: z.ZodType<T>): Promise<T>;
  /**
   * Loads every script into Redis's script cache. Call it on every (re)connect before anything
   * else is sent: a script that Redis does not know is sent again after its NOSCRIPT reply,
   * behind whatever was sent meanwhile, so it would run out of the order it was sent in.
   */
  loadScripts(): Promise<void>;
  /** Stops the deadline timer. */
  close(): void;
}

const UNAVAILABLE_REPLY = /^(LOADING|READONLY|MASTERDOWN|BUSY|TRYAGAIN|CLUSTERDOWN)\b/;

export function storageError(error: unknown): StorageError {
  if (error instanceof StorageError) return error;
  if (error instanceof ErrorReply) {
    const code = UNAVAILABLE_REPLY.test(error.message) ? 'E_UNAVAILABLE' : 'E_STORAGE';
    return new StorageError(code, `redis: ${error.message}`, { cause: error });
  }
  const why = error instanceof Error ? error.message : String(error);
  return new StorageError('E_UNAVAILABLE', `redis is unreachable: ${why}`, { cause: error });
}

function parsed<T>(value: unknown, reply: z.ZodType<T>, what: string): T {
  const result = reply.safeParse(value);
  if (!result.success) throw new StorageError('E_STORAGE', `unexpected reply from redis to ${what}: ${result.error.issues[0]?.message ?? ''}`);
  return result.data;
}

class DeadlineError extends Error {}

export function createRedis(client: CommandClient, timeoutMs: number): Redis {
  // One timer for all commands (a per-command AbortSignal costs more than many commands do):
  // a command unanswered after its deadline is answered E_UNAVAILABLE. It may still run in
  // Redis later; every write is idempotent or harmless to repeat, so the caller may retry.
  const waiting = new Set<{ since: number; fail: (error: Error) => void }>();
  // Monotonic time: a wall clock stepped back must not hold a command past its deadline.
  const timer = setInterval(() => {
    const t = performance.now();
    for (const w of waiting) {
      if (t - w.since < timeoutMs) continue;
      waiting.delete(w);
      w.fail(new DeadlineError(`no answer within ${timeoutMs} ms`));
    }
  }, Math.max(10, Math.min(250, timeoutMs / 4)));
  timer.unref();
  const send = (args: readonly Arg[]) =>
    new Promise<unknown>((resolve, reject) => {
      const entry = { since: performance.now(), fail: reject };
      waiting.add(entry);
      client.sendCommand<unknown>(args.map(String)).then(
        (value) => {
          waiting.delete(entry);
          resolve(value);
        },
        (error: unknown) => {
          waiting.delete(entry);
          reject(error instanceof Error ? error : new Error(String(error)));
        },
      );
    });
  return {
    close: () => clearInterval(timer),
    async command(args, reply) {
      try {
        return parsed(await send(args), reply, String(args[0]));
      } catch (error) {
        throw storageError(error);
      }
    },
    async loadScripts() {
      try {
        await Promise.all(scripts.map((s) => send(['SCRIPT', 'LOAD', s.source])));
      } catch (error) {
        throw storageError(error);
      }
    },
    async run(lua, keys, args, reply) {
      const rest = [keys.length, ...keys, ...args];
      try {
        let value: unknown;
        try {
          value = await send(['EVALSHA', lua.sha, ...rest]);
        } catch (error) {
          // A restarted Redis has an empty script cache (scripts are not in the AOF); loadScripts()
          // fills it on reconnect, but a cache flushed otherwise is filled here, one by one.
          if (!(error instanceof ErrorReply && error.message.startsWith('NOSCRIPT'))) throw error;
          value = await send(['EVAL', lua.source, ...rest]);
        }
        return parsed(value, reply, 'a script');
      } catch (error) {
        throw storageError(error);
      }
    },
  };
}
