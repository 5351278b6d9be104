// Once per e2e run, before any test file: the shipped renderer, built if out of date.
import { ensureRendererBuilt } from './build.ts';

export default function setup(): void {
  ensureRendererBuilt((line) => console.log(`[e2e] ${line}`));
}
