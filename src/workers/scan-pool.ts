import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { ownModule } from '../types/own-module.js';
import { threadExecArgv } from './exec-argv.js';
import type { Layout, LayoutInput } from './map-layout.js';
import type { FindResult, FindTask, NearestResult, NearestTask, RowsResult, RowsTask } from './scan-protocol.js';

/** Options for {@link ScanPool}. */
export interface ScanPoolOptions {
  /** threads reading part files at once. @defaultValue the number of cores */
  threads?: number;
}

function scanEntry(): string {
  const entry = fileURLToPath(ownModule('workers/scan-thread.js'));
  if (!existsSync(entry)) throw new Error(`scan thread entry not found at ${entry} nor in dist/; run 'npm run build'`);
  return entry;
}

/** A Piscina pool of threads that each read one committed part file per task: searches use every core. */
export class ScanPool {
  private readonly piscina: Piscina;
  readonly threads: number;

  constructor(opts: ScanPoolOptions = {}) {
    const threads = opts.threads ?? availableParallelism();
    if (!Number.isInteger(threads) || threads < 1) throw new Error(`options.threads must be a positive integer, got ${threads}`);
    this.threads = threads;
    this.piscina = new Piscina({ filename: scanEntry(), execArgv: threadExecArgv(), minThreads: threads, maxThreads: threads, idleTimeout: 60_000 });
  }

  find(task: Omit<FindTask, 'kind'>): Promise<FindResult> {
    return this.piscina.run({ kind: 'find', ...task }) as Promise<FindResult>;
  }

  nearest(task: Omit<NearestTask, 'kind'>): Promise<NearestResult> {
    // the queries are small and shared by every part's task: copied, not transferred
    return this.piscina.run({ kind: 'nearest', ...task }) as Promise<NearestResult>;
  }

  rows(task: Omit<RowsTask, 'kind'>): Promise<RowsResult> {
    return this.piscina.run({ kind: 'rows', ...task }) as Promise<RowsResult>;
  }

  /** lay out unit rows on a 2-D map in a thread; `full` is transferred (detached here) */
  layout(input: LayoutInput): Promise<Layout> {
    return this.piscina.run({ kind: 'layout', ...input }, { transferList: [input.full.buffer as ArrayBuffer] }) as Promise<Layout>;
  }

  close(): Promise<void> {
    return this.piscina.destroy();
  }
}
