import { createHash, randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { CreateMultipartUploadCommand, ListMultipartUploadsCommand, UploadPartCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Sink } from '../../src/storage/index.js';
import { startS3Server, testBucket, type S3TestServer } from '../helpers/s3.js';

const MiB = 1024 * 1024;

describe('S3Sink against s3rver', () => {
  let s3: S3TestServer;
  const bucket = testBucket('sink');

  beforeAll(async () => {
    s3 = await startS3Server([bucket]);
  });
  afterAll(async () => {
    await s3?.close();
  });

  const sink = (prefix: string, extra: { partSize?: number; queueSize?: number; pageSize?: number } = {}) =>
    new S3Sink(`s3://${bucket}/${prefix}`, { endpoint: s3.endpoint, ...extra });

  it('stores keys with spaces, unicode, + and # literally, and lists them back', async () => {
    const out = sink('odd root/sub+dir');
    const names = ['a b.arrow', 'ü-名前.json', 'plus+sign.txt', 'hash#tag.txt', 'pct%20.txt', "quote's & amp.txt", 'deep/er/x y.bin'];
    for (const [i, name] of names.entries()) {
      const uri = await out.put(`odd/${name}`, `content ${i}`);
      expect(uri).toBe(`s3://${bucket}/odd root/sub+dir/odd/${name}`);
    }
    // a streamed writer goes to the same literal key
    const w = await out.createWriter('odd/written by writer #1.arrow');
    await w.write(Buffer.from('streamed'));
    expect(await w.commit()).toEqual({ uri: `s3://${bucket}/odd root/sub+dir/odd/written by writer #1.arrow`, bytes: 8 });

    const expected = [...names.map((n) => `odd/${n}`), 'odd/written by writer #1.arrow'].sort();
    expect(await out.list('odd/')).toEqual(expected);
    expect(await s3.keys(bucket, 'odd root/')).toEqual(expected.map((k) => `odd root/sub+dir/${k}`));
    for (const [i, name] of names.entries()) {
      expect(await out.exists(`odd/${name}`)).toBe(true);
      expect(Buffer.from((await out.get(`odd/${name}`))!).toString()).toBe(`content ${i}`);
    }
    expect(await out.exists('odd/a b.arrow2')).toBe(false);
    expect(await out.get('odd/missing')).toBeNull();
    // string-prefix semantics, as LocalSink.list
    expect(await out.list('odd/p')).toEqual(['odd/pct%20.txt', 'odd/plus+sign.txt']);
    expect(() => out.resolve('../escape')).toThrow(/not a plain relative key/);
  });

  it('lists every page of a long listing', async () => {
    const out = new S3Sink(`s3://${bucket}/many`, { endpoint: s3.endpoint, pageSize: 10 });
    const keys = Array.from({ length: 25 }, (_, i) => `k/${String(i).padStart(3, '0')}`);
    await Promise.all(keys.map((k) => out.put(k, k)));
    expect(await out.list('k/')).toEqual(keys); // three pages of at most 10
  });

  it('uploads a large part in several pieces and the object is whole', async () => {
    const out = sink('big', { partSize: 5 * MiB, queueSize: 2 });
    const data = randomBytes(12 * MiB + 123);
    const t0 = performance.now();
    const w = await out.createWriter('part-00000.arrow');
    for (let off = 0; off < data.length; off += 256 * 1024) await w.write(data.subarray(off, Math.min(off + 256 * 1024, data.length)));
    const { bytes } = await w.commit();
    const seconds = (performance.now() - t0) / 1000;
    expect(bytes).toBe(data.length);
    const back = await out.get('part-00000.arrow');
    expect(sha(back!)).toBe(sha(data));
    expect(await s3.pendingUploads(bucket)).toEqual([]);
    console.log(`s3 multipart commit: ${(data.length / MiB).toFixed(1)} MiB in 3 pieces, ${seconds.toFixed(2)} s`);
  });

  it('an upload aborted mid-way leaves no object and no multipart upload', async () => {
    const out = sink('interrupted', { partSize: 5 * MiB, queueSize: 2 });
    const key = 'run/part-00003.arrow';
    const objectKey = `interrupted/${key}`;
    const w = await out.createWriter(key);
    const chunk = randomBytes(256 * 1024);
    for (let i = 0; i < 48; i++) await w.write(chunk); // 12 MiB: two full pieces handed to the store
    // wait (bounded) until the store holds the upload and at least one uploaded piece
    const deadline = Date.now() + 10_000;
    let pending = await s3.pendingUploads(bucket);
    let pieces = 0;
    while (Date.now() < deadline) {
      pending = await s3.pendingUploads(bucket);
      const id = pending.find((p) => p.key === objectKey)?.uploadId;
      pieces = id ? (await readdir(join(s3.dir, bucket, '._S3rver_uploads', id))).filter((f) => /^\d+$/.test(f)).length : 0;
      if (pieces > 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(pending.map((p) => p.key)).toEqual([objectKey]);
    expect(pieces).toBeGreaterThan(0);
    const listed = await s3.client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: 'interrupted/' }));
    expect((listed.Uploads ?? []).map((u) => u.Key)).toEqual([objectKey]);

    const t0 = performance.now();
    await w.abort();
    const abortMs = performance.now() - t0;
    // right after abort() resolves: nothing visible, nothing pending
    expect(await out.exists(key)).toBe(false);
    expect(await s3.keys(bucket, 'interrupted/')).toEqual([]);
    expect(await s3.pendingUploads(bucket)).toEqual([]);
    const after = await s3.client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: 'interrupted/' }));
    expect(after.Uploads ?? []).toEqual([]);
    await expect(w.write(chunk)).rejects.toThrow(/writer is aborted/);
    console.log(`s3 interrupted upload: ${pieces} piece(s) stored before abort; abort took ${abortMs.toFixed(0)} ms; pending uploads after: 0`);

    // the same key can be written again and holds only the new bytes
    const again = await out.createWriter(key);
    await again.write(Buffer.from('fresh'));
    await again.commit();
    expect(Buffer.from((await out.get(key))!).toString()).toBe('fresh');
  });

  it('cleanup aborts uploads a crashed writer left under the prefix, and only those', async () => {
    const out = sink('crashed');
    const start = async (key: string) => {
      const { UploadId } = await s3.client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
      await s3.client.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: 1, Body: randomBytes(1024) }));
    };
    await start('crashed/ds/fp/run1/part-00000.arrow');
    await start('crashed/ds/fp/run1/part-00001.arrow');
    await start('crashed/ds/fp/run2/part-00000.arrow');
    expect((await s3.pendingUploads(bucket)).length).toBe(3);
    await out.cleanup('ds/fp/run1');
    expect((await s3.pendingUploads(bucket)).map((p) => p.key)).toEqual(['crashed/ds/fp/run2/part-00000.arrow']);
    await out.cleanup('ds/fp/run2', { olderThanMs: 60_000 }); // too young: a live writer's upload is spared
    expect((await s3.pendingUploads(bucket)).length).toBe(1);
    await out.cleanup('');
    expect(await s3.pendingUploads(bucket)).toEqual([]);
  });

  it('check(dataset) puts and deletes a probe object under the dataset: the bucket is left as it was', async () => {
    const out = sink('probe-root');
    await out.check('products');
    expect(await out.list('')).toEqual([]);
    // a bucket that is not there is named before any probe
    await expect(new S3Sink('s3://no-such-bucket-y/out', { endpoint: s3.endpoint }).check('products')).rejects.toThrow(
      /bucket 'no-such-bucket-y' does not exist/,
    );
  });

  it('names the bucket when it does not exist', async () => {
    const missing = new S3Sink('s3://no-such-bucket-x/out', { endpoint: s3.endpoint });
    await expect(missing.check()).rejects.toThrow(`sink.uri: bucket 'no-such-bucket-x' does not exist at ${s3.endpoint}`);
    await expect(missing.get('a.json')).rejects.toThrow(/GetObject s3:\/\/no-such-bucket-x\/out\/a\.json failed .*NoSuchBucket/);
    await expect(missing.put('a.json', '{}')).rejects.toThrow(
      /PutObject s3:\/\/no-such-bucket-x\/out\/a\.json failed at http:\/\/127\.0\.0\.1:\d+ \(HTTP 404 NoSuchBucket/,
    );
    const w = await missing.createWriter('part-00000.arrow');
    await w.write(Buffer.from('x'));
    await expect(w.commit()).rejects.toThrow(/cannot upload s3:\/\/no-such-bucket-x\/out\/part-00000\.arrow: .*NoSuchBucket/);
    expect(await sink('ok').check()).toBeUndefined();
  });

  it('says when the credentials are refused', async () => {
    const saved = process.env.AWS_ACCESS_KEY_ID;
    // s3rver checks the access key (it does not verify SigV4 signatures): an unknown key is refused
    process.env.AWS_ACCESS_KEY_ID = 'NOT-A-KNOWN-KEY';
    try {
      // another region: a client of its own, which reads the credentials afresh
      const denied = new S3Sink(`s3://${bucket}/x`, { endpoint: s3.endpoint, region: 'eu-west-3' });
      await expect(denied.check()).rejects.toThrow(`sink.uri: access to bucket '${bucket}' at ${s3.endpoint} is denied (HTTP 403)`);
    } finally {
      process.env.AWS_ACCESS_KEY_ID = saved;
    }
  });
});

function sha(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}
