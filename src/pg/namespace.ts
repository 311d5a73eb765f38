/**
 * `db.namespace` as OpenTelemetry's PostgreSQL conventions define it: the connection's schema qualified by
 * its database, `{database}|{schema}`, when that is known without asking the server, else the database alone.
 * The client knows the schema when the connection's startup options set `search_path` (pg's `options`, the
 * connection string's `?options=`, or `PGOPTIONS`): its first schema is where unqualified names resolve
 * first. `$user` (the default path's first entry) names a schema only if one exists for the role, which the
 * client cannot tell, so a path starting with it gives the database alone.
 */

/** The part of a pg Client read here. */
export interface NamespaceSource {
  database?: string | undefined;
  connectionParameters?: { options?: string | undefined } | undefined;
}

/** The first schema of a `search_path` set in startup options (`-c search_path=a,b` or `--search_path=a`). */
export function schemaFromOptions(options: string | undefined): string | undefined {
  if (!/search[-_]path/.test(options ?? '')) return undefined;
  // PostgreSQL splits the options at unescaped white space, `\` escaping the next character.
  const words =
    (options as string).match(/(?:\\.|[^\s\\])+/g)?.map((word) => word.replace(/\\(.)/g, '$1')) ?? [];
  let path: string | undefined;
  for (let i = 0; i < words.length; i++) {
    const word = words[i] as string;
    const setting =
      word === '-c'
        ? words[++i]
        : word.startsWith('-c')
          ? word.slice(2)
          : word.startsWith('--')
            ? word.slice(2)
            : undefined;
    const match = setting === undefined ? null : /^search[-_]path=(.*)$/s.exec(setting);
    if (match) path = match[1]; // the last setting wins, as the server applies them in order
  }
  // The first entry: a double-quoted identifier (`""` is a quote inside it) or a name up to the first comma.
  const first = /^\s*(?:"((?:[^"]|"")*)"|([^,]*))/.exec(path ?? '');
  // An unquoted name is folded to lower case, as the server folds it.
  const name = first?.[1] !== undefined ? first[1].replaceAll('""', '"') : first?.[2]?.trim().toLowerCase();
  return !name || name === '$user' ? undefined : name;
}

const namespaces = new WeakMap<object, string | undefined>();

/** The client's `db.namespace`, worked out once per client. */
export function namespaceOf(client: NamespaceSource): string | undefined {
  if (namespaces.has(client)) return namespaces.get(client);
  const schema = schemaFromOptions(client.connectionParameters?.options);
  const namespace =
    client.database === undefined ? undefined : schema ? `${client.database}|${schema}` : client.database;
  namespaces.set(client, namespace);
  return namespace;
}
