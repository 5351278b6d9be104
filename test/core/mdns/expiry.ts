// Runs inside a private network namespace (see discovery.test.ts). With arguments
// `<relay id> <port>` it advertises that relay until killed, as a colleague's app does. Without,
// it browses while two such advertisers run, kills one with SIGKILL (so no goodbye is sent),
// steps its own wall clock back while the other stays listed, and later kills the other and
// starts it again on another port; prints what it saw as JSON lines.
import { spawn, type ChildProcess } from 'node:child_process';
import { createDiscovery } from '../../../main/core/discovery.ts';
import type { DiscoveredRelay } from '../../../preload/contract.ts';

const say = (line: object) => process.stdout.write(`${JSON.stringify(line)}\n`);

if (process.argv[2]) {
  const [relayId, port] = [process.argv[2], Number(process.argv[3])];
  createDiscovery({}, (e) => say({ error: String(e) })).advertise({ name: relayId, port, relayId, accessCode: false });
  setInterval(() => undefined, 60_000);
} else {
  const [dead, live] = ['aaaaaaaaaaaaaaaaaaaaaaaaaa', 'bbbbbbbbbbbbbbbbbbbbbbbbbb'];
  const children: ChildProcess[] = [];
  const advertise = (relayId: string, port: number): ChildProcess => {
    const child = spawn(process.execPath, [...process.execArgv, import.meta.filename, relayId, String(port)], { stdio: ['ignore', 'inherit', 'inherit'] });
    children.push(child);
    return child;
  };
  // None outlives this (they share its output, which the test reads to the end).
  process.on('exit', () => children.forEach((child) => child.kill('SIGKILL')));
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  // Short timing so that this runs in seconds: re-query every 300 ms, drop after 5 unanswered.
  const timing = { refreshMs: 300, missed: 5 };
  const browser = createDiscovery({}, (e) => say({ error: String(e) }), timing);
  // With the production timing, for the relay coming back on another port before anything could expire.
  const slow = createDiscovery({}, (e) => say({ error: String(e) }));
  let relays: DiscoveredRelay[] = [];
  let slowRelays: DiscoveredRelay[] = [];
  let liveLeft = false;
  let watchLive = false;
  const changed: (() => void)[] = [];
  browser.browse((list) => {
    relays = list;
    if (watchLive && !list.some((r) => r.relayId === live)) liveLeft = true;
    for (const check of [...changed]) check();
  });
  slow.browse((list) => {
    slowRelays = list;
    for (const check of [...changed]) check();
  });
  // Milliseconds until `done` holds (checked at every change), or null after `ms`.
  const until = (done: () => boolean, ms: number) =>
    new Promise<number | null>((resolve) => {
      const start = Date.now();
      const check = () => {
        if (!done()) return;
        changed.splice(changed.indexOf(check), 1);
        clearTimeout(timer);
        resolve(Date.now() - start);
      };
      const timer = setTimeout(() => {
        changed.splice(changed.indexOf(check), 1);
        resolve(null);
      }, ms);
      changed.push(check);
      check();
    });
  const listed = (list: DiscoveredRelay[]) => list.map((r) => `${r.relayId}@${r.address}`).sort();

  const deadChild = advertise(dead, 41001);
  const liveChild = advertise(live, 41002);
  say({ bothUp: await until(() => relays.length === 2 && slowRelays.length === 2, 10_000), listed: listed(relays) });
  watchLive = true;
  deadChild.kill('SIGKILL');
  say({ killedGoneAfter: await until(() => !relays.some((r) => r.relayId === dead), 6_000), listed: listed(relays) });
  // The live relay stays, over several times the span after which a silent one is dropped, and
  // with this machine's wall clock stepped back an hour meanwhile (NTP, a VM resumed).
  const realNow = Date.now.bind(Date);
  Date.now = () => realNow() - 3_600_000;
  await sleep(5_000);
  Date.now = realNow;
  say({ liveLeft, listed: listed(relays) });
  watchLive = false;

  liveChild.kill('SIGKILL');
  advertise(live, 41003);
  say({ newPortAfter: await until(() => slowRelays.some((r) => r.address === '127.0.0.1:41003'), 6_000), slowListed: listed(slowRelays) });
  process.exit(0);
}
