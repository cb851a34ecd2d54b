/**
 * At most `size` callers run at once; the others wait in arrival order, and each that ends hands its
 * slot to the first waiting (so `running` stays at `size` while any wait).
 */
export class Semaphore {
  private count = 0;
  private readonly queue: (() => void)[] = [];

  constructor(private readonly size: number) {}

  /** How many hold a slot now. */
  get running(): number {
    return this.count;
  }

  /** How many wait for a slot. */
  get waiting(): number {
    return this.queue.length;
  }

  /** Whether every slot is held: acquire() would wait. */
  get full(): boolean {
    return this.count >= this.size;
  }

  /** Resolves when the caller holds a slot: at once in a free one, else when release() hands one over. Each acquire() needs one release(). */
  acquire(): Promise<void> {
    if (this.full) return new Promise((resolve) => this.queue.push(resolve));
    this.count++;
    return Promise.resolve();
  }

  release(): void {
    const next = this.queue.shift();
    if (next) next();
    else this.count--;
  }

  /** Runs `fn` in a slot (started at once, without a tick, when one is free) and releases it however `fn` ends. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (!this.full) this.count++;
    else await new Promise<void>((resolve) => this.queue.push(resolve));
    try {
      return await fn();
    } finally {
      this.release();
    }
  }
}
