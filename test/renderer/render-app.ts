// Renders the whole window over a FakeParley, the way main.ts does.
import { render } from '@testing-library/svelte';
import { userEvent } from '@testing-library/user-event';
import { tick } from 'svelte';
import App from '../../renderer/src/App.svelte';
import { AppState } from '../../renderer/src/state/app.svelte.ts';
import { FakeParley } from './fake-parley.ts';

export async function renderApp(fake = new FakeParley()) {
  const setup = renderStarting(fake);
  await setup.started;
  await tick();
  return setup;
}

/** The window while it starts: `started` settles once its first answers are in. */
export function renderStarting(fake = new FakeParley()) {
  const app = new AppState(fake.api);
  const user = userEvent.setup();
  const view = render(App, { props: { app } });
  return { app, fake, user, started: app.start(), ...view };
}

/** Opens a conversation by clicking the person in the list. */
export async function openChat(setup: Awaited<ReturnType<typeof renderApp>>, name: string): Promise<void> {
  const row = setup.getAllByTestId('person').find((el) => el.querySelector('[data-testid="person-name"]')?.textContent === name);
  if (!row) throw new Error(`no person called ${name}`);
  await setup.user.click(row);
  await tick();
}
