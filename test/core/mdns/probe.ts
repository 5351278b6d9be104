// Runs inside a private network namespace (see discovery.test.ts): hosts a relay advertised
// over mDNS, browses for it with a second mDNS socket, and prints what was seen as JSON lines.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDiscovery } from '../../../main/core/discovery.ts';
import { createHost } from '../../../main/core/host.ts';

const say = (line: object) => process.stdout.write(`${JSON.stringify(line)}\n`);
const advertiser = createDiscovery({}, (e) => say({ error: String(e) }));
const browser = createDiscovery({}, (e) => say({ error: String(e) }));
// Two people of the same name host: a long one (over a DNS label's 63 bytes in UTF-8), with dots.
const hosts = [0, 1].map(() => createHost({ dataDir: mkdtempSync(join(tmpdir(), 'parley-mdns-')), host: '127.0.0.1', advertise: advertiser.advertise }));

let phase: 'up' | 'down' = 'up';
const stopBrowsing = browser.browse((relays) => {
  say({ phase, relays });
  if (phase === 'up' && relays.length === hosts.length) {
    phase = 'down';
    for (const host of hosts) void host.stop();
  } else if (phase === 'down' && relays.length === 0) {
    stopBrowsing();
    void Promise.all([advertiser.close(), browser.close()]).then(() => process.exit(0));
  }
});
for (const host of hosts) say({ started: await host.start({ port: 0, open: false, relayName: "Д-р. Е. Смирнова-Васильевна <b>Lab</b>'s Parley" }) });
setTimeout(() => {
  say({ timeout: true });
  process.exit(2);
}, 15_000).unref();
