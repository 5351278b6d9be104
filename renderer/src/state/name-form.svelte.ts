// The display-name field, on first run and in Settings.
export class NameForm {
  name = $state('');
  error = $state<string | null>(null);
  busy = $state(false);
  saved = $state(false);

  constructor(private readonly save: (name: string) => Promise<string | null>) {}

  reset(current: string): void {
    this.name = current;
    this.error = null;
    this.saved = false;
  }

  async submit(): Promise<boolean> {
    this.busy = true;
    this.saved = false;
    this.error = await this.save(this.name);
    this.busy = false;
    this.saved = this.error === null;
    return this.saved;
  }
}
