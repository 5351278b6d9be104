// Relays to join: those found on the LAN right now and those joined before.
import type { DiscoveredRelay, ParleyApi, RememberedRelay } from '../../../preload/contract.ts';
import { settle } from '../lib/errors.ts';

export class RelaysState {
  found = $state.raw<readonly DiscoveredRelay[]>([]);
  remembered = $state.raw<readonly RememberedRelay[]>([]);

  constructor(private readonly api: ParleyApi) {}

  async refresh(): Promise<void> {
    const [found, remembered] = await Promise.all([settle(this.api.foundRelays()), settle(this.api.rememberedRelays())]);
    if (found.ok) this.found = found.value;
    if (remembered.ok) this.remembered = [...remembered.value].sort((a, b) => b.lastUsed - a.lastUsed);
  }

  discovered(relays: readonly DiscoveredRelay[]): void {
    this.found = relays;
  }

  /** A remembered relay by address, to show a friendly name. */
  nameOf(address: string): string | undefined {
    return this.remembered.find((r) => r.address === address)?.name ?? this.found.find((r) => r.address === address)?.name;
  }
}
