import { resolve } from 'node:path';
import { defineConfig } from 'vitest/config';
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { svelteTesting } from '@testing-library/svelte/vite';

const root = resolve(import.meta.dirname, '..');

export default defineConfig({
  root,
  test: {
    reporters: ['default'],
    projects: [
      {
        root,
        test: {
          name: 'node',
          include: ['test/**/*.test.ts'],
          exclude: ['test/renderer/**', 'test/e2e/**', '**/node_modules/**'],
          // Tests start real servers and child processes; forks isolate them cleanly.
          pool: 'forks',
          // Runs before e2e. (Explicit: with the default 0 and one worker, as on a 2-core
          // machine, Vitest would queue these files after every numbered group.)
          sequence: { groupOrder: 1 },
          testTimeout: 30_000,
          hookTimeout: 30_000,
        },
      },
      {
        root,
        // The window's components and state, in a DOM with Svelte's browser build.
        plugins: [svelte({ configFile: false }), svelteTesting()],
        test: {
          name: 'renderer',
          include: ['test/renderer/**/*.test.ts'],
          environment: 'jsdom',
          setupFiles: ['test/renderer/setup.ts'],
          sequence: { groupOrder: 1 },
          testTimeout: 15_000,
        },
      },
      {
        root,
        // The shipped renderer (out/renderer, built once by the global setup) in Debian's
        // Chromium, each person a page over a real messenger core (test/e2e/bridge.ts).
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          globalSetup: ['test/e2e/global-setup.ts'],
          pool: 'forks',
          // One file at a time, after the other projects: a browser and several cores
          // already keep two cores busy.
          fileParallelism: false,
          sequence: { groupOrder: 2 },
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
