import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ModelSpec } from '../types.js';
import { resolveHubModel, type HubModelOptions } from './resolve.js';

/**
 * A model spec of a Hub model as this host runs it: planning put the files in the Hub cache of
 * the host that planned, so a worker on another host (or with another HF_HOME) fetches the same
 * commit into its own cache, under the cache's lock, and reads its files there. A spec whose
 * files are here is returned as it is.
 */
export async function specHere(spec: ModelSpec, opts: Pick<HubModelOptions, 'settings' | 'fetch'> = {}): Promise<ModelSpec> {
  const hub = spec.hub;
  if (hub === undefined || existsSync(spec.uri)) return spec;
  const here = await resolveHubModel(`hf:${hub.repo}@${hub.sha}`, { ...opts, file: hub.file });
  // the planned snapshot folder: the model's path without the file's path in the repository
  const planned = spec.uri.endsWith(join(...hub.file.split('/'))) ? spec.uri.slice(0, spec.uri.length - join(...hub.file.split('/')).length) : null;
  const moved = (path: string) => (planned !== null && path.startsWith(planned) ? join(here.snapshot, path.slice(planned.length)) : path);
  const text = spec.text;
  return {
    ...spec,
    uri: here.model,
    ...(text
      ? {
          text: {
            ...text,
            spec: {
              ...text.spec,
              tokenizer: moved(text.spec.tokenizer),
              ...(text.spec.tokenizerConfig !== undefined ? { tokenizerConfig: moved(text.spec.tokenizerConfig) } : {}),
            },
          },
        }
      : {}),
  };
}
