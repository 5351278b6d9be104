// Row offsets for a virtualized list of variable-height rows. A Fenwick tree keeps both a
// height change and an offset lookup at O(log n), so 100,000 rows stay cheap; the tree is
// rebuilt (O(n)) only when rows are added or removed.
export class HeightLayout {
  readonly count: number;
  private readonly tree: Float64Array;
  private readonly heights: Float64Array;
  private sum = 0;

  constructor(heights: ArrayLike<number>) {
    this.count = heights.length;
    // A copy (the constructor's fast path for arrays; `from` goes through the iterator).
    this.heights = new Float64Array(heights);
    this.tree = new Float64Array(this.count + 1);
    for (let i = 0; i < this.count; i++) {
      const h = this.heights[i] ?? 0;
      this.sum += h;
      const at = i + 1;
      this.tree[at] = (this.tree[at] ?? 0) + h;
      const parent = at + (at & -at);
      if (parent <= this.count) this.tree[parent] = (this.tree[parent] ?? 0) + (this.tree[at] ?? 0);
    }
  }

  get total(): number {
    return this.sum;
  }

  heightOf(index: number): number {
    return this.heights[index] ?? 0;
  }

  /** Sets a row's height; returns how much it changed. */
  set(index: number, height: number): number {
    if (index < 0 || index >= this.count) return 0;
    const delta = height - (this.heights[index] ?? 0);
    if (delta === 0) return 0;
    this.heights[index] = height;
    this.sum += delta;
    for (let at = index + 1; at <= this.count; at += at & -at) this.tree[at] = (this.tree[at] ?? 0) + delta;
    return delta;
  }

  /** Distance from the top of the list to the top of row `index`. */
  offsetOf(index: number): number {
    let sum = 0;
    for (let at = Math.min(index, this.count); at > 0; at -= at & -at) sum += this.tree[at] ?? 0;
    return sum;
  }

  /** The row that contains offset `y` (clamped to the list). */
  indexAt(y: number): number {
    if (this.count === 0) return 0;
    if (y <= 0) return 0;
    let index = 0;
    let remaining = y;
    let step = 1;
    while (step * 2 <= this.count) step *= 2;
    for (; step > 0; step >>= 1) {
      const next = index + step;
      const size = this.tree[next] ?? 0;
      if (next <= this.count && size <= remaining) {
        index = next;
        remaining -= size;
      }
    }
    return Math.min(index, this.count - 1);
  }
}
