// Test support: the headless relay as a real child process (npm run relay).
import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../..');
export const CLI = ['--experimental-strip-types', '--disable-warning=ExperimentalWarning', resolve(ROOT, 'relay/cli.ts')];

export interface CliRelay {
  child: ChildProcess;
  url: string;
  port: number;
  output: () => string;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
}

/** Runs the CLI in `cwd` (default: the repository, as `npm run relay` does). */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}, cwd = ROOT): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [...CLI, ...args], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stdout?.on('data', (chunk: Buffer) => (text += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  return { child, output: () => text, exited };
}

/** A port that was free a moment ago (for restarting a relay on the same address). */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Starts the CLI relay (on a free port unless `--port` is given) and resolves once it listens. */
export async function startCliRelay(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliRelay> {
  const run = runCli(['--host', '127.0.0.1', '--port', '0', ...args], env);
  const port = await new Promise<number>((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`relay did not start:\n${run.output()}`)), 15_000);
    const check = () => {
      const match = /listening on 127\.0\.0\.1:(\d+)/.exec(run.output());
      if (match) {
        clearTimeout(timer);
        done(Number(match[1]));
      }
    };
    run.child.stdout?.on('data', check);
    void run.exited.then((code) => fail(new Error(`relay exited with ${code}:\n${run.output()}`)));
  });
  return { ...run, port, url: `http://127.0.0.1:${port}` };
}
