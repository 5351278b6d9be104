// The window's sidebar with thousands of people (a relay for an organisation), in Chromium:
// the built renderer over a fake window.parley (an init script) that lists them from memory
// and sends 'person' events on cue. Measures
//  - open: from the moment the people list reaches the window to the first paint of the
//    sidebar (target: at most 100 ms; this includes the window's own first render, which the
//    list is the last answer of);
//  - scroll: the longest task (PerformanceObserver 'longtask') while wheel events scroll down
//    the list for a few seconds (target: none over 50 ms);
//  - presence: 500 people coming online within a second, one 'person' event each (target: no
//    long task over 50 ms);
//  - sync: every person's row once, back to back, as main sends them after a directory sync;
//  - filter: each keystroke in "Filter people", from the key to the next paint (target: no long
//    task over 50 ms).
// Prints the figures; asserts nothing. test/bench/window.ts runs it after the conversation.
import type { Person } from '../../preload/contract.ts';
import { COMMANDS, EVENTS } from '../../preload/contract.ts';
import { openBenchPage } from './window.ts';

export interface SidebarBenchOptions {
  people?: number;
  /** How long to keep scrolling, in ms. */
  scrollMs?: number;
  /** People coming online within `burstMs`. */
  burst?: number;
  burstMs?: number;
  log?: (line: string) => void;
}

/** Long tasks (over 50 ms) in a phase, the longest (0 when there was none), and the longest gap between two animation frames. */
export interface Jank {
  longTasks: number;
  longestTaskMs: number;
  longestFrameMs: number;
}

export interface SidebarBenchResult {
  people: number;
  /** People list delivered -> first paint of the sidebar. */
  openToPaintMs: number;
  /** Rows in the DOM once the sidebar shows. */
  rows: number;
  scroll: Jank & { wheelEvents: number; scrolledPx: number };
  presence: Jank & { events: number; spreadMs: number; settledMs: number };
  sync: Jank & { events: number; settledMs: number };
  filter: Jank & { keysToPaintMs: number[] };
}

interface BenchState {
  dataAt: number | null;
  people: Person[];
  emit: ((person: Person) => void) | null;
  longTasks: { start: number; duration: number }[];
  frameGaps: number[];
  watchFrames: boolean;
  painted: Promise<number>;
  key: Promise<number> | null;
}
type BenchWindow = Window & { __sidebar: BenchState };

