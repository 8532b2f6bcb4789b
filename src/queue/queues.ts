import { Queue } from 'bullmq';
import { bullConnection, type QueueSettings } from './connection.js';

/**
 * BullMQ queues by name, made when first asked for and closed together: a client or worker
 * reaches the shared queues and the queues of runs that `layertap run` works alone through one.
 */
export class QueueSet {
  private readonly queues = new Map<string, Queue>();

  constructor(private readonly settings: QueueSettings) {}

  get<T = unknown>(name: string): Queue<T> {
    let q = this.queues.get(name);
    if (!q) {
      q = new Queue(name, { connection: bullConnection(this.settings.redisUrl), prefix: this.settings.prefix });
      // without a listener BullMQ prints every reconnect failure as a stack trace; calls still reject
      q.on('error', () => undefined);
      this.queues.set(name, q);
    }
    return q as unknown as Queue<T>;
  }

  /** Removes a queue and every job in it from Redis (the queues of a run worked alone, once it ended). */
  async drop(name: string): Promise<void> {
    const q = this.get(name);
    await q.obliterate({ force: true });
    this.queues.delete(name);
    await q.close();
  }

  async close(): Promise<void> {
    const all = [...this.queues.values()];
    this.queues.clear();
    await Promise.allSettled(all.map((q) => q.close()));
  }
}
