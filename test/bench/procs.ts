// Child processes of the bench: spawned through bash so each can raise its own file limit,
// with an IPC channel; and what /proc says about them (RSS, CPU time).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rpc, type LoadApi, type RelayApi, type RelayKind } from './ipc.ts';

const here = import.meta.dirname;
const NODE_FLAGS = ['--experimental-strip-types', '--disable-warning=ExperimentalWarning', '--expose-gc'];
const CLK_TCK = 100;
const children = new Set<ChildProcess>();
let niceness = 0;

/**
 * Runs the bench's children at this nice level (negative needs root): other work on the
 * machine then disturbs less. With autogroup scheduling, nice only counts within a session,
 * so each child then gets a session of its own, its autogroup set to the same level.
 */
export function setNice(level: number): void {
  niceness = Math.trunc(level);
}
const tempDirs = new Set<string>();

function spawnNode(script: string, options: { env?: Record<string, string>; nodeFlags?: string[]; fileLimit: number }): ChildProcess {
  // Raise the soft limit as far as asked, or to the hard limit when that is lower.
  const renice = niceness === 0 ? '' : `echo ${niceness} > /proc/self/autogroup 2>/dev/null; renice -n ${niceness} -p $$ >/dev/null 2>&1; `;
  const raise = `${renice}ulimit -n ${options.fileLimit} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$0" "$@"`;
  const child = spawn('bash', ['-c', raise, process.execPath, ...NODE_FLAGS, ...(options.nodeFlags ?? []), join(here, script)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, ...options.env },
    // Its own session (and so autogroup); it still exits when the bench's IPC channel closes.
    detached: niceness !== 0,
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/**
 * The V8 flags `npm run relay` runs the relay with (package.json), which every relay the bench
 * starts gets too, the baseline's included: a young generation of at most 2 x 64 MB (at 16,
 * the messages a busy relay has in flight outlived two young collections and were promoted:
 * at 64 (a) rose some 20 % and its CPU per DM fell from 12-13 to 10 µs; the price: under any
 * lasting load V8 grows it to the cap and keeps it, ~80 MB more RSS, README), and marking
 * for full collections in the event loop's own steps rather than in a thread beside it (on two
 * cores that thread took the event loop's core for ~100 ms at a time, and those stalls made
 * (c)'s p99; README, Benchmarks).
 */
export const RELAY_V8_FLAGS: readonly string[] = (() => {
  const scripts = (JSON.parse(readFileSync(join(here, '../../package.json'), 'utf8')) as { scripts: { relay: string } }).scripts;
  return scripts.relay.split(/\s+/).filter((word) => word.startsWith('--') && !NODE_FLAGS.includes(word));
})();

export interface RelayProc {
  kind: RelayKind;
  pid: number;
  url: string;
  rpc: Rpc<RelayApi>;
  stop(): Promise<void>;
}

/**
 * `dataDir`: the Parley relay's folder, kept after stop() (default: a temp folder of its own,
 * removed then). `durable`: the Parley relay's store commits with synchronous=FULL and answers
 * nobody before the commit (no envelope kept in memory for a connected recipient: RELIABILITY D3).
 */
export async function startRelay(kind: RelayKind, options: { fileLimit: number; profileDir?: string; dataDir?: string; durable?: boolean }): Promise<RelayProc> {
  const dir = kind === 'parley' ? (options.dataDir ?? mkdtempSync(join(tmpdir(), 'parley-bench-'))) : undefined;
  const own = dir !== undefined && options.dataDir === undefined;
  if (dir && own) tempDirs.add(dir);
  const nodeFlags = [...RELAY_V8_FLAGS, ...(options.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${options.profileDir}`, `--cpu-prof-name=${kind}-${Date.now()}.cpuprofile`] : [])];
  const child = spawnNode(kind === 'parley' ? 'parley-relay.ts' : 'baseline-relay.ts', { fileLimit: options.fileLimit, nodeFlags, ...(dir ? { env: { BENCH_DATA_DIR: dir, ...(options.durable ? { BENCH_DURABLE: '1' } : {}) } } : {}) });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${kind} relay exited early (${code})`)));
    child.on('message', (m: unknown) => {
      if (typeof m === 'object' && m !== null && 'ready' in m && 'port' in m && typeof m.port === 'number') resolve(m.port);
    });
  });
  const rpc = new Rpc<RelayApi>(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    kind, pid: child.pid ?? 0, url: `http://127.0.0.1:${port}`, rpc,
    async stop() {
      await Promise.race([rpc.call('stop', {}).catch(() => undefined), deadline(15_000)]);
      await Promise.race([exited, deadline(5_000)]);
      if (child.exitCode === null) child.kill('SIGKILL');
      if (dir && own) {
        rmSync(dir, { recursive: true, force: true });
        tempDirs.delete(dir);
      }
    },
  };
}

export interface LoadProc {
  pid: number;
  rpc: Rpc<LoadApi>;
  stop(): Promise<void>;
}

export function startLoadgen(fileLimit: number): LoadProc {
  const child = spawnNode('loadgen.ts', { fileLimit, nodeFlags: ['--max-old-space-size=4096'] });
  const rpc = new Rpc<LoadApi>(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    pid: child.pid ?? 0, rpc,
    async stop() {
      await Promise.race([rpc.call('close', {}).catch(() => undefined), deadline(10_000)]);
      if (child.connected) child.disconnect();
      await Promise.race([exited, deadline(5_000)]);
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
/** A deadline for Promise.race that does not keep the process alive. */
const deadline = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

/** Resident set size of a process, bytes: now (VmRSS) or its peak so far (VmHWM). */
export function rssOf(pid: number, which: 'VmRSS' | 'VmHWM' = 'VmRSS'): number {
  const match = new RegExp(`${which}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) * 1024 : Number.NaN;
}

/** User + system CPU time of a process so far, ms. */
export function cpuMsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) / CLK_TCK) * 1000;
}

/** CPU time every process on the machine used so far (user, nice, system, irq, softirq, steal), ms. */
export function machineBusyMs(): number {
  const fields = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = fields;
  return ((user + nice + system + irq + softirq + steal) / CLK_TCK) * 1000;
}

/** Kills whatever is still running and removes temp folders (on errors and Ctrl-C). */
export function cleanUp(): void {
  for (const child of children) child.kill('SIGKILL');
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}
