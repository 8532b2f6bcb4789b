import { readFile, realpath } from 'node:fs/promises';
import path from 'node:path';
import { readPartFile } from '../../sinks/read-arrow.js';
import type { RunManifest } from '../../sinks/manifest.js';
import { createSink } from '../../storage/registry.js';
import { SearchInputError } from '../../pipeline/search/errors.js';
import { openRun, type RunRef } from '../../pipeline/search/run-ref.js';
import type { RunRecord } from '../../pipeline/types.js';

/** An error row as the run page lists it. */
export interface ErrorRow {
  id: string | null;
  stage: string;
  message: string;
}

/** What the page of one run shows: its record, and for a committed run its manifest and first error rows. */
export interface RunDetail {
  record: RunRecord;
  /** the committed run, or null with the reason in `unavailable` */
  run: RunRef | null;
  unavailable: string | null;
  /** the first error rows of the run (at most `maxErrors`), from its errors files */
  errors: ErrorRow[];
  /** whether rows are image files of a local folder, so the page can show thumbnails */
  images: boolean;
}

/** Error rows shown on a run page. */
const MAX_ERRORS = 50;

/** The page data of a run from its record: its manifest when it is committed, and its first error rows. */
export async function loadRunDetail(record: RunRecord): Promise<RunDetail> {
  let run: RunRef | null = null;
  let unavailable: string | null = null;
  try {
    run = await openRun(record.outputUri);
  } catch (err) {
    if (!(err instanceof SearchInputError)) throw err;
    unavailable = err.message;
  }
  const errors: ErrorRow[] = [];
  if (run) {
    const sink = await createSink(run.sink);
    for (const f of run.manifest.errorFiles ?? []) {
      if (errors.length >= MAX_ERRORS) break;
      const bytes = await sink.get(f.split('/').pop()!);
      if (!bytes) continue;
      const t = await readPartFile(bytes);
      for (let r = 0; r < t.numRows && errors.length < MAX_ERRORS; r++) {
        const id = t.getChild('id')?.get(r) as string | null | undefined;
        errors.push({ id: id ?? null, stage: String(t.getChild('stage')?.get(r) ?? ''), message: String(t.getChild('message')?.get(r) ?? '') });
      }
    }
  }
  return { record, run, unavailable, errors, images: run !== null && imageFolder(run.manifest) !== null };
}

/** The local folder an image run read its files from, or null (tensors, text, tables, s3://). */
export function imageFolder(m: RunManifest): string | null {
  if (m.source?.type !== 'images' || /^[a-z][a-z0-9+.-]*:\/\//i.test(m.source.uri)) return null;
  return m.source.uri;
}

/**
 * The bytes of a row's image file in the run's source folder, or null when the run has no such
 * file. A row id is a path relative to that folder; one that leads out of it is refused.
 */
export async function sourceImage(m: RunManifest, id: string): Promise<Uint8Array | null> {
  const folder = imageFolder(m);
  if (folder === null) return null;
  try {
    const root = await realpath(folder);
    const file = await realpath(path.resolve(root, id));
    if (file !== root && !file.startsWith(root + path.sep)) return null;
    return await readFile(file);
  } catch {
    return null;
  }
}
