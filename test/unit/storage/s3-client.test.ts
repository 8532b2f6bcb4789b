import { describe, expect, it } from 'vitest';
import { s3Error } from '../../../src/storage/s3-client.js';
import { FieldError, isPermanent, ModelLoadError, StorageError } from '../../../src/types/errors.js';

/** An error shaped as the AWS SDK's service exceptions are: a name (the S3 code) and the HTTP status. */
function sdkError(name: string, status?: number): Error {
  const err = new Error(name);
  err.name = name;
  if (status !== undefined) Object.assign(err, { $metadata: { httpStatusCode: status } });
  return err;
}

// Whether a shard is tried again is decided on the error's class and flag, never its message.
describe('retryable and permanent errors', () => {
  it('says an S3 request may pass on another attempt after throttling, server errors and network faults', () => {
    for (const err of [
      sdkError('SlowDown', 503),
      sdkError('InternalError', 500),
      sdkError('RequestTimeout', 408),
      Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }),
    ]) {
      const e = s3Error(err, 'PutObject s3://b/k', { endpoint: 'http://127.0.0.1:9000' });
      expect(e).toBeInstanceOf(StorageError);
      expect(e.retryable, err.name).toBe(true);
      expect(isPermanent(e)).toBe(false);
      expect(e.cause).toBe(err);
    }
  });

  it('says it will not after denied access, a missing bucket or key, or a bad request', () => {
    for (const err of [sdkError('AccessDenied', 403), sdkError('NoSuchBucket', 404), sdkError('NoSuchKey', 404), sdkError('InvalidArgument', 400)]) {
      const e = s3Error(err, 'GetObject s3://b/k', { endpoint: 'http://127.0.0.1:9000' });
      expect(e.retryable, err.name).toBe(false);
      expect(isPermanent(e)).toBe(true);
    }
    expect(s3Error(sdkError('AccessDenied', 403), 'GetObject s3://b/k', { endpoint: 'http://127.0.0.1:9000' }).message).toBe(
      'GetObject s3://b/k failed at http://127.0.0.1:9000 (HTTP 403 AccessDenied)',
    );
  });

  it('keeps a field error and a model that does not load apart from plain errors', () => {
    const f = new FieldError('source.idColumn', "no column 'sku' in items.parquet");
    expect(f.message).toBe("source.idColumn: no column 'sku' in items.parquet");
    expect(f.field).toBe('source.idColumn');
    expect(isPermanent(new ModelLoadError('./m.onnx', 'model file not found'))).toBe(true);
    expect(new ModelLoadError('./m.onnx', 'model file not found').message).toBe('model load failed: ./m.onnx: model file not found');
    expect(isPermanent(new Error('anything'))).toBe(false);
  });
});
