import { describe, expect, it } from 'vitest';
import { screen, waitFor } from '@testing-library/svelte';
import { FakeParley, person } from './fake-parley.ts';
import type { Person } from '../../preload/contract.ts';
import { renderApp } from './render-app.ts';
import { shortcutFor } from '../../renderer/src/lib/shortcuts.ts';

function three(): FakeParley {
  const fake = new FakeParley();
  fake.people = [person('Grace', { online: true }), person('Alan', { online: true }), person('Katherine')];
  return fake;
}

describe('keyboard', () => {
  it('Ctrl+K jumps to a person by name', async () => {
    const { user } = await renderApp(three());
    await user.keyboard('{Control>}k{/Control}');
    const input = await screen.findByTestId('jump-input');
    expect(document.activeElement).toBe(input);
    await user.type(input, 'kat');
    expect(screen.getAllByTestId('jump-result').map((el) => el.querySelector('.result-name')?.textContent)).toEqual(['Katherine']);
    await user.keyboard('{Enter}');
    expect(screen.queryByTestId('jump-dialog')).toBeNull();
    await waitFor(() => expect(screen.getByTestId('peer-name').textContent).toBe('Katherine'));
    await waitFor(() => expect(document.activeElement).toBe(screen.getByTestId('composer')));
  });

  it('arrow keys choose in the quick switcher', async () => {
    const { user } = await renderApp(three());
    await user.keyboard('{Meta>}k{/Meta}');
    await screen.findByTestId('jump-input');
    // Online first, then by name: Alan, Grace, Katherine.
    await user.keyboard('{ArrowDown}{Enter}');
    await waitFor(() => expect(screen.getByTestId('peer-name').textContent).toBe('Grace'));
  });

  it('the quick switcher keeps the highlighted person when the list re-sorts, and Enter opens them', async () => {
    const { fake, user } = await renderApp(three());
    const [grace, , katherine] = fake.people as [Person, Person, Person];
    const highlighted = () => screen.getAllByTestId('jump-result').find((el) => el.getAttribute('aria-selected') === 'true')?.querySelector('.result-name')?.textContent;
    await user.keyboard('{Control>}k{/Control}');
    await screen.findByTestId('jump-input');
    expect(highlighted()).toBe('Alan');
    // Katherine comes online and writes: she moves to the top of the list.
    fake.emit('onPerson', { ...katherine, online: true, last: { text: 'hi', direction: 'in', at: Date.now(), flagged: false } });
    await waitFor(() => expect(screen.getAllByTestId('jump-result')[0]?.textContent).toContain('Katherine'));
    expect(highlighted()).toBe('Alan');
    await user.keyboard('{ArrowDown}');
    expect(highlighted()).toBe('Grace');
    // Grace writes: she moves from the bottom to the top, still highlighted.
    fake.emit('onPerson', { ...grace, last: { text: 'hey', direction: 'in', at: Date.now() + 1, flagged: false } });
    await waitFor(() => expect(screen.getAllByTestId('jump-result')[0]?.textContent).toContain('Grace'));
    expect(highlighted()).toBe('Grace');
    await user.keyboard('{Enter}');
    await waitFor(() => expect(screen.getByTestId('peer-name').textContent).toBe(grace.name));
  });

  it('Enter on a person in the list opens that person, whether another conversation is open (and filtered out) or none', async () => {
    const setup = await renderApp(three());
    const { fake, user } = setup;
    const [grace, alan] = fake.people as [Person, Person];
    const filter = screen.getByTestId('people-filter');
    // Nothing open: Tab from the filter reaches the first person (online first: Alan).
    await user.click(filter);
    await user.tab();
    expect((document.activeElement as HTMLElement).dataset.person).toBe(alan.id);
    await user.keyboard('{Enter}');
    await waitFor(() => expect(screen.getByTestId('peer-name').textContent).toBe('Alan'));
    // Alan open, the filter leaves only Grace: Enter on her row opens her, not Alan.
    await user.click(filter);
    await user.keyboard('gra');
    await user.tab();
    expect((document.activeElement as HTMLElement).dataset.person).toBe(grace.id);
    await user.keyboard('{Enter}');
    await waitFor(() => expect(screen.getByTestId('peer-name').textContent).toBe('Grace'));
  });

  it('Ctrl+F opens search and Esc closes it, giving focus back', async () => {
    const { user } = await renderApp(three());
    const filter = screen.getByTestId('people-filter');
    await user.click(filter);
    await user.keyboard('{Control>}f{/Control}');
    expect(document.activeElement).toBe(await screen.findByTestId('search-input'));
    await user.keyboard('{Escape}');
    expect(screen.queryByTestId('search-dialog')).toBeNull();
    expect(document.activeElement).toBe(filter);
  });

  it('Ctrl+, opens settings; Tab stays inside the dialog', async () => {
    const { user } = await renderApp(three());
    await user.keyboard('{Control>},{/Control}');
    const dialog = await screen.findByTestId('settings-dialog');
    for (let i = 0; i < 20; i++) {
      await user.tab();
      expect(dialog.contains(document.activeElement)).toBe(true);
    }
  });

  it('Alt+Up and Alt+Down move between conversations', async () => {
    const { user } = await renderApp(three());
    await user.keyboard('{Alt>}{ArrowDown}{/Alt}');
    await waitFor(() => expect(screen.getByTestId('peer-name').textContent).toBe('Alan'));
    await user.keyboard('{Alt>}{ArrowDown}{/Alt}');
    await waitFor(() => expect(screen.getByTestId('peer-name').textContent).toBe('Grace'));
    await user.keyboard('{Alt>}{ArrowUp}{/Alt}');
    await waitFor(() => expect(screen.getByTestId('peer-name').textContent).toBe('Alan'));
  });

  it('maps keys to shortcuts with Ctrl or Cmd', () => {
    const key = (k: string, mods: Partial<Record<'ctrlKey' | 'metaKey' | 'altKey' | 'shiftKey', boolean>> = {}) => shortcutFor({ key: k, ctrlKey: false, metaKey: false, altKey: false, shiftKey: false, ...mods });
    expect(key('k', { ctrlKey: true })).toBe('jump');
    expect(key('K', { metaKey: true })).toBe('jump');
    expect(key('f', { ctrlKey: true })).toBe('search');
    expect(key('f')).toBeNull();
    expect(key('f', { ctrlKey: true, shiftKey: true })).toBeNull();
  });

  it('labels every control', async () => {
    const fake = three();
    const setup = await renderApp(fake);
    await setup.user.click(screen.getAllByTestId('person')[0]!);
    for (const control of document.querySelectorAll<HTMLElement>('button, input, textarea')) {
      const label = control.getAttribute('aria-label') ?? control.textContent.trim() ?? '';
      const labelled = label !== '' || (control.id !== '' && document.querySelector(`label[for="${control.id}"]`) !== null) || control.closest('label') !== null;
      expect(labelled, control.outerHTML).toBe(true);
    }
  });
});
