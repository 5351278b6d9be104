// The window's keyboard shortcuts: Ctrl on Windows and Linux, Cmd on macOS.
export type Shortcut = 'jump' | 'search' | 'settings' | 'previous' | 'next';

export function shortcutFor(event: Pick<KeyboardEvent, 'key' | 'ctrlKey' | 'metaKey' | 'altKey' | 'shiftKey'>): Shortcut | null {
  const mod = event.ctrlKey || event.metaKey;
  if (mod && !event.altKey && !event.shiftKey) {
    switch (event.key.toLowerCase()) {
      case 'k':
        return 'jump';
      case 'f':
        return 'search';
      case ',':
        return 'settings';
      default:
        return null;
    }
  }
  if (event.altKey && !mod) {
    if (event.key === 'ArrowUp') return 'previous';
    if (event.key === 'ArrowDown') return 'next';
  }
  return null;
}
