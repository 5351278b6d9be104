// The window with a very long conversation, in Chromium: the built renderer over a fake
// window.parley (an init script) that serves 100,000 messages from memory. Measures
//  - open: from the moment the first page of messages reaches the window to the first paint
//    of the conversation (target: at most 100 ms);
//  - scroll: the longest task (PerformanceObserver 'longtask') while wheel events scroll up
//    through it for several seconds, loading older pages on the way (target: none over 50 ms).
// Then the sidebar with 2,000 and 10,000 people (test/bench/sidebar.ts).
// Prints the figures; asserts nothing. Run it with
//   node --experimental-strip-types --disable-warning=ExperimentalWarning test/bench/window.ts [--only conversation|sidebar] [--profile <file.cpuprofile>] [--trace <file.json>]
import { writeFileSync } from 'node:fs';
import type { Message, Person } from '../../preload/contract.ts';
import { COMMANDS, EVENTS } from '../../preload/contract.ts';
import { ensureRendererBuilt } from '../e2e/build.ts';
import { launchChromium, VIEWPORT } from '../e2e/chromium.ts';
import { serveRenderer } from '../e2e/server.ts';
import { benchSidebar, describeSidebarBench } from './sidebar.ts';

export interface WindowBenchOptions {
  messages?: number;
  /** How long to keep scrolling, in ms. */
  scrollMs?: number;
  /** Pixels per wheel event (negative: up, towards older messages). */
  wheelDelta?: number;
  /** Writes a V8 CPU profile of the window while it scrolls (see test/bench/profile-summary.ts). */
  cpuProfile?: string;
  /** Writes a Chrome trace (devtools.timeline) of the window opening the conversation and scrolling, for DevTools. */
  trace?: string;
  log?: (line: string) => void;
}

export interface WindowBenchResult {
  messages: number;
  /** First page of messages delivered -> first paint of the conversation. */
  openToPaintMs: number;
  /** Click on the person -> first paint (includes asking for the page). */
  clickToPaintMs: number;
  scrollMs: number;
  wheelEvents: number;
  /** Older pages (100 messages each) loaded while scrolling. */
  olderPages: number;
  /** Messages between the newest and the one at the top of the view when scrolling stopped. */
  messagesScrolled: number;
  /** Long tasks (over 50 ms) while scrolling, and the longest (0 when there was none). */
  longTasks: number;
  longestTaskMs: number;
  /** Longest gap between two animation frames while scrolling. */
  longestFrameMs: number;
}

interface BenchState {
  clickAt: number | null;
  dataAt: number | null;
  olderPages: number;
  longTasks: { start: number; duration: number }[];
  frameGaps: number[];
  watchFrames: boolean;
}
type BenchWindow = Window & { __bench: BenchState; __paint(): Promise<number> };

/** A user id as the contract has them: 32 base32 characters. */
const PEER = `adalovelace${'a'.repeat(21)}`;

