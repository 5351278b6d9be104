// Which rows of a list of rows of one height are rendered: those in the viewport and a few
// beyond each edge. Plain arithmetic, so deciding never reads the DOM. (The conversation's
// rows vary in height: state/list-view.svelte.ts does the same over measured heights.)

export interface RowGeometry {
  /** Every row's height, in px. */
  rowPx: number;
  /** Space above the first row and below the last (the list's padding), in px. */
  padTop: number;
  padBottom: number;
}

/** The rows to render, as [start, end): those showing at `scrollTop`, and `overscan` more each side. */
export function rowsInView(g: RowGeometry, count: number, scrollTop: number, viewport: number, overscan: number): { start: number; end: number } {
  // A list that just got shorter (a filter) is still scrolled further down than it can be until the next scroll event.
  const max = Math.max(0, g.padTop + count * g.rowPx + g.padBottom - viewport);
  const top = Math.min(Math.max(0, scrollTop), max) - g.padTop;
  const first = Math.floor(top / g.rowPx);
  const last = Math.ceil((top + viewport) / g.rowPx);
  return { start: Math.max(0, Math.min(count, first - overscan)), end: Math.max(0, Math.min(count, last + overscan)) };
}

/** The scroll position that shows row `index` whole, moving as little as possible from `scrollTop`. */
export function scrollToShow(g: RowGeometry, index: number, scrollTop: number, viewport: number): number {
  const top = g.padTop + index * g.rowPx;
  const bottom = top + g.rowPx;
  if (top < scrollTop) return index === 0 ? 0 : top;
  if (bottom > scrollTop + viewport) return Math.max(0, bottom - viewport);
  return scrollTop;
}