/** Runs in the page before the app: a window.parley that lists `count` people from memory, plus probes. */
function installFakeParley(config: { count: number; commands: Record<string, string>; events: Record<string, string> }): void {
  const FIRST = ['Ada', 'Alan', 'Grace', 'Katherine', 'Edsger', 'Barbara', 'Donald', 'Frances', 'John', 'Margaret', 'Dennis', 'Radia', 'Ken', 'Sophie', 'Tim', 'Hedy', 'Linus', 'Anita', 'Niklaus', 'Shafi', 'Leslie', 'Fran', 'Butler', 'Joan', 'Ivan', 'Mary', 'Guido', 'Yukihiro', 'Bjarne', 'Adele'];
  const LAST = ['Lovelace', 'Turing', 'Hopper', 'Johnson', 'Dijkstra', 'Liskov', 'Knuth', 'Allen', 'McCarthy', 'Hamilton', 'Ritchie', 'Perlman', 'Thompson', 'Wilson', 'Berners-Lee', 'Lamarr', 'Torvalds', 'Borg', 'Wirth', 'Goldwasser'];
  const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';
  const base = Date.UTC(2025, 0, 1, 8);
  // A user id as the contract has them: 32 base32 characters, distinct for each i.
  const idOf = (i: number): string => {
    let digits = '';
    for (let k = 0, x = i; k < 6; k++, x = Math.floor(x / 32)) digits = (BASE32[x % 32] ?? 'a') + digits;
    return `${BASE32[(i * 7) % 32]}${BASE32[(i * 13) % 32]}${'q'.repeat(24)}${digits}`;
  };
  // One in five online, two in three with messages (some unread), a few verified; names repeat as in a big organisation.
  const people: Person[] = [];
  for (let i = 0; i < config.count; i++) {
    const round = Math.floor(i / (FIRST.length * LAST.length));
    people.push({
      id: idOf(i),
      name: `${FIRST[i % FIRST.length]} ${LAST[Math.floor(i / FIRST.length) % LAST.length]}${round > 0 ? ` ${round + 1}` : ''}`,
      fingerprint: 'b110 2667 f995 9213 0fe3',
      online: i % 5 === 0,
      lastSeen: base - i * 60_000,
      unread: i % 17 === 0 ? (i % 7) + 1 : 0,
      last: i % 3 === 0 ? null : { text: `About the review of note ${i}: shall we look at it together tomorrow?`, direction: i % 2 ? 'in' : 'out', at: base - i * 37_000, flagged: false },
      verified: i % 11 === 0,
      keyChanged: false,
      nameClash: false,
      draft: null,
    });
  }
  const bench: BenchState = { dataAt: null, people, emit: null, longTasks: [], frameGaps: [], watchFrames: false, painted: Promise.resolve(0), key: null };
  // As over IPC: answered in a later task, as a copy.
  const answer = (value: unknown, onArrival?: () => void) =>
    new Promise((resolve) => setTimeout(() => {
      onArrival?.();
      resolve({ ok: true, value: structuredClone(value) });
    }, 0));
  const handlers: Record<string, () => Promise<unknown>> = {
    'app:info': () => answer({ version: 'bench', protocol: 1, platform: 'linux' }),
    'status:get': () => answer({ connection: { state: 'online', relay: '127.0.0.1:47800', relayId: 'r', relayName: 'Lab relay' }, hosting: null, sync: null }),
    'profile:get': () => answer({ userId: 'gracehopperaaaaaaaaaaaaaaaaaaaaa', name: 'Grace Hopper', fingerprint: '7483 71c9 a5d6 5b17 6dc4', secretProtection: 'file-0600' }),
    'settings:get': () => answer({ notifications: true, theme: 'light', hostPort: 47800 }),
    'people:list': () => answer(people, () => (bench.dataAt ??= performance.now())),
    'relay:remembered': () => answer([]),
    'relay:found': () => answer([]),
    'conversation:page': () => answer([]),
    'conversation:from': () => answer([]),
  };
  const api: Record<string, unknown> = {};
  for (const [method, channel] of Object.entries(config.commands)) api[method] = () => (handlers[channel] ? handlers[channel]() : answer(null));
  for (const method of Object.keys(config.events)) {
    api[method] = (listener: (payload: never) => void) => {
      if (method === 'onPerson') bench.emit = listener as (person: Person) => void;
      return () => undefined;
    };
  }
  Object.defineProperty(window, 'parley', { value: Object.freeze(api) });
  Object.defineProperty(window, '__sidebar', { value: bench });

  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) bench.longTasks.push({ start: entry.startTime, duration: entry.duration });
  }).observe({ type: 'longtask', buffered: true });
  let lastFrame = 0;
  const frame = (now: number) => {
    if (bench.watchFrames && lastFrame > 0) bench.frameGaps.push(now - lastFrame);
    lastFrame = now;
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
  // The time the first frame showing people's rows has been painted: the rAF in which rows
  // first exist runs just before that frame renders; a message posted from it is handled after.
  bench.painted = new Promise<number>((resolve) => {
    const check = () => {
      if (bench.dataAt === null || !document.querySelector('[data-testid="person"]')) return void requestAnimationFrame(check);
      const channel = new MessageChannel();
      channel.port1.onmessage = () => resolve(performance.now());
      channel.port2.postMessage(null);
    };
    requestAnimationFrame(check);
  });
}

