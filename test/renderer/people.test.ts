import { describe, expect, it } from 'vitest';
import { screen, waitFor, within } from '@testing-library/svelte';
import { FakeParley, message, person } from './fake-parley.ts';
import { openChat, renderApp } from './render-app.ts';
import { PERSON_ROW_PX } from '../../renderer/src/components/people/PeopleList.svelte';
import { comparePeople } from '../../renderer/src/state/people.svelte.ts';
import type { Person } from '../../preload/contract.ts';

const NOW = Date.now();

function team(): FakeParley {
  const fake = new FakeParley();
  fake.people = [
    person('Zoe', { online: false, lastSeen: NOW - 5 * 60_000, last: { text: 'old news', direction: 'in', at: NOW - 86_400_000, flagged: false } }),
    person('Grace', { online: true, unread: 3, last: { text: 'lunch?', direction: 'in', at: NOW - 60_000, flagged: false } }),
    person('Alan', { online: true, last: { text: 'ok', direction: 'out', at: NOW - 120_000, flagged: false } }),
    person('Ada', { online: false, unread: 1, last: { text: '', direction: 'in', at: NOW - 3_600_000, flagged: true } }),
  ];
  return fake;
}

const names = () => screen.getAllByTestId('person-name').map((el) => el.textContent);
const rowOf = (name: string) => screen.getAllByTestId('person').find((el) => within(el).getByTestId('person-name').textContent === name)!;

describe('the people list', () => {
  it('puts online people first, then the most recent conversation', async () => {
    await renderApp(team());
    expect(names()).toEqual(['Grace', 'Alan', 'Ada', 'Zoe']);
  });

  it('shows unread badges, previews, presence and last seen', async () => {
    await renderApp(team());
    expect(within(rowOf('Grace')).getByTestId('unread-badge').textContent).toBe('3');
    expect(within(rowOf('Alan')).queryByTestId('unread-badge')).toBeNull();
    expect(within(rowOf('Grace')).getByTestId('person-preview').textContent).toBe('lunch?');
    expect(within(rowOf('Alan')).getByTestId('person-preview').textContent).toBe('You: ok');
    expect(within(rowOf('Ada')).getByTestId('person-preview').textContent).toBe('Message could not be verified');
    expect(within(rowOf('Grace')).getByTestId('person-presence').textContent).toBe('online');
    expect(within(rowOf('Zoe')).getByTestId('person-presence').textContent).toBe('last seen 5 min ago');
  });

  it('updates from person events: the badge clears, presence changes, the order follows', async () => {
    const fake = team();
    await renderApp(fake);
    const grace = fake.people[1]!;
    fake.emit('onPerson', { ...grace, unread: 0, online: false, lastSeen: NOW });
    await waitFor(() => expect(within(rowOf('Grace')).queryByTestId('unread-badge')).toBeNull());
    expect(names()).toEqual(['Alan', 'Grace', 'Ada', 'Zoe']);
    fake.emit('onPerson', person('Newcomer', { online: true }));
    await waitFor(() => expect(names()).toContain('Newcomer'));
  });

  it('filters by name', async () => {
    const { user } = await renderApp(team());
    await user.type(screen.getByTestId('people-filter'), 'a');
    expect(names()).toEqual(['Grace', 'Alan', 'Ada']);
    await user.type(screen.getByTestId('people-filter'), 'd');
    expect(names()).toEqual(['Ada']);
    await user.type(screen.getByTestId('people-filter'), 'x');
    expect(screen.getByTestId('people-empty').textContent).toContain('Nobody called');
  });

  it('moves through people with the arrow keys and opens them', async () => {
    const setup = await renderApp(team());
    await setup.user.click(screen.getByTestId('people-filter'));
    await setup.user.keyboard('{ArrowDown}');
    expect(document.activeElement).toBe(rowOf('Grace'));
    expect(rowOf('Grace').getAttribute('aria-selected')).toBe('true');
    await setup.user.keyboard('{ArrowDown}');
    expect(document.activeElement).toBe(rowOf('Alan'));
    await waitFor(() => expect(screen.getByTestId('peer-name').textContent).toBe('Alan'));
    await setup.user.keyboard('{Enter}');
    await waitFor(() => expect(document.activeElement).toBe(screen.getByTestId('composer')));
  });

  it('warns about a changed key and accepts it', async () => {
    const fake = team();
    fake.people[1] = { ...fake.people[1]!, keyChanged: true };
    const setup = await renderApp(fake);
    await openChat(setup, 'Grace');
    const banner = screen.getByTestId('key-changed-banner');
    expect(banner.textContent).toContain('Grace’s security key has changed');
    await setup.user.click(within(banner).getByTestId('accept-key'));
    expect(fake.callsOf('acceptKey')).toEqual([{ peer: fake.people[1]!.id }]);
    await waitFor(() => expect(screen.queryByTestId('key-changed-banner')).toBeNull());
  });

  it('shows a failure to accept a key in that person’s conversation only, until it succeeds', async () => {
    const fake = team();
    fake.people[1] = { ...fake.people[1]!, keyChanged: true };
    let refuse = true;
    fake.on('acceptKey', ({ peer }) => (refuse ? { ok: false, error: { code: 'E_INTERNAL', message: 'disk' } } : { ok: true, value: { ...fake.people.find((p) => p.id === peer)!, keyChanged: false } }));
    const setup = await renderApp(fake);
    await openChat(setup, 'Grace');
    await setup.user.click(screen.getByTestId('accept-key'));
    await waitFor(() => expect(screen.getByTestId('trust-error').textContent).toContain('Something went wrong inside Parley'));
    await openChat(setup, 'Alan');
    expect(screen.getByTestId('peer-name').textContent).toBe('Alan');
    expect(screen.queryByTestId('trust-error')).toBeNull();
    await openChat(setup, 'Grace');
    expect(screen.getByTestId('trust-error')).toBeTruthy();
    refuse = false;
    await setup.user.click(screen.getByTestId('accept-key'));
    await waitFor(() => expect(screen.queryByTestId('key-changed-banner')).toBeNull());
    expect(screen.queryByTestId('trust-error')).toBeNull();
  });

  it('warns when two people share a name', async () => {
    const fake = team();
    fake.people[1] = { ...fake.people[1]!, nameClash: true };
    const setup = await renderApp(fake);
    await openChat(setup, 'Grace');
    expect(screen.getByTestId('name-clash-banner').textContent).toContain('also called “Grace”');
  });

  it('shows the safety number and marks the person verified', async () => {
    const fake = team();
    fake.history.set(fake.people[1]!.id, [message(fake.people[1]!.id, 1)]);
    const setup = await renderApp(fake);
    await openChat(setup, 'Grace');
    await setup.user.click(screen.getByTestId('verify-button'));
    const dialog = await screen.findByTestId('verify-dialog');
    await waitFor(() => expect(within(dialog).getByTestId('safety-number').textContent).toContain('11111'));
    await setup.user.click(within(dialog).getByTestId('mark-verified'));
    expect(fake.callsOf('verify')).toEqual([{ peer: fake.people[1]!.id, verified: true }]);
    await waitFor(() => expect(screen.getByTestId('verify-button').textContent).toContain('Verified'));
    await setup.user.keyboard('{Escape}');
    expect(screen.queryByTestId('verify-dialog')).toBeNull();
  });
});

