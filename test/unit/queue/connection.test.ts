import { describe, expect, it } from 'vitest';
import { redactUrl, redisOptions } from '../../../src/queue/connection.js';

// A password in REDIS_URL never reaches a log line or an error, whether or not the URL parses.
describe('REDIS_URL redaction', () => {
  it('masks the password of a URL that parses', () => {
    expect(redactUrl('redis://user:s3cret@redis.internal:6380/2')).toBe('redis://user:***@redis.internal:6380/2');
    expect(redactUrl('redis://127.0.0.1:6379')).toBe('redis://127.0.0.1:6379');
  });

  it('masks everything before the last @ of a URL that does not parse', () => {
    expect(redactUrl('redis://:s3cret@redis.internal:port')).toBe('redis://***@redis.internal:port');
    expect(redactUrl('redis://user:s3c@ret@ho st:6379')).toBe('redis://***@ho st:6379');
    expect(redactUrl('redis//:s3cret@host')).toBe('***@host');
  });

  it('shows an unparsable URL without an @ only when it looks like a plain host', () => {
    expect(redactUrl('redis://:s3cret')).toBe('redis://***');
    expect(redactUrl('redis://host:6379x')).toBe('redis://***');
  });

  it('names the URL in the parse error without its password', () => {
    expect(() => redisOptions('redis://:s3cret@redis.internal:port')).toThrow(
      "REDIS_URL is not a URL: 'redis://***@redis.internal:port' (expected e.g. redis://127.0.0.1:6379)",
    );
    let message = '';
    try {
      redisOptions('redis://u:s3cret@ho st:1');
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).not.toContain('s3cret');
  });
});
