// Search across every conversation, debounced while the person types; only the newest
// answer is shown even when older ones arrive late.
import type { ParleyApi, SearchHit } from '../../../preload/contract.ts';
import { humanError, settle } from '../lib/errors.ts';

export const SEARCH_DEBOUNCE_MS = 200;

export class SearchState {
  query = $state('');
  results = $state.raw<readonly SearchHit[]>([]);
  pending = $state(false);
  error = $state<string | null>(null);
  /** The query the results answer (to say "no results for …"). */
  answered = $state('');
  /** The highlighted result (arrow keys move it, Enter opens it). */
  active = $state(0);
  private timer: ReturnType<typeof setTimeout> | null = null;
  private asked = 0;

  constructor(private readonly api: ParleyApi) {}

  setQuery(query: string): void {
    this.query = query;
    this.active = 0;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    if (!query.trim()) {
      this.asked++;
      this.results = [];
      this.answered = '';
      this.pending = false;
      this.error = null;
      return;
    }
    this.pending = true;
    this.timer = setTimeout(() => void this.run(query.trim()), SEARCH_DEBOUNCE_MS);
  }

  /**
   * The hit Enter opens: the highlighted one of results that answer what is typed now. Typed
   * faster than the debounce, the search runs at once and its first hit is the one.
   */
  async chosen(): Promise<SearchHit | undefined> {
    const query = this.query.trim();
    if (query && query !== this.answered) {
      if (this.timer !== null) clearTimeout(this.timer);
      this.timer = null;
      await this.run(query);
    }
    return this.answered === this.query.trim() ? this.results[this.active] : undefined;
  }

  private async run(query: string): Promise<void> {
    const ask = ++this.asked;
    const result = await settle(this.api.search({ query: query.slice(0, 200) }));
    if (ask !== this.asked) return;
    this.pending = false;
    this.answered = query;
    this.active = 0;
    if (result.ok) {
      this.results = result.value;
      this.error = null;
    } else {
      this.results = [];
      this.error = humanError(result.error);
    }
  }

  /** Messages were deleted (`upTo`: every one of `peer`'s up to it): their hits go. A search on its way answers without them. */
  removed(peer: string, match: { n: number } | { upTo: number }): void {
    const gone = (m: { peer: string; n: number }) => m.peer === peer && ('n' in match ? m.n === match.n : m.n <= match.upTo);
    if (!this.results.some((hit) => gone(hit.message))) return;
    this.results = this.results.filter((hit) => !gone(hit.message));
    this.active = Math.min(this.active, Math.max(0, this.results.length - 1));
  }

  move(by: number): void {
    const count = this.results.length;
    if (count > 0) this.active = (this.active + by + count) % count;
  }
}
