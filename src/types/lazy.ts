/**
 * A value loaded on first use and shared by every caller until reset; a failed load is
 * forgotten, so that the next use tries again (a file fixed, a store back) instead of failing
 * for good.
 */
export class Lazy<T> {
  private loading: Promise<T> | null = null;

  constructor(private readonly load: () => Promise<T>) {}

  get(): Promise<T> {
    if (!this.loading) {
      const loading = this.load();
      this.loading = loading;
      loading.catch(() => {
        if (this.loading === loading) this.loading = null;
      });
    }
    return this.loading;
  }

  /** Forgets the value: the next use loads it again. */
  reset(): void {
    this.loading = null;
  }
}
