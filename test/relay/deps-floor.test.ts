// The relay's network-facing dependencies stay at or above the versions that fixed their
// known advisories (RELIABILITY.md A13).
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const FLOORS: Record<string, string> = {
  'engine.io': '6.2.1', // CVE-2022-41940
  'socket.io-parser': '4.2.3', // CVE-2022-2421, CVE-2023-32695
  'socket.io': '4.6.2', // CVE-2024-38355
  ws: '8.17.1', // CVE-2021-32640, CVE-2024-37890
};

/** Every copy npm ci installs of `name` (package-lock.json), nested ones too: path and version. */
function installed(name: string): [string, string][] {
  const lock = JSON.parse(readFileSync(join(import.meta.dirname, '../../package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string }> };
  return Object.entries(lock.packages)
    .filter(([path]) => path === `node_modules/${name}` || path.endsWith(`/node_modules/${name}`))
    .map(([path, entry]) => [path, entry.version ?? '0']);
}

const atLeast = (version: string, floor: string) => {
  const a = version.split('.').map(Number);
  const b = floor.split('.').map(Number);
  for (let i = 0; i < 3; i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
  return true;
};

describe('dependency floors', () => {
  it.each(Object.entries(FLOORS))('%s is at or above %s, every copy installed', (name, floor) => {
    const copies = installed(name);
    expect(copies.length, `${name} is installed`).toBeGreaterThan(0);
    for (const [path, version] of copies) expect(atLeast(version, floor), `${path} ${version} < ${floor}`).toBe(true);
  });
});

describe('the Node.js floor', () => {
  it("is a release with the Node-API version better-sqlite3's prebuilt binary is built for (an older one crashes loading it)", () => {
    const root = join(import.meta.dirname, '../..');
    const gyp = readFileSync(join(root, 'node_modules/better-sqlite3/binding.gyp'), 'utf8');
    const napi = Number(/NAPI_VERSION=(\d+)/.exec(gyp)?.[1]);
    // The first Node 22 release of each Node-API version.
    const firstWith: Record<number, string> = { 9: '22.0.0', 10: '22.14.0' };
    const floor = /^>=(\d+\.\d+(?:\.\d+)?)$/.exec((JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node)?.[1] ?? '0';
    expect(firstWith[napi], `Node-API ${napi}: add its first Node 22 release here`).toBeDefined();
    expect(atLeast(floor, firstWith[napi] ?? ''), `engines.node >=${floor} is older than ${firstWith[napi]}, the first with Node-API ${napi}`).toBe(true);
  });
});
