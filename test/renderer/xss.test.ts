import { describe, expect, it } from 'vitest';
import { screen, waitFor } from '@testing-library/svelte';
import { FakeParley, message, person } from './fake-parley.ts';
import { openChat, renderApp } from './render-app.ts';

const PAYLOADS = [
  '<img src=x onerror="window.pwned=1">',
  '<script>window.pwned=1</script>',
  '"><svg onload=alert(1)>',
  '{@html "<b>x</b>"}',
  '<a href="javascript:alert(1)">click</a>',
];

describe('untrusted text', () => {
  it('renders names, previews and messages as text, creating no elements', async () => {
    const fake = new FakeParley();
    const evil = person(PAYLOADS[0]!, { online: true, last: { text: PAYLOADS[1]!, direction: 'in', at: Date.now(), flagged: false } });
    fake.people = [evil];
    fake.history.set(evil.id, PAYLOADS.map((text, i) => message(evil.id, i + 1, { text })));
    const setup = await renderApp(fake);
    expect(screen.getByTestId('person-name').textContent).toBe(PAYLOADS[0]);
    expect(screen.getByTestId('person-preview').textContent).toBe(PAYLOADS[1]);
    await openChat(setup, PAYLOADS[0]!);
    await waitFor(() => expect(screen.getAllByTestId('message-text')).toHaveLength(PAYLOADS.length));
    expect(screen.getAllByTestId('message-text').map((el) => el.textContent)).toEqual(PAYLOADS);
    expect(screen.getByTestId('peer-name').textContent).toBe(PAYLOADS[0]);
    expect(document.querySelectorAll('img, script, iframe, a[href], svg [onload], b')).toHaveLength(0);
    expect((window as unknown as { pwned?: number }).pwned).toBeUndefined();
  });

  it('renders search snippets as text spans, only the hits marked', async () => {
    const fake = new FakeParley();
    const p = person('Mallory');
    fake.people = [p];
    fake.on('search', () => ({ ok: true, value: [{ message: message(p.id, 1), peerName: '<b>Mallory</b>', snippet: '<img src=x> \u0002hit\u0003 <script>' }] }));
    const { user } = await renderApp(fake);
    await user.keyboard('{Control>}f{/Control}');
    await user.type(await screen.findByTestId('search-input'), 'hit');
    const snippet = await screen.findByTestId('search-snippet');
    expect(snippet.textContent).toBe('<img src=x> hit <script>');
    expect([...snippet.querySelectorAll('mark')].map((m) => m.textContent)).toEqual(['hit']);
    expect(document.querySelectorAll('img, script, b')).toHaveLength(0);
  });
});
