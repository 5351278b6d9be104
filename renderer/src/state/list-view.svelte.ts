// Where a conversation's virtualized list is scrolled, kept per conversation so switching
// back returns to the same place. The scroll position is derived from an anchor (a message
// and the distance from its top), so prepending older pages or measuring rows above the
// viewport never moves what the person is reading; the DOM's scrollTop follows `top`.
import type { Message } from '../../../preload/contract.ts';
import { HeightLayout } from '../lib/layout.ts';
import { lowerBound } from '../lib/messages.ts';

/** Rows rendered above and below the viewport. */
const OVERSCAN_PX = 600;
/** Used until the window has a size (e.g. in a DOM without layout). */
const FALLBACK_VIEWPORT = 600;
/** Closer than this to the bottom counts as "at the bottom" and follows new messages. */
const STICK_PX = 24;

export interface Anchor {
  n: number;
  /** scrollTop minus the top of the anchor row. */
  delta: number;
}

export interface Range {
  start: number;
  end: number;
  /** Rows actually inside the viewport (for read receipts). */
  firstVisible: number;
  lastVisible: number;
}

/** A guess until a row is measured: bubbles grow with their text. */
export function estimateHeight(message: Message): number {
  const lines = message.text.split('\n').reduce((sum, line) => sum + Math.max(1, Math.ceil(line.length / 70)), 0);
  return 30 + Math.min(lines, 40) * 20;
}

export class ListView {
  anchor = $state<Anchor | null>(null);
  /** Following the newest message. */
  stuck = $state(true);
  viewport = $state(0);
  /** Bumped when a measured height changes the layout in place. */
  private version = $state(0);
  /** Bumped when every measurement is stale (the width changed). */
  private generation = $state(0);
  // Deliberately not reactive: measurements change the layout in place and bump `version`.
  // eslint-disable-next-line svelte/prefer-svelte-reactivity
  private readonly heights = new Map<number, number>();
  private width = 0;

  constructor(private readonly messages: () => readonly Message[]) {}

  readonly layout = $derived.by(() => {
    void this.generation;
    const heights = this.heights;
    return new HeightLayout(this.messages().map((m) => heights.get(m.n) ?? estimateHeight(m)));
  });

  private readonly view = $derived(this.viewport > 0 ? this.viewport : FALLBACK_VIEWPORT);

  readonly total = $derived.by(() => {
    void this.version;
    return this.layout.total;
  });

  /** Where the list should be scrolled to. */
  readonly top = $derived.by(() => {
    void this.version;
    const layout = this.layout;
    const max = Math.max(0, layout.total - this.view);
    if (this.stuck || !this.anchor) return max;
    const index = Math.min(lowerBound(this.messages(), this.anchor.n), layout.count - 1);
    return Math.min(max, Math.max(0, layout.offsetOf(index) + this.anchor.delta));
  });

  readonly range = $derived.by((): Range => {
    void this.version;
    const layout = this.layout;
    if (layout.count === 0) return { start: 0, end: 0, firstVisible: 0, lastVisible: -1 };
    const top = this.top;
    const firstVisible = layout.indexAt(top);
    const lastVisible = layout.indexAt(top + this.view - 1);
    return {
      start: layout.indexAt(top - OVERSCAN_PX),
      end: Math.min(layout.count, layout.indexAt(top + this.view + OVERSCAN_PX) + 1),
      firstVisible,
      lastVisible,
    };
  });

  /** Offset of the first rendered row. */
  readonly offset = $derived.by(() => {
    void this.version;
    return this.layout.offsetOf(this.range.start);
  });

  /** The newest incoming message a person can see right now. */
  readonly newestVisibleIncoming = $derived.by((): number | null => {
    const { firstVisible, lastVisible } = this.range;
    const messages = this.messages();
    for (let i = lastVisible; i >= firstVisible; i--) {
      const m = messages[i];
      if (m?.direction === 'in') return m.n;
    }
    return null;
  });

  /** The person scrolled (or the DOM followed `top`). */
  scrolled(scrollTop: number): void {
    const layout = this.layout;
    const max = Math.max(0, layout.total - this.view);
    this.stuck = scrollTop >= max - STICK_PX;
    const index = layout.indexAt(scrollTop);
    const m = this.messages()[index];
    this.anchor = m ? { n: m.n, delta: scrollTop - layout.offsetOf(index) } : null;
  }

  resized(width: number, height: number): void {
    this.viewport = height;
    if (this.width !== 0 && Math.abs(width - this.width) > 1) {
      this.heights.clear();
      this.generation++;
    }
    this.width = width;
  }

  measured(n: number, height: number): void {
    if (height <= 0 || this.heights.get(n) === height) return;
    this.heights.set(n, height);
    const index = lowerBound(this.messages(), n);
    if (this.messages()[index]?.n !== n) return;
    if (this.layout.set(index, height) !== 0) this.version++;
  }

  /** Show message `n` a little below the top of the viewport. */
  reveal(n: number): void {
    this.anchor = { n, delta: -Math.round(this.view / 4) };
    this.stuck = false;
  }

  follow(): void {
    this.stuck = true;
  }

  /** Pixels between the viewport's bottom and the end of the list. */
  distanceToEnd(scrollTop: number): number {
    return this.total - scrollTop - this.view;
  }
}
