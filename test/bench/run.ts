// `npm run bench`: the Parley relay against a tutorial-style Socket.IO relay, each in its own
// process, driven by separate load-generator processes. Prints figures; asserts nothing.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { HELP, readConfig } from './config.ts';
import { cleanUp, setNice } from './procs.ts';
import { report, type Results } from './report.ts';
import { backlog, connections, log, offline, online } from './scenarios.ts';
import { benchHistory, printHistory } from './history.ts';
import { formatResults, runClusterBench } from './cluster.ts';
import { formatStoreLoop, storeLoop } from './store-loop.ts';
import { spawnSync } from 'node:child_process';

const config = readConfig(process.argv.slice(2), process.env);
if (config === 'help') {
  console.log(HELP);
  process.exit(0);
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    cleanUp();
    process.exit(130);
  });
}

/** Which relay code was measured: a hash of relay/ sources and their newest change. */
function relayFingerprint(): string {
  const dir = join(import.meta.dirname, '../../relay');
  const files = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts')).sort();
  const hash = createHash('sha256');
  let newest = 0;
  for (const f of files) {
    hash.update(f).update(readFileSync(join(dir, f)));
    newest = Math.max(newest, statSync(join(dir, f)).mtimeMs);
  }
  return `relay/ sources ${hash.digest('hex').slice(0, 12)}, last changed ${new Date(newest).toISOString()}`;
}

const started = Date.now();
const results: Results = { online: {}, fixed: {} };
const want = (s: string) => config.scenarios.has(s);
setNice(config.nice);
log(`${config.quick ? 'quick' : 'full'} run on ${cpus().length} cores, node ${process.version}${config.nice ? `, children at nice ${config.nice}` : ''}`);
/** Runs one scenario; a failure is reported and the others still run. */
async function attempt(name: string, work: () => Promise<void>): Promise<void> {
  try {
    await work();
  } catch (error) {
    log(`${name} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exitCode = 1;
  }
}

const parleyRuns = config.relays.has('parley');
const baselineRuns = config.relays.has('baseline');
try {
  if (want('a') && parleyRuns) await attempt('(a) parley', async () => void (results.online.parley = await online('parley', config)));
  // The baseline also runs at Parley's best rate: latency at equal load.
  if (want('a') && baselineRuns) await attempt('(a) baseline', async () => void (results.online.baseline = await online('baseline', config, results.online.parley?.best?.rate)));
  if (want('b')) await attempt('(b)', async () => void (results.offline = await offline(config)));
  if (want('b')) await attempt('(b) backlog', async () => void (results.backlog = await backlog(config)));
  // (d) continues on the relay that (c) left with its connections open.
  if ((want('c') && parleyRuns) || want('d')) {
    await attempt('(c)/(d) parley', async () => {
      const parley = await connections('parley', config, { fixed: want('c') && parleyRuns, many: want('d') });
      results.fixed.parley = parley.fixed;
      results.many = parley.many;
    });
  }
  if (want('c') && baselineRuns) await attempt('(c) baseline', async () => void (results.fixed.baseline = (await connections('baseline', config, { fixed: true, many: false })).fixed));
} finally {
  cleanUp();
}

console.log(`\nParley relay benchmark (${config.quick ? 'quick' : 'full'}, ${((Date.now() - started) / 1000).toFixed(0)} s)\n`);
console.log(report(results, config));
console.log(relayFingerprint());

if (want('s')) {
  log('store: the SQLite store alone, in (a)\'s pattern');
  console.log(`\n${formatStoreLoop(await storeLoop(config.quick ? 200_000 : 1_000_000))}`);
}

if (want('k')) {
  log('cluster: one SQLite node against one, two and three Redis nodes, at the same load and at the same load per node');
  const options = { clients: 200, rate: 1500, seconds: config.quick ? 4 : 8, warmupSeconds: 2, bodyBytes: 200, rounds: config.quick ? 1 : 3 };
  console.log(`\n${formatResults(await runClusterBench(options), options)}`);
}

if (want('w')) {
  log('window: the built renderer in Chromium with a 100,000-message conversation, then a sidebar of 2,000 and 10,000 people');
  // Its own process: it is type-checked with the DOM (.config/tsconfig.e2e.json), unlike this file.
  spawnSync(process.execPath, [...process.execArgv, join(import.meta.dirname, 'window.ts')], { stdio: 'inherit' });
}

if (want('h')) {
  log('history: seeding and measuring (this takes a while for 1,000,000 messages)');
  const figures = await benchHistory({ messages: config.quick ? 100_000 : 1_000_000, peers: 50, backlog: config.quick ? 5_000 : 20_000, log });
  console.log(`\n${printHistory(figures)}`);
}
