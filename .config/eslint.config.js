// Lint rules, including the process boundaries from ARCHITECTURE.md.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import svelte from 'eslint-plugin-svelte';
import globals from 'globals';

// HTML sinks by any name: assigned, read, called, bound (Svelte's bind:innerHTML, an iframe's
// srcdoc attribute), in an object (Object.assign(el, { innerHTML })) or a string or template
// (el['innerHTML'], Reflect.set(el, `outerHTML`, s), setAttribute('srcdoc', s)). Text is rendered as text.
const SINKS = '/^(innerHTML|outerHTML|srcdoc|insertAdjacentHTML|setHTMLUnsafe|parseHTMLUnsafe|createContextualFragment|parseFromString)$/';
const htmlSinks = [
  { selector: `:matches(Identifier, SvelteName)[name=${SINKS}]`, message: 'No HTML sinks: render text.' },
  { selector: `Literal[value=${SINKS}]`, message: 'No HTML sinks: render text.' },
  { selector: `TemplateElement[value.raw=${SINKS}]`, message: 'No HTML sinks: render text.' },
  { selector: "CallExpression[callee.object.name='document'][callee.property.name=/^write(ln)?$/]", message: 'No document.write.' },
  { selector: "CallExpression[callee.object.property.name='document'][callee.property.name=/^write(ln)?$/]", message: 'No document.write.' },
  { selector: "NewExpression[callee.name='Function']", message: 'No new Function.' },
  { selector: "CallExpression[callee.name='Function']", message: 'No new Function.' },
  { selector: "CallExpression[callee.name='eval']", message: 'No eval.' },
  { selector: "CallExpression[callee.property.name='eval']", message: 'No eval.' },
  { selector: "CallExpression[callee.name=/^set(Timeout|Interval)$/][arguments.0.type=/^(Literal|TemplateLiteral|BinaryExpression)$/]", message: 'No eval: pass setTimeout a function.' },
];

export default tseslint.config(
  { ignores: ['node_modules/**', 'out/**', 'dist/**', 'test-results/**'] },
  js.configs.recommended,
  ...tseslint.configs.strict,
  ...svelte.configs['flat/recommended'],
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/ban-ts-comment': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-empty': ['error', { allowEmptyCatch: false }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['**/*.svelte', '**/*.svelte.ts'],
    languageOptions: { parserOptions: { parser: tseslint.parser, extraFileExtensions: ['.svelte'] } },
  },
  {
    // Tests state what must exist by asserting on it.
    files: ['test/**'],
    rules: { '@typescript-eslint/no-non-null-assertion': 'off' },
  },
  {
    // The relay runs embedded or headless: never Electron, never the app.
    files: ['relay/**'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: [{ name: 'electron', message: 'relay/ never imports electron.' }],
        patterns: [{ group: ['**/main/**', '**/preload/**', '**/renderer/**'], message: 'relay/ stands alone.' }],
      }],
    },
  },
  {
    // Plain-Node core: tested without Electron.
    files: ['main/core/**'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: [{ name: 'electron', message: 'main/core/ is plain Node; only the shell files import electron.' }],
        patterns: [{ group: ['**/renderer/**'], message: 'main/ never imports the renderer.' }],
      }],
    },
  },
  {
    // The renderer knows only the typed API on window.parley.
    files: ['renderer/**'],
    languageOptions: { globals: { ...globals.browser } },
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', {
        paths: [
          { name: 'electron', message: 'The renderer has no Electron.' },
          { name: 'socket.io-client', message: 'The renderer has no sockets: use window.parley.' },
        ],
        patterns: [
          { group: ['node:*'], message: 'The renderer has no Node.' },
          { group: ['**/main/**', '**/relay/**', '**/preload/**', '!**/preload/contract*'], message: 'The renderer imports only types from preload/contract.ts.' },
          { group: ['**/preload/contract*'], allowTypeImports: true, message: 'Only type imports from preload/contract.ts.' },
        ],
      }],
      'no-restricted-syntax': ['error', ...htmlSinks],
      'svelte/no-at-html-tags': 'error',
    },
  },
  {
    files: ['preload/**'],
    rules: { 'no-restricted-syntax': ['error', ...htmlSinks] },
  },
);