export async function benchSidebar(options: SidebarBenchOptions = {}): Promise<SidebarBenchResult> {
  const count = options.people ?? 10_000;
  const scrollMs = options.scrollMs ?? 4000;
  const burst = Math.min(options.burst ?? 500, Math.floor(count * 0.8));
  const burstMs = options.burstMs ?? 1000;
  const { page, errors, close } = await openBenchPage(installFakeParley, { count, commands: COMMANDS, events: EVENTS }, options.log);
  try {
    const paintAt = await page.evaluate(() => (window as unknown as BenchWindow).__sidebar.painted);
    const { dataAt, rows } = await page.evaluate(() => ({ dataAt: (window as unknown as BenchWindow).__sidebar.dataAt, rows: document.querySelectorAll('[data-testid="person"]').length }));
    if (dataAt === null) throw new Error('the people list was not seen');
    await page.waitForTimeout(1000);

    /** Starts watching a phase: long tasks and frames from now on. */
    const begin = () => page.evaluate(() => {
      const bench = (window as unknown as BenchWindow).__sidebar;
      bench.frameGaps = [];
      bench.watchFrames = true;
      return performance.now();
    });
    const end = async (since: number): Promise<Jank> => {
      await page.waitForTimeout(300);
      return page.evaluate((since) => {
        const bench = (window as unknown as BenchWindow).__sidebar;
        bench.watchFrames = false;
        const tasks = bench.longTasks.filter((t) => t.start >= since);
        return { longTasks: tasks.length, longestTaskMs: Math.max(0, ...tasks.map((t) => t.duration)), longestFrameMs: Math.max(0, ...bench.frameGaps) };
      }, since);
    };

    // Scroll: one wheel event per frame (16 ms), down the list.
    const list = page.getByTestId('people-list');
    const box = await list.boundingBox();
    if (!box) throw new Error('the sidebar has no people list');
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    let since = await begin();
    const wheels: Promise<void>[] = [];
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        wheels.push(page.mouse.wheel(0, 400));
        if (wheels.length * 16 >= scrollMs) {
          clearInterval(timer);
          resolve();
        }
      }, 16);
    });
    await Promise.all(wheels);
    const scrollJank = await end(since);
    const scrolledPx = await list.evaluate((node) => node.scrollTop);

    // Presence: `burst` people who were offline come online, spread over `burstMs`, an event (a task) each.
    since = await begin();
    const presence = await page.evaluate(async ({ burst, burstMs }) => {
      const bench = (window as unknown as BenchWindow).__sidebar;
      const coming = bench.people.filter((p) => !p.online).slice(0, burst);
      const start = performance.now();
      await new Promise<void>((resolve) => {
        coming.forEach((p, i) => setTimeout(() => {
          bench.emit?.(structuredClone({ ...p, online: true, lastSeen: Date.now() }));
          if (i === coming.length - 1) resolve();
        }, (i * burstMs) / coming.length));
      });
      const sent = performance.now();
      await new Promise<void>((resolve) => requestAnimationFrame(() => resolve()));
      return { events: coming.length, spreadMs: sent - start, settledMs: performance.now() - start };
    }, { burst, burstMs });
    const presenceJank = await end(since);

    // Sync: everyone's row, back to back.
    since = await begin();
    const sync = await page.evaluate(async () => {
      const bench = (window as unknown as BenchWindow).__sidebar;
      const start = performance.now();
      await new Promise<void>((resolve) => {
        bench.people.forEach((p, i) => setTimeout(() => {
          bench.emit?.(structuredClone(p));
          if (i === bench.people.length - 1) resolve();
        }, 0));
      });
      await new Promise<void>((resolve) => requestAnimationFrame(() => resolve()));
      return { events: bench.people.length, settledMs: performance.now() - start };
    });
    const syncJank = await end(since);

    // Filter: type, take back, type again; each key from its event to the next paint.
    const filter = page.getByTestId('people-filter');
    await filter.click();
    await page.waitForTimeout(300);
    since = await begin();
    const keysToPaintMs: number[] = [];
    for (const key of ['a', 'd', 'a', 'Backspace', 'Backspace', 'Backspace', 'j', 'o']) {
      // Listening before the key is sent.
      await filter.evaluate((input) => {
        (window as unknown as BenchWindow).__sidebar.key = new Promise<number>((resolve) => {
          input.addEventListener('keydown', (event) => {
            const at = event.timeStamp;
            requestAnimationFrame(() => {
              const channel = new MessageChannel();
              channel.port1.onmessage = () => resolve(performance.now() - at);
              channel.port2.postMessage(null);
            });
          }, { once: true });
        });
      });
      await page.keyboard.press(key);
      keysToPaintMs.push(await page.evaluate(() => (window as unknown as BenchWindow).__sidebar.key ?? 0));
      await page.waitForTimeout(150);
    }
    const filterJank = await end(since);
    if (errors.length > 0) throw new Error(`the window failed: ${errors.join('; ')}`);
    return {
      people: count,
      openToPaintMs: paintAt - dataAt,
      rows,
      scroll: { ...scrollJank, wheelEvents: wheels.length, scrolledPx },
      presence: { ...presenceJank, ...presence },
      sync: { ...syncJank, ...sync },
      filter: { ...filterJank, keysToPaintMs },
    };
  } finally {
    await close();
  }
}

export function describeSidebarBench(r: SidebarBenchResult): string {
  const ms = (value: number) => `${value.toFixed(1)} ms`;
  const jank = (j: Jank) => `long tasks over 50 ms: ${j.longTasks}${j.longTasks > 0 ? `, longest ${ms(j.longestTaskMs)}` : ''}; longest frame ${ms(j.longestFrameMs)}`;
  return [
    `sidebar with ${r.people.toLocaleString('en')} people (Chromium, headless, software rendering)`,
    `  open: people list delivered -> first paint ${ms(r.openToPaintMs)} (target <= 100 ms; includes the window's first render), ${r.rows} rows in the DOM`,
    `  scroll: ${r.scroll.wheelEvents} wheel events, ${r.scroll.scrolledPx.toLocaleString('en')} px; ${jank(r.scroll)} (target: no long task)`,
    `  presence: ${r.presence.events} people online over ${ms(r.presence.spreadMs)}, painted ${ms(r.presence.settledMs - r.presence.spreadMs)} after the last; ${jank(r.presence)} (target: no long task)`,
    `  sync: ${r.sync.events.toLocaleString('en')} rows back to back, painted after ${ms(r.sync.settledMs)}; ${jank(r.sync)}`,
    `  filter: keystroke -> paint ${r.filter.keysToPaintMs.map((t) => t.toFixed(0)).join(', ')} ms; ${jank(r.filter)} (target: no long task)`,
  ].join('\n');
}