/** Runs in the page before the app: a window.parley answering from memory, plus probes. */
function installFakeParley(config: { count: number; peer: string; commands: Record<string, string>; events: Record<string, string> }): void {
  const { count, peer } = config;
  const bench: BenchState = { clickAt: null, dataAt: null, olderPages: 0, longTasks: [], frameGaps: [], watchFrames: false };
  const base = Date.UTC(2025, 0, 1, 8);
  const WORDS = ['relay', 'message', 'window', 'scroll', 'lunch', 'compiler', 'table', 'notes', 'review', 'tomorrow', 'the', 'a', 'is', 'we', 'should', 'check', 'again', 'before', 'after', 'meeting'];
  const textOf = (n: number): string => {
    // Deterministic and varied: one word to a few wrapped lines, now and then a link or a break.
    let seed = (n * 2654435761) >>> 0;
    const next = () => (seed = (seed * 1103515245 + 12345) >>> 0) % 1000;
    const words = 1 + (next() % (next() < 100 ? 80 : 18));
    const parts: string[] = [];
    for (let i = 0; i < words; i++) parts.push(WORDS[next() % WORDS.length] ?? 'x');
    if (next() < 60) parts.push(`https://example.org/notes/${n}`);
    if (next() < 40) parts.splice(parts.length >> 1, 0, '\n');
    return `#${n} ${parts.join(' ')}`;
  };
  const message = (n: number): Message => {
    const out = n % 3 === 0;
    const at = base + n * 20_000;
    return { n, id: `m${n}`, peer, direction: out ? 'out' : 'in', text: textOf(n), state: out ? 'read' : 'received', error: null, flagged: false, sentAt: at, createdAt: at, readAt: at };
  };
  const range = (from: number, to: number): Message[] => {
    const list: Message[] = [];
    for (let n = Math.max(1, from); n <= Math.min(count, to); n++) list.push(message(n));
    return list;
  };
  const person: Person = {
    id: peer, name: 'Ada Lovelace', fingerprint: 'b110 2667 f995 9213 0fe3', online: true, lastSeen: base, unread: 0,
    last: { text: textOf(count), direction: 'in', at: base + count * 20_000, flagged: false }, verified: false, keyChanged: false, nameClash: false, draft: null,
  };
  // As over IPC: answered in a later task, as a copy.
  const answer = (value: unknown, onArrival?: () => void) =>
    new Promise((resolve) => setTimeout(() => {
      onArrival?.();
      resolve({ ok: true, value: structuredClone(value) });
    }, 0));
  const handlers: Record<string, (arg: never) => Promise<unknown>> = {
    'app:info': () => answer({ version: 'bench', protocol: 1, platform: 'linux' }),
    'status:get': () => answer({ connection: { state: 'online', relay: '127.0.0.1:47800', relayId: 'r', relayName: 'Lab relay' }, hosting: null, sync: null }),
    'profile:get': () => answer({ userId: 'gracehopperaaaaaaaaaaaaaaaaaaaaa', name: 'Grace Hopper', fingerprint: '7483 71c9 a5d6 5b17 6dc4', secretProtection: 'file-0600' }),
    'settings:get': () => answer({ notifications: true, theme: 'light', hostPort: 47800 }),
    'people:list': () => answer([person]),
    'relay:remembered': () => answer([]),
    'relay:found': () => answer([]),
    'conversation:page': (arg: { peer: string; before?: number; limit?: number }) => {
      const end = (arg.before ?? count + 1) - 1;
      const first = arg.before === undefined;
      if (!first) bench.olderPages++;
      return answer(range(end - (arg.limit ?? 50) + 1, end), first ? () => (bench.dataAt ??= performance.now()) : undefined);
    },
    'conversation:from': (arg: { n: number; limit?: number }) => answer(range(arg.n, arg.n + (arg.limit ?? 50) - 1)),
  };
  const api: Record<string, unknown> = {};
  for (const [method, channel] of Object.entries(config.commands)) {
    api[method] = (arg?: unknown) => (handlers[channel] ? handlers[channel](arg as never) : answer(null));
  }
  for (const method of Object.keys(config.events)) api[method] = () => () => undefined;
  Object.defineProperty(window, 'parley', { value: Object.freeze(api) });
  Object.defineProperty(window, '__bench', { value: bench });
  addEventListener('click', () => (bench.clickAt ??= performance.now()), { capture: true });

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
  // Resolves with the time the first frame showing message rows has been painted: the rAF
  // in which rows first exist runs just before that frame renders; a message posted from it
  // is handled after the frame.
  Object.defineProperty(window, '__paint', {
    value: () => new Promise<number>((resolve) => {
      const check = () => {
        if (bench.dataAt === null || !document.querySelector('[data-testid="message"]')) return void requestAnimationFrame(check);
        const channel = new MessageChannel();
        channel.port1.onmessage = () => resolve(performance.now());
        channel.port2.postMessage(null);
      };
      requestAnimationFrame(check);
    }),
  });
}

/**
 * The built renderer in Chromium, over a fake window.parley that `install` sets up as the page's
 * init script (self-contained: it runs in the page, given `arg`), with the page's errors
 * collected; close() closes the browser and the server.
 */
export async function openBenchPage<A>(install: (arg: A) => void, arg: A, log?: (line: string) => void) {
  ensureRendererBuilt(log);
  const server = await serveRenderer();
  const browser = await launchChromium();
  const close = async () => {
    await browser.close();
    await server.close();
  };
  try {
    const context = await browser.newContext({ viewport: VIEWPORT, deviceScaleFactor: 1, locale: 'en-GB', timezoneId: 'UTC' });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    // (Playwright types the script's argument as what survives serialising it: the same data here.)
    await page.addInitScript(install as (arg: unknown) => void, arg);
    await page.goto(server.appUrl);
    return { context, page, errors, close };
  } catch (error) {
    await close();
    throw error;
  }
}

