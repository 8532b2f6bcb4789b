import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** Where and how layertap reaches the Hub; read from the environment as huggingface_hub reads it. */
export interface HubSettings {
  /** the Hub's base URL, without a trailing '/'. @defaultValue HF_ENDPOINT, else https://huggingface.co */
  endpoint: string;
  /** an access token (hf_...). @defaultValue HF_TOKEN, else the token file `huggingface-cli login` wrote (HF_TOKEN_PATH, else $HF_HOME/token) */
  token?: string;
  /** the cache folder, in huggingface_hub's layout. @defaultValue HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub */
  cacheDir: string;
  /** serve from the cache only, never ask the Hub. @defaultValue HF_HUB_OFFLINE is 1, true, yes or on */
  offline: boolean;
}

/** The default Hub. */
export const HUB_ENDPOINT = 'https://huggingface.co';

/** huggingface_hub's reading of a boolean variable. */
function truthy(value: string | undefined): boolean {
  return value !== undefined && ['1', 'true', 'yes', 'on'].includes(value.trim().toLowerCase());
}

function hfHome(env: NodeJS.ProcessEnv): string {
  return env['HF_HOME'] ?? join(env['XDG_CACHE_HOME'] ?? join(homedir(), '.cache'), 'huggingface');
}

function tokenFromFile(env: NodeJS.ProcessEnv): string | undefined {
  try {
    const token = readFileSync(env['HF_TOKEN_PATH'] ?? join(hfHome(env), 'token'), 'utf8').trim();
    return token === '' ? undefined : token;
  } catch {
    return undefined;
  }
}

/** The Hub settings of `env`: HF_ENDPOINT, HF_TOKEN (or the login's token file), HF_HUB_CACHE / HF_HOME, HF_HUB_OFFLINE. */
export function hubSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): HubSettings {
  const token = env['HF_TOKEN']?.trim() || tokenFromFile(env);
  // the order of huggingface_hub (and of @huggingface/hub's getHFHubCachePath), so that a Python user's cache is shared
  const cacheDir = env['HF_HUB_CACHE'] ?? env['HUGGINGFACE_HUB_CACHE'] ?? join(hfHome(env), 'hub');
  return {
    endpoint: (env['HF_ENDPOINT']?.trim() || HUB_ENDPOINT).replace(/\/+$/, ''),
    ...(token ? { token } : {}),
    cacheDir,
    offline: truthy(env['HF_HUB_OFFLINE']),
  };
}
