import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ImageDirSource, NpySource, createSource, inferSourceType, writeNpy } from '../../../src/sources/index.js';

let tmp: string;
beforeEach(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'layertap-srcfactory-'));
});
afterEach(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('createSource / inferSourceType', () => {
  it('infers images for a directory and npy for a .npy file', async () => {
    const dir = path.join(tmp, 'imgs');
    await mkdir(dir);
    const npy = path.join(tmp, 'x.NPY');
    await writeNpy(npy, new Float32Array(6), [3, 2]);
    expect(inferSourceType(dir)).toBe('images');
    expect(inferSourceType(npy)).toBe('npy');
    expect(inferSourceType(pathToFileURL(dir).href)).toBe('images');

    const images = await createSource({ uri: dir, extensions: ['png'] });
    expect(images).toBeInstanceOf(ImageDirSource);
    expect(images.uri).toBe(dir);
    const tensors = await createSource({ uri: npy });
    expect(tensors).toBeInstanceOf(NpySource);
    expect(await tensors.count()).toBe(3);
  });

  it('resolves relative uris to absolute paths', async () => {
    const src = await createSource({ uri: '.', type: 'images' });
    expect(src.uri).toBe(process.cwd());
  });

  it('names the missing path', async () => {
    const missing = path.join(tmp, 'nope');
    await expect(createSource({ uri: missing })).rejects.toThrow(`source.uri: no such file or directory: ${missing}`);
    expect(() => inferSourceType(missing)).toThrow(`source.uri: no such file or directory: ${missing}`);
  });

  it('lists the supported kinds for anything else', async () => {
    const csv = path.join(tmp, 'data.csv');
    await writeFile(csv, 'a,b\n');
    await expect(createSource({ uri: csv })).rejects.toThrow(/cannot tell what kind of dataset .*data\.csv.*directory of images.*\.npy file/);
    await expect(createSource({ uri: 'ftp://host/data' })).rejects.toThrow(/source\.uri: ftp:\/\/ is not a local path/);
  });

  it('checks an explicit type against the path', async () => {
    const npy = path.join(tmp, 'x.npy');
    await writeNpy(npy, new Float32Array(2), [2]);
    await expect(createSource({ uri: npy, type: 'images' })).rejects.toThrow(/type images needs a directory/);
    await expect(createSource({ uri: tmp, type: 'npy' })).rejects.toThrow(/type npy needs a \.npy file/);
  });
});
