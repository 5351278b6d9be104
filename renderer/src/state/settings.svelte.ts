// The person's settings and the theme they resolve to ('system' follows the OS).
import { MediaQuery } from 'svelte/reactivity';
import type { ParleyApi, Settings } from '../../../preload/contract.ts';
import { humanError, settle } from '../lib/errors.ts';

export const DEFAULT_SETTINGS: Settings = { notifications: true, theme: 'system', hostPort: 47800 };

export class SettingsState {
  value = $state<Settings>({ ...DEFAULT_SETTINGS });
  error = $state<string | null>(null);
  private readonly prefersDark = typeof window.matchMedia === 'function' ? new MediaQuery('(prefers-color-scheme: dark)') : null;

  readonly theme = $derived<'light' | 'dark'>(this.value.theme === 'system' ? (this.prefersDark?.current ? 'dark' : 'light') : this.value.theme);

  constructor(private readonly api: ParleyApi) {}

  loaded(settings: Settings): void {
    this.value = settings;
  }

  async update(patch: Partial<Settings>): Promise<boolean> {
    const previous = this.value;
    this.value = { ...previous, ...patch };
    const result = await settle(this.api.updateSettings(patch));
    if (result.ok) {
      this.value = result.value;
      this.error = null;
      return true;
    }
    this.value = previous;
    this.error = humanError(result.error);
    return false;
  }
}
