import { execFileSync } from 'node:child_process';
import { closeSync, constants, openSync } from 'node:fs';

/** Makes a FIFO (named pipe) at `file`: opening it for reading waits until a writer comes. */
export function makeFifo(file: string): void {
  execFileSync('mkfifo', [file]);
}

/**
 * Lets a reader blocked on the FIFO go (a writer opens and closes it, so the reader sees the
 * end), so a test that fails does not leave a thread of the pool stuck. Without a reader it
 * does nothing.
 */
export function releaseFifo(file: string): void {
  try {
    closeSync(openSync(file, constants.O_WRONLY | constants.O_NONBLOCK));
  } catch {
    // ENXIO: nobody has it open for reading
  }
}

/** `work`, or a rejection saying `what` did not end within `ms`. */
export async function within<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not end within ${ms} ms`)), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