export async function benchWindow(options: WindowBenchOptions = {}): Promise<WindowBenchResult> {
  const count = options.messages ?? 100_000;
  const scrollMs = options.scrollMs ?? 5000;
  const delta = options.wheelDelta ?? -400;
  const log = options.log ?? (() => undefined);
  const { context, page, errors, close } = await openBenchPage(installFakeParley, { count, peer: PEER, commands: COMMANDS, events: EVENTS }, log);
  try {
    const row = page.getByTestId('person').first();
    await row.waitFor();

    // Traced from before the click, so starting the trace is not a task inside either measurement.
    const tracer = options.trace ? await context.newCDPSession(page) : null;
    const traceChunks: unknown[] = [];
    if (tracer) {
      tracer.on('Tracing.dataCollected', ({ value }) => traceChunks.push(...value));
      await tracer.send('Tracing.start', { traceConfig: { includedCategories: ['devtools.timeline', 'disabled-by-default-devtools.timeline', 'toplevel', 'v8.execute', 'blink.user_timing'] }, transferMode: 'ReportEvents' });
      await page.waitForTimeout(500);
    }
    const painted = page.evaluate(() => (window as unknown as BenchWindow).__paint());
    await row.click();
    const paintAt = await painted;
    const { clickAt, dataAt } = await page.evaluate(() => (window as unknown as BenchWindow).__bench);
    if (clickAt === null || dataAt === null) throw new Error('the click or the first page was not seen');
    await page.getByTestId('message').first().waitFor();

    const list = page.getByTestId('message-list');
    const box = await list.boundingBox();
    if (!box) throw new Error('the conversation has no message list');
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    const cdp = options.cpuProfile ? await context.newCDPSession(page) : null;
    if (cdp) {
      await cdp.send('Profiler.enable');
      await cdp.send('Profiler.start');
    }
    const scrollStart = await page.evaluate(() => {
      const bench = (window as unknown as BenchWindow).__bench;
      bench.watchFrames = true;
      return performance.now();
    });
    // One wheel event per frame (16 ms), as a fast wheel or a trackpad sends them, whether
    // or not the window has caught up with the previous ones.
    const wheels: Promise<void>[] = [];
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        wheels.push(page.mouse.wheel(0, delta));
        if (wheels.length * 16 >= scrollMs) {
          clearInterval(timer);
          resolve();
        }
      }, 16);
    });
    await Promise.all(wheels);
    const wheelEvents = wheels.length;
    if (cdp && options.cpuProfile) {
      const { profile } = await cdp.send('Profiler.stop');
      writeFileSync(options.cpuProfile, JSON.stringify(profile));
      log(`wrote ${options.cpuProfile}`);
    }
    if (tracer && options.trace) {
      const done = new Promise<void>((resolve) => tracer.once('Tracing.tracingComplete', () => resolve()));
      await tracer.send('Tracing.end');
      await done;
      writeFileSync(options.trace, JSON.stringify({ traceEvents: traceChunks }));
      log(`wrote ${options.trace}`);
    }
    const after = await page.evaluate((since) => {
      const bench = (window as unknown as BenchWindow).__bench;
      bench.watchFrames = false;
      const tasks = bench.longTasks.filter((t) => t.start >= since);
      const top = document.querySelector('[data-testid="message-list"]');
      const rows = [...(top?.querySelectorAll<HTMLElement>('[data-testid="message"]') ?? [])];
      const listTop = top?.getBoundingClientRect().top ?? 0;
      const visible = rows.find((r) => r.getBoundingClientRect().bottom > listTop);
      return {
        olderPages: bench.olderPages,
        longTasks: tasks.length,
        longestTaskMs: Math.max(0, ...tasks.map((t) => t.duration)),
        longestFrameMs: Math.max(0, ...bench.frameGaps),
        topN: Number(visible?.dataset.n ?? NaN),
      };
    }, scrollStart);
    if (errors.length > 0) throw new Error(`the window failed: ${errors.join('; ')}`);
    return {
      messages: count,
      openToPaintMs: paintAt - dataAt,
      clickToPaintMs: paintAt - clickAt,
      scrollMs,
      wheelEvents,
      olderPages: after.olderPages,
      messagesScrolled: count - after.topN,
      longTasks: after.longTasks,
      longestTaskMs: after.longestTaskMs,
      longestFrameMs: after.longestFrameMs,
    };
  } finally {
    await close();
  }
}

export function describeWindowBench(r: WindowBenchResult): string {
  const ms = (value: number) => `${value.toFixed(1)} ms`;
  return [
    `window with ${r.messages.toLocaleString('en')} messages (Chromium, headless, software rendering)`,
    `  open: first page delivered -> first paint ${ms(r.openToPaintMs)} (target <= 100 ms); click -> paint ${ms(r.clickToPaintMs)}`,
    `  scroll: ${r.wheelEvents} wheel events over ${(r.scrollMs / 1000).toFixed(1)} s, ${r.olderPages} older pages loaded, ${r.messagesScrolled.toLocaleString('en')} messages scrolled through`,
    `  long tasks over 50 ms: ${r.longTasks}${r.longTasks > 0 ? `, longest ${ms(r.longestTaskMs)}` : ''} (target: none); longest frame ${ms(r.longestFrameMs)}`,
  ].join('\n');
}

if (import.meta.main) {
  const arg = (name: string) => {
    const at = process.argv.indexOf(name);
    return at > 0 ? process.argv[at + 1] : undefined;
  };
  const cpuProfile = arg('--profile');
  const trace = arg('--trace');
  const only = arg('--only');
  const log = (line: string) => console.log(line);
  if (only !== 'sidebar') {
    const result = await benchWindow({ log, ...(cpuProfile ? { cpuProfile } : {}), ...(trace ? { trace } : {}) });
    console.log(describeWindowBench(result));
  }
  if (only !== 'conversation') {
    for (const people of [2_000, 10_000]) console.log(describeSidebarBench(await benchSidebar({ people, log })));
  }
}
