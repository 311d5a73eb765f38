/**
 * PostgreSQL's error messages quote the values that failed: `invalid input syntax for type integer: "abc"`,
 * `value "99999999999" is out of range for type integer`, `Key (email)=(jane@example.com) already exists`.
 * Those are the app's data (parameters, row values), so with parameter logging off pgsight's records carry
 * the message with them masked, and the SQLSTATE, never the values (object names, which PostgreSQL also
 * quotes, stay: `relation "users"`, `constraint "users_email_key"`).
 * https://www.postgresql.org/docs/current/protocol-error-fields.html
 */

/** A value PostgreSQL quotes at the end of a message, after a colon (`...: "abc"`). */
const TRAILING_VALUE = /: "(?:[^"]|""){0,4096}"$/;
/** `value "..." is out of range`, `value "..." too long`. */
const NAMED_VALUE = /\bvalue "(?:[^"]|""){0,4096}"/g;
/** `Key (columns)=(values)`, in unique and foreign-key violations. */
const KEY_VALUES = /\bKey \(((?:[^()]|\([^()]{0,256}\)){0,1024})\)=\((?:[^()]|\([^()]{0,256}\)){0,4096}\)/g;

export function maskErrorValues(message: string): string {
  return message
    .replace(TRAILING_VALUE, ': "?"')
    .replace(NAMED_VALUE, 'value "?"')
    .replace(KEY_VALUES, 'Key ($1)=(?)');
}
