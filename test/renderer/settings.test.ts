import { describe, expect, it } from 'vitest';
import { fireEvent, screen, within } from '@testing-library/svelte';
import { FakeParley } from './fake-parley.ts';
import { renderApp } from './render-app.ts';

describe('settings', () => {
  it('says when the hosting port is out of range, saves nothing then, and saves a port in range', async () => {
    const fake = new FakeParley();
    const { user } = await renderApp(fake);
    await user.click(screen.getByTestId('open-settings'));
    const port = screen.getByTestId('settings-port') as HTMLInputElement;
    await user.clear(port);
    await user.type(port, '80');
    await fireEvent.change(port);
    expect(within(screen.getByTestId('settings-dialog')).getByRole('alert').textContent).toContain('Choose a port from 1024 to 65535');
    expect(port.getAttribute('aria-invalid')).toBe('true');
    expect(fake.callsOf('updateSettings')).toEqual([]);

    await user.clear(port);
    await user.type(port, '47900');
    await fireEvent.change(port);
    expect(fake.callsOf('updateSettings')).toEqual([{ hostPort: 47900 }]);
    expect(screen.queryByTestId('settings-port-error')).toBeNull();
    expect(port.getAttribute('aria-invalid')).toBeNull();
  });
});
