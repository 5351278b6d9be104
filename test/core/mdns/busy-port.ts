// Runs inside a private network namespace (see discovery.test.ts): another responder holds UDP
// 5353 without sharing it, then discovery starts as main/index.ts starts it, browses, advertises
// and closes. Prints each error it is told of as a JSON line, then {"done":true}.
import { createSocket } from 'node:dgram';
import { createDiscovery } from '../../../main/core/discovery.ts';

const say = (line: object) => process.stdout.write(`${JSON.stringify(line)}\n`);
const holder = createSocket({ type: 'udp4', reuseAddr: false });
await new Promise<void>((resolve) => holder.bind(5353, '0.0.0.0', resolve));
const discovery = createDiscovery({}, (error) => say({ error: error.message }));
const stopBrowsing = discovery.browse((relays) => say({ relays }));
const ad = discovery.advertise({ name: 'Busy', port: 47800, relayId: 'abcdefghijklmnopqrstuvwxyz', accessCode: false });
await new Promise((resolve) => setTimeout(resolve, 500));
stopBrowsing();
// Stopping and closing still work (the app closes discovery when it quits).
await ad.stop();
await discovery.close();
holder.close();
say({ done: true });
