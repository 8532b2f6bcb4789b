import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { Context, MiddlewareHandler } from 'hono';
import { getCookie, setCookie } from 'hono/cookie';

/** Host names every dashboard answers to. */
export const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '[::1]'] as const;

/** Shortest token accepted: it is all that stands between the network and the queue. */
export const MIN_TOKEN_LENGTH = 16;

/** A fresh random token (32 URL-safe characters). */
export function generateToken(): string {
  return randomBytes(24).toString('base64url');
}

/**
 * The name part of a Host header or URL authority, lower case, IPv6 in brackets:
 * 'Example.COM:3000' -> 'example.com', '[::1]:3000' -> '[::1]', '::1' -> '[::1]'.
 */
export function hostName(authority: string): string {
  const a = authority.trim().toLowerCase();
  if (a.startsWith('[')) {
    const end = a.indexOf(']');
    return end < 0 ? a : a.slice(0, end + 1);
  }
  if (isIP(a) === 6) return `[${a}]`;
  const colon = a.indexOf(':');
  return colon < 0 ? a : a.slice(0, colon);
}

/** The port of a Host header, or '' when it names none. */
function hostPort(authority: string): string {
  const a = authority.trim();
  const m = a.startsWith('[') ? /\]:(\d+)$/.exec(a) : /:(\d+)$/.exec(a);
  return m ? m[1]! : '';
}

/**
 * A name the dashboard may be reached by, as `--allow-host` takes it (a port is ignored); throws
 * when it is not a host name or address.
 */
export function allowedHostName(value: string): string {
  const name = hostName(value);
  const bare = name.replace(/^\[|\]$/g, '');
  if (isIP(bare) === 0 && !/^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$/.test(name)) {
    throw new Error(`'${value}' is not a host name`);
  }
  return name;
}

/** Who may do what; see {@link accessGuard}. */
export interface AccessPolicy {
  /** names the Host header may carry (as {@link hostName} gives them) */
  allowedHosts: ReadonlySet<string>;
  /** null: no token is asked for */
  token: string | null;
  /** 'all': every request but the health check needs the token; 'actions': requests that change something */
  tokenFor: 'all' | 'actions';
  /** requests other than GET and HEAD (Bull Board's retry, clean, pause, add, ...) */
  allowActions: boolean;
  /** name of the cookie that carries the token in a browser */
  cookie: string;
}

/** Health checks (container, load balancer) go without a token: the answer is 'ok' and nothing else. */
const HEALTH_PATH = '/healthz';

/** A refusal: a status and a short plain-text reason. */
function refuse(c: Context, status: 401 | 403, reason: string, headers: Record<string, string> = {}): Response {
  return c.text(`layertap dashboard: ${reason}\n`, status, headers);
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** Compare without leaking through timing how much of a guess was right. */
function sameToken(given: string, token: string): boolean {
  return timingSafeEqual(digest(given), digest(token));
}

/** True when `url` (an Origin or Referer) is http(s) on the host and port the request was sent to. */
function sameOrigin(url: string, host: string): boolean {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return false; // 'null' (sandboxed frames, some redirects) and anything unparsable
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return false;
  const defaultPort = u.protocol === 'https:' ? '443' : '80';
  return hostName(u.host) === hostName(host) && (u.port || defaultPort) === (hostPort(host) || defaultPort);
}

/**
 * Why a state-changing request is cross-origin, or null when it is not. Browsers send Origin
 * with every such request (Referer where an old one does not); a request with neither does not
 * come from a page, so there is no site to forge it, and the token decides.
 */
function crossOrigin(origin: string | undefined, referer: string | undefined, host: string): string | null {
  if (origin !== undefined) return sameOrigin(origin, host) ? null : `Origin ${origin}`;
  if (referer !== undefined) {
    if (sameOrigin(referer, host)) return null;
    let from = '(unreadable)';
    try {
      from = new URL(referer).origin;
    } catch {
      // keep the placeholder: the reason must not echo an arbitrary header
    }
    return `Referer from ${from}`;
  }
  return null;
}

function bearer(header: string | undefined): string | undefined {
  const m = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m ? m[1] : undefined;
}

const TOKEN_REQUIRED = 'a token is required: open the URL with ?token= printed at start, or send Authorization: Bearer <token>';

/**
 * Middleware in front of every route of the dashboard, in this order:
 * 1. the Host header must be an allowed name (a page on another site that rebinds its DNS name
 *    to this address sends its own name), 403;
 * 2. a request other than GET/HEAD must come from the dashboard's own origin (a cross-site form
 *    or `text/plain` fetch needs no preflight), 403, and actions must be on, 403;
 * 3. the token, where the policy asks for it, as `Authorization: Bearer`, or the cookie that
 *    `?token=` sets (HttpOnly, SameSite=Strict: other sites' requests do not carry it), 401.
 * Every response also refuses to be framed by another page (clickjacking of the buttons).
 */
export function accessGuard(policy: AccessPolicy): MiddlewareHandler {
  return async (c, next) => {
    const host = c.req.header('host');
    if (!host) return refuse(c, 403, 'a request without a Host header is refused');
    const name = hostName(host);
    if (!policy.allowedHosts.has(name)) return refuse(c, 403, `Host '${name}' is not allowed (add it with --allow-host ${name})`);

    const changes = c.req.method !== 'GET' && c.req.method !== 'HEAD';
    if (changes) {
      const why = crossOrigin(c.req.header('origin'), c.req.header('referer'), host);
      if (why) return refuse(c, 403, `cross-origin request refused (${why})`);
      if (!policy.allowActions) return refuse(c, 403, 'read-only: queue actions are off (start it with --allow-actions)');
    }

    if (policy.token !== null) {
      const login = changes ? undefined : c.req.query('token');
      if (login !== undefined) {
        if (!sameToken(login, policy.token)) return refuse(c, 401, 'wrong token');
        setCookie(c, policy.cookie, policy.token, { path: '/', httpOnly: true, sameSite: 'Strict' });
        // the token leaves the address bar (and the history) at once; the path stays on this
        // site: '//evil.example/x' as a Location would be another host
        const url = new URL(c.req.url);
        url.searchParams.delete('token');
        return c.redirect(`/${url.pathname.replace(/^[/\\]+/, '')}${url.search}`, 303);
      }
      if (c.req.path !== HEALTH_PATH && (changes || policy.tokenFor === 'all')) {
        const given = bearer(c.req.header('authorization')) ?? getCookie(c, policy.cookie);
        if (given === undefined) return refuse(c, 401, TOKEN_REQUIRED, { 'WWW-Authenticate': 'Bearer realm="layertap dashboard"' });
        if (!sameToken(given, policy.token)) return refuse(c, 401, 'wrong token');
      }
    }
    await next();
  };
}

/** Headers on every response: no framing by other pages, no content sniffing, no Referer to other sites. */
export const securityHeaders: MiddlewareHandler = async (c, next) => {
  await next();
  c.res.headers.set('X-Frame-Options', 'DENY');
  c.res.headers.set('X-Content-Type-Options', 'nosniff');
  c.res.headers.set('Referrer-Policy', 'same-origin');
};
