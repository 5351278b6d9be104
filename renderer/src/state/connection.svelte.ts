// The link to a relay: hosting one, joining one, and what went wrong in words.
import type { AppStatus, HostInfo, ParleyApi, Result } from '../../../preload/contract.ts';
import { humanError, settle } from '../lib/errors.ts';
import { describeStatus, onOwnRelay } from '../lib/status-text.ts';

export const OFFLINE: AppStatus = { connection: { state: 'offline' }, hosting: null, sync: null };

export type Attempt = { kind: 'join'; address: string } | { kind: 'host' };

/** What went wrong with a command, in words; null when it worked (so an older error goes away). */
async function failure(request: Promise<Result<unknown>>): Promise<string | null> {
  const result = await settle(request);
  return result.ok ? null : humanError(result.error);
}

export class ConnectionState {
  status = $state.raw<AppStatus>(OFFLINE);
  /** What the person asked for on the connect screen, until it works or they give up. */
  attempt = $state<Attempt | null>(null);
  busy = $state(false);
  /** Commands that failed outright (port in use, bad address, …), by the form that sent them. */
  hostError = $state<string | null>(null);
  joinError = $state<string | null>(null);
  error = $state<string | null>(null);
  /** The connect screen's fields. */
  address = $state('');
  accessCode = $state('');
  openToNetwork = $state(false);
  /** A port typed on the connect screen; null means the one from Settings. */
  port = $state<number | null>(null);

  readonly line = $derived(describeStatus(this.status));
  readonly online = $derived(this.status.connection.state === 'online');
  readonly hosting = $derived<HostInfo | null>(this.status.hosting);
  /** Connected to the relay hosted here (not to a colleague's, joined while hosting). */
  readonly onOwnRelay = $derived(onOwnRelay(this.status));

  /** Why the join being attempted is not working (yet), in the relay's own words. */
  /** The refusal was about the access code, so that field is the one to fix. */
  readonly codeRejected = $derived(this.attempt?.kind === 'join' && this.status.connection.state === 'refused' && this.status.connection.code === 'E_ACCESS_CODE');

  readonly joinProblem = $derived.by((): { final: boolean; text: string } | null => {
    const attempt = this.attempt;
    const c = this.status.connection;
    if (attempt?.kind !== 'join' || c.state === 'offline' || c.state === 'online' || c.state === 'connecting') return null;
    if (c.state === 'refused') return { final: true, text: c.reason };
    return { final: false, text: c.attempt > 1 ? `${c.reason} Still trying (attempt ${c.attempt})…` : `${c.reason} Still trying…` };
  });

  /** 'status' events so far, to tell whether one came while the status was asked for. */
  private events = 0;

  constructor(
    private readonly api: ParleyApi,
    private readonly connected: () => void,
  ) {}

  /** The status as main reads it, unless a 'status' event arrived meanwhile (main sends events and answers in order, so that is newer). */
  async load(): Promise<void> {
    const asked = this.events;
    const result = await settle(this.api.status());
    if (result.ok && this.events === asked) this.apply(result.value);
  }

  /** A 'status' event. */
  changed(status: AppStatus): void {
    this.events++;
    this.apply(status);
  }

  apply(status: AppStatus): void {
    const wasOnline = this.online;
    this.status = status;
    if (!wasOnline && this.online && this.attempt?.kind === 'join') {
      this.attempt = null;
      this.connected();
    }
  }

  async host(port: number, open = this.openToNetwork): Promise<boolean> {
    this.busy = true;
    this.hostError = null;
    this.attempt = { kind: 'host' };
    const result = await settle(this.api.startHosting({ port, open }));
    this.busy = false;
    if (!result.ok) {
      this.attempt = null;
      this.hostError = humanError(result.error);
      return false;
    }
    this.attempt = null;
    this.status = { ...this.status, hosting: result.value };
    return true;
  }

  /** Fills the join form from a found or remembered relay. */
  choose(address: string): void {
    this.address = address;
    this.accessCode = '';
    this.joinError = null;
  }

  async join(address = this.address, accessCode = this.accessCode): Promise<boolean> {
    const target = address.trim();
    if (!target) {
      this.joinError = 'Enter the relay’s address, for example 192.168.1.20:47800.';
      return false;
    }
    this.busy = true;
    this.joinError = null;
    this.attempt = { kind: 'join', address: target };
    const code = accessCode.trim();
    const result = await settle(this.api.join(code ? { address: target, accessCode: code } : { address: target }));
    this.busy = false;
    if (!result.ok) {
      this.attempt = null;
      this.joinError = humanError(result.error);
      return false;
    }
    return true;
  }

  /** Gives up on a join attempt or leaves the relay. */
  async leave(): Promise<void> {
    this.attempt = null;
    this.error = await failure(this.api.leave());
  }

  async stopHosting(): Promise<void> {
    this.attempt = null;
    this.error = await failure(this.api.stopHosting());
  }

  async newCode(): Promise<void> {
    const result = await settle(this.api.newAccessCode());
    if (result.ok) this.status = { ...this.status, hosting: result.value };
    this.error = result.ok ? null : humanError(result.error);
  }

  clearError(): void {
    this.error = null;
    this.hostError = null;
    this.joinError = null;
  }
}
