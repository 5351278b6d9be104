// One life of an app core in a child process (test/support/core-child.ts), for tests that kill
// it with SIGKILL and start it again on the same data folder.
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { expect } from 'vitest';
import type { ChildCommand, ChildEvent } from './core-child.ts';

const CHILD = resolve(import.meta.dirname, 'core-child.ts');

export interface CoreProcessOptions {
  dataDir: string;
  name: string;
  relayUrl: string;
  /** More environment for the child (its test hooks, a compile cache). */
  env?: NodeJS.ProcessEnv;
}

export class CoreProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
  readonly name: string;
  /** Everything it said, in order (what was still in the pipe when it died too). */
  readonly events: ChildEvent[] = [];
  id = '';
  /** Checked on every event as it arrives, so that a kill lands right at that point. */
  private readonly watchers = new Set<(event: ChildEvent) => void>();

  constructor(options: CoreProcessOptions) {
    this.name = options.name;
    this.child = fork(CHILD, [options.dataDir, options.name, options.relayUrl], {
      execArgv: ['--experimental-strip-types', '--disable-warning=ExperimentalWarning'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, ...options.env },
    });
    this.exited = new Promise((done) => this.child.once('exit', () => done()));
    this.child.on('message', (event: ChildEvent) => {
      this.events.push(event);
      for (const watch of this.watchers) watch(event);
    });
  }

  /** Starts one and resolves once it is online, with its user id. */
  static async start(options: CoreProcessOptions): Promise<CoreProcess> {
    const core = new CoreProcess(options);
    core.id = (await core.event('ready', `${options.name} online`)).id;
    return core;
  }

  command(command: ChildCommand): void {
    this.child.send(command);
  }

  /** Resolves with the first event from now on that `pick` picks; rejects on an error event, an exit or the timeout. */
  until<T>(pick: (event: ChildEvent) => T | undefined, what: string, timeoutMs = 30_000): Promise<T> {
    return new Promise<T>((done, fail) => {
      const stop = (settle: () => void) => {
        clearTimeout(timer);
        this.watchers.delete(watch);
        settle();
      };
      const watch = (event: ChildEvent) => {
        if (event.type === 'error') return stop(() => fail(new Error(`${this.name} failed (${what}): ${event.message}`)));
        const picked = pick(event);
        if (picked !== undefined) stop(() => done(picked));
      };
      const timer = setTimeout(() => stop(() => fail(new Error(`timed out waiting for ${what}`))), timeoutMs);
      this.watchers.add(watch);
      void this.exited.then(() => stop(() => fail(new Error(`${this.name} exited while waiting for ${what}`))));
    });
  }

  /** The first event of this type from now on (as until()). */
  event<K extends ChildEvent['type']>(type: K, what: string, timeoutMs?: number): Promise<Extract<ChildEvent, { type: K }>> {
    return this.until((e) => (e.type === type ? (e as Extract<ChildEvent, { type: K }>) : undefined), what, timeoutMs);
  }

  /** Stopped (SIGSTOP), as /proc tells: state T. */
  get stopped(): boolean {
    const stat = readFileSync(`/proc/${this.child.pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('T');
  }

  async kill(): Promise<void> {
    this.child.kill('SIGKILL');
    await this.exited;
    expect(this.child.signalCode).toBe('SIGKILL');
  }

  /** Kills it if it still runs. */
  async close(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) await this.kill();
  }
}
