// Where a conversation's virtualized list is scrolled, kept per conversation so switching
// back returns to the same place. The scroll position is derived from an anchor (a message
// and the distance from its top), so prepending older pages or measuring rows above the
// viewport never moves what the person is reading; the DOM's scrollTop follows `top`.
//
// Everything here is arithmetic over a HeightLayout (measured heights where rows have been
// on screen, estimates elsewhere): nothing reads the DOM, so deciding what to render never
// forces a layout. Which rows are rendered (`start`, `end`) and where they go (`offset`) are
// separate numbers, so a scroll that stays within the rendered rows changes nothing else.
import type { Message } from '../../../preload/contract.ts';
import { HeightLayout } from '../lib/layout.ts';
import { continues, lowerBound, startsDay } from '../lib/messages.ts';

/**
 * Rows rendered above and below the viewport once the window is idle, so that a scroll
 * shows rows that already exist...
 */
export const OVERSCAN_PX = 480;
/**
 * ...and right after opening or a jump: a frame that has to show new rows renders those and
 * little else. The rest follows, a few rows at a time, when the window is idle (`grow`).
 */
export const MIN_OVERSCAN_PX = 60;
/** How much each idle moment adds to the overscan, so that no one of them takes long. */
const GROW_STEP_PX = 140;
/** Used until the window has a size (e.g. in a DOM without layout). */
const FALLBACK_VIEWPORT = 600;
/** Closer than this to the bottom counts as "at the bottom" and follows new messages. */
const STICK_PX = 24;
/** A measured height this close to the layout's is not worth moving rows for. */
const SUBPIXEL = 0.5;
/** Until the list has a width: about what fits on a line of a bubble in the default window. */
const DEFAULT_CHARS_PER_LINE = 73;

export interface Anchor {
  n: number;
  /** scrollTop minus the top of the anchor row. */
  delta: number;
}

/** Text line height (base.css: 14 px × 1.45). */
const LINE_PX = 20.3;
/** Characters the time and state take at the end of a bubble's last line. */
const META_CHARS = 8;

/**
 * A guess until a row is measured, from what messages.css makes of it: the gap above (8 px,
 * 2 px when it continues the previous message, plus a day separator when the day changes),
 * the bubble's padding, and its lines of text. The closer the guess, the less the list
 * shifts when the row is measured.
 */
export function estimateHeight(message: Message, previous?: Message, charsPerLine = DEFAULT_CHARS_PER_LINE): number {
  let lines = 0;
  let from = 0;
  const text = message.text;
  for (;;) {
    const at = text.indexOf('\n', from);
    const last = at < 0;
    const length = (last ? text.length + META_CHARS : at) - from;
    lines += Math.max(1, Math.ceil(length / charsPerLine));
    if (last || lines >= 40) break;
    from = at + 1;
  }
  let height = 13 + Math.min(lines, 40) * LINE_PX;
  height += continues(previous, message) ? 2 : 8;
  if (startsDay(previous, message)) height += 39;
  if (message.state === 'failed') height += 21;
  return height;
}

/**
 * About how many characters fit on a line of a bubble in a list this wide (messages.css:
 * 18 px row padding each side, bubbles up to 72% or 640 px with 12 px padding each side,
 * 14 px text at about 7.2 px a character).
 */
function charsPerLine(width: number): number {
  const text = Math.min(0.72 * (width - 36), 640) - 24;
  return Math.max(10, Math.floor(text / 7.2));
}

export class ListView {
  anchor = $state<Anchor | null>(null);
  /** Following the newest message. */
  stuck = $state(true);
  viewport = $state(0);
  /** Pixels rendered beyond each edge of the viewport, between MIN_OVERSCAN_PX and OVERSCAN_PX. */
  reach = $state(MIN_OVERSCAN_PX);
  /** Bumped when a measured height changes the layout in place. */
  private version = $state(0);
  /** Bumped when every measurement is stale (the width changed). */
  private generation = $state(0);
  // Deliberately not reactive: measurements change the layout in place and bump `version`.
  // eslint-disable-next-line svelte/prefer-svelte-reactivity
  private readonly heights = new Map<number, number>();
  private width = 0;
  private perLine = DEFAULT_CHARS_PER_LINE;

  constructor(private readonly messages: () => readonly Message[]) {}

