import { createHash } from 'node:crypto';
import type { ModelFiles } from './model-files.js';

/** JSON with object keys sorted at every level, so equal content always gives equal text. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v ?? null)).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** sha256 (hex) of the topology, the weight specs and every weight file's bytes in manifest order. */
export function contentHash(files: ModelFiles): string {
  // The specs count because a changed quantization scale changes the weights without changing a
  // byte; shard names and boundaries do not, because re-sharding changes nothing.
  const hash = createHash('sha256');
  hash.update(canonicalJson(files.json.modelTopology));
  hash.update('\n');
  // a GraphModel's initializer graph (hash tables and the like) is part of what it computes
  if (files.json.modelInitializer !== undefined) {
    hash.update(canonicalJson(files.json.modelInitializer));
    hash.update('\n');
  }
  hash.update(canonicalJson(files.json.weightsManifest.flatMap((g) => g.weights)));
  hash.update('\n');
  // no separators between files: the same bytes split into different shards are the same weights
  for (const bytes of files.weightFiles) hash.update(bytes);
  return hash.digest('hex');
}
