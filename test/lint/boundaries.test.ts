// The process boundaries of ARCHITECTURE.md are lint rules; these prove the rules bite.
import { describe, expect, it } from 'vitest';
import { ESLint } from 'eslint';
import { resolve } from 'node:path';

const root = resolve(import.meta.dirname, '../..');
const eslint = new ESLint({ cwd: root, overrideConfigFile: resolve(root, '.config/eslint.config.js') });

async function problems(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: resolve(root, file) });
  return (result?.messages ?? []).map((m) => `${m.ruleId}: ${m.message}`);
}

describe('lint boundaries', () => {
  it('keeps electron and the app out of relay/', async () => {
    expect(await problems('relay/x.ts', "import { app } from 'electron';\nexport const a = app;\n")).toEqual([expect.stringMatching(/no-restricted-imports.*relay\/ never imports electron/)]);
    expect(await problems('relay/x.ts', "import { x } from '../main/core/messenger.ts';\nexport const a = x;\n")).toEqual([expect.stringMatching(/relay\/ stands alone/)]);
  });

  it('keeps electron out of main/core/', async () => {
    expect(await problems('main/core/x.ts', "import { app } from 'electron';\nexport const a = app;\n")).toEqual([expect.stringMatching(/main\/core\/ is plain Node/)]);
  });

  it('lets the renderer import only types from the contract', async () => {
    expect(await problems('renderer/src/x.ts', "import type { ParleyApi } from '../../preload/contract.ts';\nexport type A = ParleyApi;\n")).toEqual([]);
    expect(await problems('renderer/src/x.ts', "import { COMMAND_NAMES } from '../../preload/contract.ts';\nexport const a = COMMAND_NAMES;\n")).toEqual([expect.stringMatching(/Only type imports/)]);
    expect(await problems('renderer/src/x.ts', "import { io } from 'socket.io-client';\nexport const a = io;\n")).toEqual([expect.stringMatching(/no sockets/)]);
    expect(await problems('renderer/src/x.ts', "import { readFileSync } from 'node:fs';\nexport const a = readFileSync;\n")).toEqual([expect.stringMatching(/no Node/)]);
    expect(await problems('renderer/src/x.ts', "import { createRelay } from '../../relay/server.ts';\nexport const a = createRelay;\n")).toEqual([expect.stringMatching(/only types from preload\/contract/)]);
  });

  it('bans HTML sinks and eval in the renderer and preload (C2)', async () => {
    const sinks: [string, RegExp][] = [
      ['el.innerHTML = s;', /No HTML sinks/],
      ['el.outerHTML = s;', /No HTML sinks/],
      ["el['innerHTML'] = s;", /No HTML sinks/],
      ["el.insertAdjacentHTML('beforeend', s);", /No HTML sinks/],
      ['Object.assign(el, { innerHTML: s });', /No HTML sinks/],
      ["Reflect.set(el, 'outerHTML', s);", /No HTML sinks/],
      ['el.setHTMLUnsafe(s);', /No HTML sinks/],
      ['el.append(document.createRange().createContextualFragment(s));', /No HTML sinks/],
      ["el.append(...new DOMParser().parseFromString(s, 'text/html').body.childNodes);", /No HTML sinks/],
      ['el[`innerHTML`] = s;', /No HTML sinks/],
      ["el.insertAdjacentHTML.call(el, 'beforeend', s);", /No HTML sinks/],
      ['Reflect.apply(el.setHTMLUnsafe, el, [s]);', /No HTML sinks/],
      ['el.append(...Document.parseHTMLUnsafe(s).body.childNodes);', /No HTML sinks/],
      ['(el as HTMLIFrameElement).srcdoc = s;', /No HTML sinks/],
      ["el.setAttribute('srcdoc', s);", /No HTML sinks/],
      ["el['insertAdjacentHTML']('beforeend', s);", /No HTML sinks/],
      ['document.write(s);', /No document.write/],
      ['window.document.writeln(s);', /No document.write/],
      ['new Function(s)();', /No new Function/],
      ['Function(s)();', /No new Function/],
      ['eval(s);', /No eval/],
      ['window.eval(s);', /No eval/],
      ['setTimeout(`${s}`, 10);', /No eval/],
    ];
    for (const file of ['renderer/src/x.ts', 'preload/x.ts']) {
      for (const [statement, message] of sinks) {
        expect(await problems(file, `export function f(el: HTMLElement, s: string): void {\n  ${statement}\n}\n`), `${file}: ${statement}`).toEqual([expect.stringMatching(message)]);
      }
      expect(await problems(file, 'export function f(el: HTMLElement, s: string): void {\n  el.textContent = s;\n  setTimeout(() => el.remove(), 10);\n}\n'), file).toEqual([]);
    }
    expect(await problems('renderer/src/X.svelte', '<script>\n  let { s } = $props();\n</script>\n\n<p>{@html s}</p>\n')).toEqual([expect.stringMatching(/svelte\/no-at-html-tags/)]);
    expect(await problems('renderer/src/X.svelte', '<script>\n  let { s } = $props();\n</script>\n\n<p bind:innerHTML={s} contenteditable></p>\n')).toEqual([expect.stringMatching(/No HTML sinks/)]);
    expect(await problems('renderer/src/X.svelte', '<script>\n  let { s } = $props();\n</script>\n\n<iframe title="x" srcdoc={s}></iframe>\n')).toEqual([expect.stringMatching(/No HTML sinks/)]);
    expect(await problems('renderer/src/X.svelte', '<script>\n  let { s } = $props();\n</script>\n\n<p>{s}</p>\n')).toEqual([]);
  });
});