  readonly layout = $derived.by(() => {
    void this.generation;
    const heights = this.heights;
    const perLine = this.perLine;
    const messages = this.messages();
    const sizes = new Float64Array(messages.length);
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i] as Message;
      sizes[i] = heights.get(m.n) ?? estimateHeight(m, messages[i - 1], perLine);
    }
    return new HeightLayout(sizes);
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

  /** First rendered row (index into the messages). */
  readonly start = $derived.by(() => {
    void this.version;
    return this.layout.indexAt(this.top - this.reach);
  });

  /** One past the last rendered row. */
  readonly end = $derived.by(() => {
    void this.version;
    const layout = this.layout;
    return layout.count === 0 ? 0 : Math.min(layout.count, layout.indexAt(this.top + this.view + this.reach) + 1);
  });

  readonly firstVisible = $derived.by(() => {
    void this.version;
    return this.layout.indexAt(this.top);
  });

  readonly lastVisible = $derived.by(() => {
    void this.version;
    const layout = this.layout;
    return layout.count === 0 ? -1 : layout.indexAt(this.top + this.view - 1);
  });

  /** Offset of the first rendered row. */
  readonly offset = $derived.by(() => {
    void this.version;
    return this.layout.offsetOf(this.start);
  });

  /** The newest incoming message a person can see right now. */
  readonly newestVisibleIncoming = $derived.by((): number | null => {
    const first = this.firstVisible;
    const messages = this.messages();
    for (let i = this.lastVisible; i >= first; i--) {
      const m = messages[i];
      if (m?.direction === 'in') return m.n;
    }
    return null;
  });

  /** The person scrolled (or the DOM followed `top`). */
  scrolled(scrollTop: number): void {
    // Further than the rows rendered beyond the edge: most of them are of no use now, and the
    // next frame has a viewport of new rows to render. Render just those until idle again.
    if (Math.abs(scrollTop - this.top) > this.reach) this.reach = MIN_OVERSCAN_PX;
    const layout = this.layout;
    const max = Math.max(0, layout.total - this.view);
    this.stuck = scrollTop >= max - STICK_PX;
    const index = layout.indexAt(scrollTop);
    const m = this.messages()[index];
    const delta = scrollTop - layout.offsetOf(index);
    if (m && this.anchor?.n === m.n && this.anchor.delta === delta) return;
    this.anchor = m ? { n: m.n, delta } : null;
  }

  resized(width: number, height: number): void {
    this.viewport = height;
    if (this.width !== 0 && Math.abs(width - this.width) > 1) {
      this.heights.clear();
      this.perLine = charsPerLine(width);
      this.generation++;
    } else if (this.width === 0 && width > 0 && charsPerLine(width) !== this.perLine) {
      // The first size: estimates from now on fit this width (measured rows keep theirs).
      this.perLine = charsPerLine(width);
      this.generation++;
    }
    this.width = width;
  }

  /**
   * Rows' rendered heights, as a ResizeObserver reports them: one layout update for all, and
   * none when every estimate was right to within a fraction of a pixel (the exact heights
   * are kept for the next time the layout is built).
   */
  measuredAll(sizes: Iterable<readonly [n: number, height: number]>): void {
    const messages = this.messages();
    const layout = this.layout;
    let changed = false;
    for (const [n, height] of sizes) {
      if (!(height > 0) || this.heights.get(n) === height) continue;
      this.heights.set(n, height);
      const index = lowerBound(messages, n);
      if (messages[index]?.n !== n || Math.abs(layout.heightOf(index) - height) < SUBPIXEL) continue;
      layout.set(index, height);
      changed = true;
    }
    if (changed) this.version++;
  }

  measured(n: number, height: number): void {
    this.measuredAll([[n, height]]);
  }

  /**
   * The list is about to show a different place (opening the conversation, a jump): its
   * next frame renders what is on screen there, and little else.
   */
  shown(): void {
    this.reach = MIN_OVERSCAN_PX;
  }

  /** The window is idle: render more of the overscan (a few rows each side at a time), ready for the next scroll. */
  grow(): void {
    this.reach = Math.min(OVERSCAN_PX, this.reach + GROW_STEP_PX);
  }

  /** Show message `n` a little below the top of the viewport. */
  reveal(n: number): void {
    this.anchor = { n, delta: -Math.round(this.view / 4) };
    this.stuck = false;
    this.shown();
  }

  follow(): void {
    if (!this.stuck) this.shown();
    this.stuck = true;
  }

  /** Pixels between the viewport's bottom and the end of the list. */
  distanceToEnd(scrollTop: number): number {
    return this.total - scrollTop - this.view;
  }
}
