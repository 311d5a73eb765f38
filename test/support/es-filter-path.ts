// The `_bulk` stand-in's response filtering (test/support/es-server.ts).
/**
 * Response filtering as Elasticsearch does it (`filter_path`, common options of the REST API,
 * https://www.elastic.co/guide/en/elasticsearch/reference/current/common-options.html#common-options-response-filtering):
 * comma-separated dotted paths, `*` matching one field name; arrays are looked through (the path applies to
 * each element); what the filter empties (an object with no kept field, an array with no kept element) is
 * left out, so `filter_path=items.*.error` answers only the items that failed, and nothing when none did.
 */
export function filtered(value: unknown, filterPath: string): unknown {
  const paths = filterPath.split(',').map((p) => p.trim().split('.'));
  const keep = (v: unknown, rest: string[][]): unknown => {
    if (rest.some((p) => p.length === 0)) return v;
    if (Array.isArray(v)) {
      const kept = v.map((e) => keep(e, rest)).filter((e) => e !== undefined);
      return kept.length > 0 ? kept : undefined;
    }
    if (v === null || typeof v !== 'object') return undefined;
    const out: Record<string, unknown> = {};
    for (const [key, child] of Object.entries(v)) {
      const next = rest.filter((p) => p[0] === '*' || p[0] === key).map((p) => p.slice(1));
      if (next.length === 0 || child === undefined) continue;
      const k = keep(child, next);
      if (k !== undefined) out[key] = k;
    }
    return Object.keys(out).length > 0 ? out : undefined;
  };
  return keep(value, paths);
}