/** `count` colleagues, none online and none written to yet: listed by name, "Colleague 00000" first. */
function crowd(count: number): FakeParley {
  const fake = new FakeParley();
  const digits = (n: number) => String(n).padStart(5, '0');
  fake.people = Array.from({ length: count }, (_, n) => person(`Colleague ${digits(n)}`, { id: `colleague${digits(n).replace(/\d/g, (d) => 'abcdefghij'[Number(d)] ?? 'a')}`.padEnd(32, 'q') }));
  return fake;
}

describe('the people list with thousands of people', () => {
  const focusedName = () => (document.activeElement as HTMLElement).querySelector('[data-testid="person-name"]')?.textContent;

  it('renders only a screenful of rows, each telling its place among all of them', async () => {
    await renderApp(crowd(5_000));
    const rows = screen.getAllByTestId('person');
    expect(rows.length).toBeGreaterThan(5);
    expect(rows.length).toBeLessThan(40);
    expect(names()[0]).toBe('Colleague 00000');
    expect(rows[0]?.getAttribute('aria-posinset')).toBe('1');
    expect(rows[0]?.getAttribute('aria-setsize')).toBe('5000');
  });

  it('moves through all of them with the keys, scrolling the focused row into view', async () => {
    const { user } = await renderApp(crowd(5_000));
    const list = screen.getByTestId('people-list');
    await user.click(screen.getByTestId('people-filter'));
    await user.keyboard('{ArrowDown}');
    expect(focusedName()).toBe('Colleague 00000');
    await user.keyboard('{ArrowDown}{ArrowDown}');
    expect(focusedName()).toBe('Colleague 00002');
    expect(list.scrollTop).toBe(0);
    await user.keyboard('{End}');
    expect(focusedName()).toBe('Colleague 04999');
    await waitFor(() => expect(screen.getByTestId('peer-name').textContent).toBe('Colleague 04999'));
    // Scrolled so that the last row shows (in a list 600 px high, as jsdom has no layout), and the rows above it are there.
    expect(list.scrollTop).toBeGreaterThan(4_999 * PERSON_ROW_PX - 600);
    expect(names()).toContain('Colleague 04995');
    expect(screen.getAllByTestId('person').length).toBeLessThan(40);
    await user.keyboard('{ArrowUp}');
    expect(focusedName()).toBe('Colleague 04998');
    await user.keyboard('{Enter}');
    await waitFor(() => expect(document.activeElement).toBe(screen.getByTestId('composer')));
    // Tab from the filter comes back to the open conversation's row, far down the list.
    await user.click(screen.getByTestId('people-filter'));
    await user.tab();
    expect(focusedName()).toBe('Colleague 04998');
    await user.keyboard('{Home}');
    expect(focusedName()).toBe('Colleague 00000');
    expect(list.scrollTop).toBe(0);
  });

  it('keeps the focused row while the list scrolls away from it, and shows the rows scrolled to', async () => {
    const { user } = await renderApp(crowd(5_000));
    const list = screen.getByTestId('people-list');
    await user.click(screen.getByTestId('people-filter'));
    await user.keyboard('{ArrowDown}');
    list.scrollTop = 2_500 * PERSON_ROW_PX;
    list.dispatchEvent(new Event('scroll'));
    await waitFor(() => expect(names()).toContain('Colleague 02503'));
    expect(names()).not.toContain('Colleague 00100');
    expect(focusedName()).toBe('Colleague 00000');
    await user.keyboard('{ArrowDown}');
    expect(focusedName()).toBe('Colleague 00001');
  });

  it('finds a person far down with the filter, and shows the list from the top again after finding nobody', async () => {
    const { user } = await renderApp(crowd(5_000));
    const list = screen.getByTestId('people-list');
    list.scrollTop = 2_500 * PERSON_ROW_PX;
    list.dispatchEvent(new Event('scroll'));
    const filter = screen.getByTestId('people-filter');
    await user.type(filter, 'colleague 04321');
    expect(names()).toEqual(['Colleague 04321']);
    await user.keyboard('{Enter}');
    await waitFor(() => expect(screen.getByTestId('peer-name').textContent).toBe('Colleague 04321'));
    await user.clear(filter);
    await user.type(filter, 'nobody');
    expect(screen.getByTestId('people-empty')).toBeTruthy();
    await user.clear(filter);
    expect(names()[0]).toBe('Colleague 00000');
  });

  it('keeps the order through a flood of person events, as after a directory sync', async () => {
    const fake = crowd(2_000);
    await renderApp(fake);
    const now = new Map(fake.people.map((p) => [p.id, p]));
    const send = (p: Person) => {
      now.set(p.id, p);
      fake.emit('onPerson', p);
    };
    /** The first rows as sorting everyone, as they are now, puts them. */
    const expected = () => [...now.values()].sort(comparePeople).slice(0, 12).map((p) => p.name);
    const at = Date.now();
    // A few, then hundreds at once (in one task): half come online, all write.
    for (const [from, count] of [[1_990, 3], [1_000, 100], [500, 600]] as const) {
      for (let n = from; n < from + count; n++) send({ ...fake.people[n]!, online: n % 2 === 0, last: { text: `hello ${n}`, direction: 'in', at: at + n, flagged: false } });
      await waitFor(() => expect(names().slice(0, 12)).toEqual(expected()));
    }
    expect(names()[0]).toBe('Colleague 01992');
    // Everyone once more, unchanged but for one who writes again: the order holds, and they come first.
    for (const p of [...now.values()]) send(p);
    send({ ...now.get(fake.people[1_500]!.id)!, online: true, last: { text: 'again', direction: 'in', at: at + 5_000, flagged: false } });
    await waitFor(() => expect(names()[0]).toBe('Colleague 01500'));
    expect(names().slice(0, 12)).toEqual(expected());
  });
});
