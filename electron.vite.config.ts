import { resolve } from 'node:path';
import { defineConfig } from 'electron-vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';
import type { Plugin } from 'vite';
import { CSP, DEV_CSP } from './main/window.ts';

const root = import.meta.dirname;

/** `npm run dev` only: the page's policy as the dev server needs it (main/window.ts DEV_CSP). */
const devCsp: Plugin = {
  name: 'parley-dev-csp',
  apply: 'serve',
  transformIndexHtml: (html) => html.replace(`content="${CSP}"`, `content="${DEV_CSP}"`),
};

export default defineConfig({
  main: {
    build: {
      outDir: resolve(root, 'out/main'),
      rollupOptions: { input: { index: resolve(root, 'main/index.ts') } },
    },
  },
  preload: {
    // One CommonJS file with nothing external: a sandboxed preload can only require 'electron'.
    build: {
      outDir: resolve(root, 'out/preload'),
      externalizeDeps: false,
      rollupOptions: {
        input: { index: resolve(root, 'preload/index.ts') },
        output: { format: 'cjs', entryFileNames: '[name].cjs' },
      },
    },
  },
  renderer: {
    root: resolve(root, 'renderer'),
    plugins: [svelte(), devCsp],
    build: {
      outDir: resolve(root, 'out/renderer'),
      rollupOptions: { input: { index: resolve(root, 'renderer/index.html') } },
    },
  },
});
