/** The normalizer with a cache per statement text, bounded in entries and in characters. */
import { type NormalizedQuery, normalizeQuery } from './normalize.js';

/** Longer statements are normalized every time rather than pinned in the cache. */
const MAX_CACHED_TEXT_LENGTH = 16 * 1024;

/** What the cache may hold in all, in characters of statement and normalized text: 32 Mi (64 MiB as UTF-16). */
export const QUERY_CACHE_MAX_CHARS = 32 * 1024 * 1024;

/** The characters an entry holds: its key, its normalized text, and a little for the rest. */
const charsOf = (sql: string, q: NormalizedQuery) => sql.length + q.text.length + 64;

/**
 * A normalizer with a least-recently-used cache keyed by the statement text, so a hot statement is scanned
 * once per process. Bounded in entries (`size`, 0 disables the cache) and in characters (`maxChars`): many
 * distinct long statements evict each other instead of growing the heap.
 */
export function createQueryNormalizer(
  size: number,
  maxChars: number = QUERY_CACHE_MAX_CHARS,
): (sql: string) => NormalizedQuery {
  const cache = new Map<string, NormalizedQuery>();
  let chars = 0;
  return (sql) => {
    const hit = cache.get(sql);
    if (hit) {
      cache.delete(sql);
      cache.set(sql, hit);
      return hit;
    }
    const result = normalizeQuery(sql);
    if (size > 0 && sql.length <= MAX_CACHED_TEXT_LENGTH) {
      chars += charsOf(sql, result);
      while (cache.size > 0 && (cache.size >= size || chars > maxChars)) {
        const [oldest, value] = cache.entries().next().value as [string, NormalizedQuery];
        cache.delete(oldest);
        chars -= charsOf(oldest, value);
      }
      cache.set(sql, result);
    }
    return result;
  };
}
