import { writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hubSettingsFromEnv } from '../../../../src/models/hub/settings.js';
import { isCommitSha, isRepoPath, parseHubUri } from '../../../../src/models/hub/uri.js';
import { tempDir } from '../../../helpers/index.js';

describe('Hub model ids', () => {
  it('reads hf:ORG/NAME[@REVISION] and hf://, main by default', () => {
    expect(parseHubUri('hf:sentence-transformers/all-MiniLM-L6-v2')).toEqual({ repo: 'sentence-transformers/all-MiniLM-L6-v2', revision: 'main' });
    expect(parseHubUri('hf://BAAI/bge-small-en-v1.5@refs/pr/3')).toEqual({ repo: 'BAAI/bge-small-en-v1.5', revision: 'refs/pr/3' });
    expect(parseHubUri('hf:bert-base-uncased@v1.0')).toEqual({ repo: 'bert-base-uncased', revision: 'v1.0' });
    for (const bad of ['hf:', 'hf:a/b/c', 'hf:a/../b', 'hf:a/b@', 'hf:-a/b', 'hf:a/b@x y']) {
      expect(() => parseHubUri(bad), bad).toThrow(`'${bad}' is not a Hub model id; write hf:ORG/NAME or hf:ORG/NAME@REVISION (a branch, tag or commit)`);
    }
    expect(isCommitSha('0123456789abcdef0123456789abcdef01234567')).toBe(true);
    expect(isCommitSha('main')).toBe(false);
    expect(['onnx/model.onnx', 'model.onnx'].every(isRepoPath)).toBe(true);
    expect(['../x.onnx', '/etc/x', 'onnx//m.onnx', 'a/./b', 'a\\b'].some(isRepoPath)).toBe(false);
  });
});

describe('Hub settings from the environment, as huggingface_hub reads them', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  beforeAll(async () => {
    tmp = await tempDir('layertap-hub-settings-');
    await writeFile(join(tmp.dir, 'token'), 'hf_from_login\n');
  });
  afterAll(async () => {
    await tmp.remove();
  });

  it('defaults: huggingface.co, ~/.cache/huggingface/hub, online, no token', () => {
    expect(hubSettingsFromEnv({ HF_TOKEN_PATH: join(tmp.dir, 'none') })).toEqual({
      endpoint: 'https://huggingface.co',
      cacheDir: join(homedir(), '.cache', 'huggingface', 'hub'),
      offline: false,
    });
  });

  it('HF_ENDPOINT, HF_TOKEN before the login token file, HF_HUB_CACHE before HF_HOME before XDG_CACHE_HOME, HF_HUB_OFFLINE', () => {
    expect(hubSettingsFromEnv({ HF_ENDPOINT: 'https://hf-mirror.example/', HF_HOME: tmp.dir })).toEqual({
      endpoint: 'https://hf-mirror.example',
      token: 'hf_from_login',
      cacheDir: join(tmp.dir, 'hub'),
      offline: false,
    });
    expect(hubSettingsFromEnv({ HF_TOKEN: 'hf_env', HF_HOME: tmp.dir, HF_HUB_CACHE: '/srv/hf' })).toMatchObject({ token: 'hf_env', cacheDir: '/srv/hf' });
    expect(hubSettingsFromEnv({ XDG_CACHE_HOME: '/xdg', HF_TOKEN_PATH: join(tmp.dir, 'none') }).cacheDir).toBe('/xdg/huggingface/hub');
    for (const [value, offline] of [
      ['1', true],
      ['ON', true],
      ['true', true],
      ['yes', true],
      ['0', false],
      ['', false],
    ] as const) {
      expect(hubSettingsFromEnv({ HF_HUB_OFFLINE: value }).offline, value).toBe(offline);
    }
  });
});
