import type { BackendName, SinkFormat, SourceType, TapConfig } from './schema.js';

/** Preprocessing with every default filled in from the model's input. */
export interface ResolvedPreprocess {
  /** [height, width] */
  size: [number, number];
  fit: 'cover' | 'contain' | 'fill';
  layout: 'nhwc' | 'nchw';
  /** 1 (grayscale) or 3 (RGB) */
  channels: 1 | 3;
  /** per channel: value = (pixel / 255 - mean) / std; range [a, b] is mean = -a/(b-a), std = 1/(b-a) */
  mean: number[];
  std: number[];
}

/** A tap with its column name decided. */
export interface ResolvedTap extends TapConfig {
  as: string;
}

/**
 * A job after validation and inspection of its model and source: absolute locations, every
 * default decided, and the fingerprint. This is what travels in queue job data (plain JSON).
 */
export interface ResolvedJob {
  name: string;
  /** idColumn/inputColumn for tables; maxLineBytes/maxRowBytes when the job sets them; endpoint/region/forcePathStyle for s3:// */
  source: { uri: string; type: SourceType; extensions?: string[]; idColumn?: string; inputColumn?: string; maxLineBytes?: number; maxRowBytes?: number } & S3Connection;
  /** intraOpThreads: ONNX threads per forward pass, when the job sets it */
  model: { uri: string; backend: BackendName; format: string; intraOpThreads?: number };
  /** null for tensor sources (.npy), which feed the model as they are */
  preprocess: ResolvedPreprocess | null;
  taps: ResolvedTap[];
  batchSize: number;
  shardSize: number;
  sink: { uri: string; format: SinkFormat } & S3Connection;
  attempts: number;
  /** carry unchanged rows over from the latest committed run with this fingerprint */
  incremental: boolean;
  /** 'fail': a failed shard fails the run; 'partial': the run keeps its other shards */
  onShardFailure: 'fail' | 'partial';
  /** hash of model weights + topology + preprocess + taps (16 hex chars) */
  fingerprint: string;
  /** the per-row input shape the model takes, e.g. [224, 224, 3] */
  inputShape: number[];
}

/** Connection settings of an S3-compatible store, as given in the job (unset: the AWS environment). */
export interface S3Connection {
  endpoint?: string;
  region?: string;
  forcePathStyle?: boolean;
}
