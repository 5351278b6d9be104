// The one AppState, shared with every component by context (set once in App.svelte).
import { getContext, setContext } from 'svelte';
import type { AppState } from './state/app.svelte.ts';

const APP = Symbol('parley.app');

export function provideApp(app: AppState): void {
  setContext(APP, app);
}

export function useApp(): AppState {
  const app = getContext<AppState | undefined>(APP);
  if (!app) throw new Error('useApp() outside the Parley window');
  return app;
}
