// Bench sizes: defaults (about 4 minutes), --quick (under a minute), and overrides from
// flags (--pairs 50) or the environment (BENCH_PAIRS=50).
import { parseArgs } from 'node:util';

export interface Config {
  quick: boolean;
  scenarios: Set<string>;
  /** Which relays (a) and (c) run: parley, baseline or both. */
  relays: Set<string>;
  /** Message body length, characters (the same for both relays). */
  bodyBytes: number;
  /** Load-generator processes for (a) and (b), and for (c) and (d). */
  loadgens: number;
  manyLoadgens: number;
  fileLimit: number;
  /** Nice level for the relays and load generators (e.g. -10 as root, to stand up to other work on the machine). */
  nice: number;
  /** Before each measured step, wait up to this long for other processes to go quiet. */
  quietMs: number;
  /** Where the relays write V8 CPU profiles (--cpu-prof), if set. */
  profileDir?: string;
  // (a) recipients online
  pairs: number;
  window: number;
  probeMs: number;
  stepMs: number;
  graceMs: number;
  maxSteps: number;
  /** A step passes with zero loss and a delivery p99 under this. */
  sloMs: number;
  // (b) recipients offline
  offlinePairs: number;
  perSender: number;
  /** D5: messages queued for one recipient, drained on reconnect. */
  backlog: number;
  // (c) fixed rate over many connections
  cConnections: number;
  cRate: number;
  cMs: number;
  /** (c) runs its load this long before the measured cMs: the measured p99 is a warm relay's. */
  cWarmupMs: number;
  // (d) many connections
  dConnections: number;
  dConcurrency: number;
  dTimeoutMs: number;
}

const NUMBERS = {
  'body-bytes': 'bodyBytes', loadgens: 'loadgens', 'many-loadgens': 'manyLoadgens', 'file-limit': 'fileLimit', nice: 'nice', 'quiet-ms': 'quietMs',
  pairs: 'pairs', window: 'window', 'probe-ms': 'probeMs', 'step-ms': 'stepMs', 'grace-ms': 'graceMs', 'max-steps': 'maxSteps', 'slo-ms': 'sloMs',
  'offline-pairs': 'offlinePairs', 'per-sender': 'perSender', backlog: 'backlog',
  'c-connections': 'cConnections', 'c-rate': 'cRate', 'c-ms': 'cMs', 'c-warmup-ms': 'cWarmupMs',
  'd-connections': 'dConnections', 'd-concurrency': 'dConcurrency', 'd-timeout-ms': 'dTimeoutMs',
} as const satisfies Record<string, keyof Config>;
type NumberKey = (typeof NUMBERS)[keyof typeof NUMBERS];

export const HELP = `npm run bench [-- options]   (each also as BENCH_<NAME>, e.g. BENCH_PAIRS=50)
  --quick                 smaller and shorter (under a minute)
  --only a,b,c,d,s,k,w,h  run only these scenarios (s: the relay's store alone, k: Redis cluster, w: the window in Chromium, h: the app's history store)
  --relays parley,baseline  run (a) and (c) for only these relays
  --profile <dir>         write relay CPU profiles (node --cpu-prof) there
  --nice=-10              run relays and load generators at that nice level (root), against other work on the box
  ${Object.keys(NUMBERS).map((k) => `--${k} <n>`).join('\n  ')}`;

export function readConfig(argv: string[], env: NodeJS.ProcessEnv): Config | 'help' {
  const options: Record<string, { type: 'string' | 'boolean' }> = { quick: { type: 'boolean' }, help: { type: 'boolean' }, only: { type: 'string' }, relays: { type: 'string' }, profile: { type: 'string' } };
  for (const k of Object.keys(NUMBERS)) options[k] = { type: 'string' };
  const { values } = parseArgs({ args: argv, options, strict: true, allowPositionals: false });
  if (values.help) return 'help';
  const envOf = (flag: string) => env[`BENCH_${flag.toUpperCase().replaceAll('-', '_')}`];
  const quick = values.quick === true || envOf('quick') === '1';
  const config: Config = {
    quick,
    scenarios: new Set(String(values.only ?? envOf('only') ?? 'a,b,c,d,s,k,w,h').split(',').map((s) => s.trim().toLowerCase())),
    relays: new Set(String(values.relays ?? envOf('relays') ?? 'parley,baseline').split(',').map((s) => s.trim().toLowerCase())),
    bodyBytes: 256,
    loadgens: 1,
    manyLoadgens: 2,
    fileLimit: 65_536,
    nice: 0,
    quietMs: quick ? 500 : 3_000,
    pairs: quick ? 50 : 100,
    window: 8,
    probeMs: quick ? 1_500 : 3_000,
    stepMs: quick ? 1_500 : 2_000,
    graceMs: quick ? 500 : 1_000,
    maxSteps: quick ? 3 : 10,
    sloMs: 500,
    offlinePairs: quick ? 50 : 100,
    perSender: quick ? 100 : 500,
    backlog: 20_000,
    cConnections: quick ? 300 : 2_000,
    cRate: 5_000,
    cMs: quick ? 2_000 : 5_000,
    cWarmupMs: quick ? 1_000 : 3_000,
    dConnections: quick ? 600 : 10_000,
    dConcurrency: 64,
    dTimeoutMs: quick ? 8_000 : 60_000,
  };
  const profile = values.profile ?? envOf('profile');
  if (typeof profile === 'string' && profile !== '') config.profileDir = profile;
  for (const [flag, key] of Object.entries(NUMBERS) as [string, NumberKey][]) {
    const raw = values[flag] ?? envOf(flag);
    if (raw === undefined || typeof raw === 'boolean') continue;
    const n = Number(raw);
    if (!Number.isFinite(n) || (n <= 0 && key !== 'nice')) throw new Error(`--${flag}: expected a positive number, got ${raw}`);
    config[key] = n;
  }
  return config;
}
