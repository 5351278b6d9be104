// LAN discovery over mDNS: a hosted relay is advertised as a `_parley._tcp` service whose
// TXT record carries its relay id, protocol version, whether it needs an access code, and its
// name. The service's own name is `parley-<relay id>`: unique (two people may share a name,
// and the second advertisement of a name is withdrawn), and within a DNS label's 63 bytes
// (a longer one made the packets unreadable), with no dots (a label cannot hold them).
// What the network says is untrusted: parsed, capped, and only ever shown as text.
import type { EventEmitter } from 'node:events';
import { Bonjour, type Service, type ServiceConfig } from 'bonjour-service';
import { z } from 'zod';
import type { DiscoveredRelay } from '../../preload/contract.ts';
import type { Advertise } from './host.ts';

export const SERVICE_TYPE = 'parley';

const TxtSchema = z.object({
  id: z.string().regex(/^[a-z2-7]{26}$/),
  v: z.coerce.number().int().min(1).max(1000),
  code: z.enum(['0', '1']),
  n: z.string().optional(),
});

export function relayFromService(service: Pick<Service, 'name' | 'port' | 'addresses' | 'txt' | 'referer'>): DiscoveredRelay | null {
  const txt = TxtSchema.safeParse(service.txt);
  if (!txt.success || !Number.isInteger(service.port) || service.port < 1 || service.port > 65535) return null;
  const ipv4 = (service.addresses ?? []).find((a) => /^\d{1,3}(\.\d{1,3}){3}$/.test(a)) ?? service.referer?.address;
  if (!ipv4) return null;
  // A name in the TXT record; an advertisement without one (an older Parley) is named by its service name.
  const name = txt.data.n ?? String(service.name);
  return { relayId: txt.data.id, name: name.slice(0, 80), address: `${ipv4}:${service.port}`, accessCode: txt.data.code === '1', protocol: txt.data.v };
}

export interface Discovery {
  advertise: Advertise;
  /** Calls `onChange` with the current list whenever a relay appears, changes or leaves. */
  browse(onChange: (relays: DiscoveredRelay[]) => void): () => void;
  close(): Promise<void>;
}

/** How often a browser re-queries (ms), and how many of its queries in a row a relay may leave unanswered before it is dropped. */
export interface BrowseTiming {
  refreshMs: number;
  missed: number;
}

// A relay that stops answering (crashed, killed, asleep, unplugged: no goodbye is sent) goes within
// 70 s of its last answer, well within the 120 s TTL bonjour-service gives the SRV and A records that
// carry its port and address; a live one would have to lose six answers in a row to drop out.
const TIMING: BrowseTiming = { refreshMs: 10_000, missed: 6 };

interface Packet {
  answers: { type: string; name: string; ttl?: number; data?: unknown }[];
  additionals: Packet['answers'];
}

/** `mdns` options go to multicast-dns (e.g. `{ interface: '127.0.0.1' }` in a test namespace); `timing` is shorter in tests. */
export function createDiscovery(mdns: { interface?: string; loopback?: boolean } = {}, onError: (error: Error) => void = () => undefined, timing: Partial<BrowseTiming> = {}): Discovery {
  const { refreshMs, missed } = { ...TIMING, ...timing };
  // bonjour-service hands these options to multicast-dns, though its typings say otherwise; its
  // default error callback throws, which would take the app down on a machine without multicast.
  // Each kind of failure once: a socket that cannot bind fails again at every query.
  const told = new Set<string>();
  const tell = (error: Error) => {
    if (told.has(error.message)) return;
    told.add(error.message);
    onError(error);
  };
  const bonjour = new Bonjour(mdns as unknown as Partial<ServiceConfig>, tell);
  // Nor does it listen to multicast-dns's own 'error' (UDP 5353 held by another responder that
  // does not share it), which would then throw: onlxltd/bonjour-service#91, fixed after 1.4.4.
  // Its socket binds on a later tick, so a listener added now hears it.
  const socketEvents = (bonjour as unknown as { server?: { mdns?: Partial<EventEmitter> } }).server?.mdns;
  socketEvents?.on?.('error', tell);
  return {
    advertise({ name, port, relayId, accessCode }) {
      // A TXT string holds 255 bytes: "n=" and a relay name (a display name of at most 64 characters, and "'s Parley") fit.
      const service = bonjour.publish({ name: `parley-${relayId}`, type: SERVICE_TYPE, port, txt: { id: relayId, v: '1', code: accessCode ? '1' : '0', n: name } });
      return { stop: () => new Promise<void>((resolve) => service.stop?.(() => resolve())) };
    },
    browse(onChange) {
      const browser = bonjour.find({ type: SERVICE_TYPE });
      const report = () => {
        const relays = new Map<string, DiscoveredRelay>();
        for (const service of browser.services) {
          const relay = relayFromService(service);
          if (relay) relays.set(relay.relayId, relay);
        }
        onChange([...relays.values()].sort((a, b) => a.name.localeCompare(b.name)));
      };
      // bonjour-service lists a service until it says goodbye, and its expire() cannot help: it counts
      // the PTR record's TTL (8 hours) from when the service was first seen or last changed, as an
      // unchanged answer does not refresh `lastSeen`. So each relay's last answer is noted (by the
      // number of re-queries sent by then), and before each re-query those that left the last
      // `missed` unanswered are dropped (as a goodbye does; an answer lists them again). Counted in
      // queries, not time: neither a wall clock stepped back nor this machine's sleep drops a live relay.
      let queries = 0;
      const answered = new Map<string, number>();
      const listed = (fqdn: string) => browser.services.some((s) => s.fqdn.toLowerCase() === fqdn);
      browser.on('up', (service: Service) => {
        answered.set(service.fqdn.toLowerCase(), queries);
        report();
      });
      browser.on('down', (service: Service) => {
        answered.delete(service.fqdn.toLowerCase());
        report();
      });
      browser.on('txt-update', report);
      // Back on another port, as after a restart that followed a crash.
      browser.on('srv-update', report);
      const type = `_${SERVICE_TYPE}._tcp.local`;
      const heard = (packet: Packet) => {
        for (const record of [...packet.answers, ...packet.additionals]) {
          if (record.type !== 'PTR' || !record.ttl || record.name.toLowerCase() !== type || typeof record.data !== 'string') continue;
          const fqdn = record.data.toLowerCase();
          if (listed(fqdn)) answered.set(fqdn, queries);
        }
      };
      socketEvents?.on?.('response', heard);
      const drop = (browser as unknown as { removeService: (fqdn: string) => void }).removeService.bind(browser);
      const refresh = setInterval(() => {
        for (const service of [...browser.services]) {
          const fqdn = service.fqdn.toLowerCase();
          if (queries - (answered.get(fqdn) ?? queries) < missed) continue;
          answered.delete(fqdn);
          drop(service.fqdn);
        }
        queries += 1;
        browser.update();
      }, refreshMs);
      refresh.unref();
      return () => {
        clearInterval(refresh);
        socketEvents?.off?.('response', heard);
        browser.stop();
      };
    },
    close: () => new Promise<void>((resolve) => bonjour.unpublishAll(() => bonjour.destroy(() => resolve()))),
  };
}
