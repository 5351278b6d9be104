// The renderer as it ships: out/renderer from `electron-vite build`, rebuilt only when a
// source it is made from is newer than the build.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '../..');
export const RENDERER_OUT = join(ROOT, 'out/renderer');

/** What the renderer bundle is made of. */
const SOURCES = ['renderer', 'preload/contract.ts', 'electron.vite.config.ts', 'package.json', 'package-lock.json'];

function newestMtime(path: string): number {
  if (!existsSync(path)) return 0;
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = stat.mtimeMs;
  for (const entry of readdirSync(path, { recursive: true, encoding: 'utf8' })) newest = Math.max(newest, statSync(join(path, entry)).mtimeMs);
  return newest;
}

export function rendererIsFresh(): boolean {
  const built = join(RENDERER_OUT, 'index.html');
  if (!existsSync(built)) return false;
  const builtAt = statSync(built).mtimeMs;
  return SOURCES.every((source) => newestMtime(join(ROOT, source)) <= builtAt);
}

/** Builds the app with electron-vite unless out/renderer is already newer than its sources. */
export function ensureRendererBuilt(log: (line: string) => void = () => {}): void {
  if (rendererIsFresh()) return;
  const started = Date.now();
  const build = spawnSync(join(ROOT, 'node_modules/.bin/electron-vite'), ['build'], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, ELECTRON_SKIP_BINARY_DOWNLOAD: '1' } });
  if (build.status !== 0) throw new Error(`electron-vite build failed (${build.status ?? build.signal}):\n${build.stdout}\n${build.stderr}`);
  log(`built the renderer in ${Date.now() - started} ms`);
}
