/**
 * Which key names hold secrets. A key is split into words (`DATABASE_PASSWORD`, `passwordConfirm`,
 * `x-api-key`, `signingKey`): it is secret when a word is a secret word (`password`, `tokens`, `auth`, `otp`,
 * ...), when two adjacent words name one (`api key`, `access key`, `session id`), or when a word run together
 * ends with a strong one (`pgpassword`, `authtoken`). It is innocent when its last word says it describes a
 * secret rather than holds one (`password_policy`, `token_count`, `passwordless_login_enabled`), or its first
 * word counts something (`max_tokens`). `secretary`, `tokenizer`, `author`, `monkey`, `keyboard` are no secret
 * words. The value check keeps a path under `PWD` (the shell's working directory, not a password).
 */

/** Whole words (after splitting) that hold a secret. Plurals are covered by `plural()`. */
const SECRET_WORDS = new Set([
  'password',
  'passwd',
  'pwd',
  'pass',
  'passphrase',
  'passcode',
  'secret',
  'token',
  'credential',
  'creds',
  'auth',
  'authorization',
  'otp',
  'totp',
  'cookie',
  'setcookie',
  'sid',
  'sessid',
  'sig',
  'signature',
  'jwt',
  'bearer',
  'apikey',
  'cvv',
  'cvc',
  'cvv2',
  'ssn',
  'pan',
  'pgpass',
  'privatekey',
  'secretkey',
  'accesskey',
  'signingkey',
  'encryptionkey',
  'accountkey',
  'masterkey',
  'cardnumber',
  'creditcard',
]);

/** Two adjacent words that together name a secret (`api_key`, `session-id`, `card number`). */
const SECRET_PAIRS = new Set([
  'api key',
  'access key',
  'private key',
  'secret key',
  'signing key',
  'encryption key',
  'account key',
  'master key',
  'shared key',
  'auth key',
  'session id',
  'session key',
  'connect sid',
  'card number',
  'credit card',
  'card no',
  'cc number',
  'security code',
  'social security',
]);

/** A word run together that ends with one of these is secret (`pgpassword`, `githubtoken`, `dbpass`). */
const STRONG_SUFFIXES = [
  'password',
  'passwd',
  'secret',
  'token',
  'apikey',
  'privatekey',
  'secretkey',
  'pgpass',
];

/** A last word that describes the secret instead of holding it. */
const DESCRIBING = new Set([
  'policy',
  'policies',
  'length',
  'len',
  'count',
  'enabled',
  'disabled',
  'required',
  'expiry',
  'expires',
  'expired',
  'expiration',
  'strength',
  'rules',
  'type',
  'format',
  'version',
  'ttl',
  'rotation',
  'changed',
  'updated',
  'created',
  'set',
  'present',
  'provided',
  'valid',
  'invalid',
  'field',
  'name',
  'names',
  'prefix',
  'algorithm',
  'alg',
  'url',
  'endpoint',
  'path',
  'file',
  'mode',
  'kind',
  'scheme',
  'method',
  'provider',
  'source',
  'location',
]);

/** A first word that counts or limits what follows (`max_tokens`, `num_tokens`). */
const COUNTING = new Set(['max', 'min', 'num', 'total', 'count', 'limit', 'n']);

const plural = (word: string) =>
  word.length > 3 && word.endsWith('s') && SECRET_WORDS.has(word.slice(0, -1)) ? word.slice(0, -1) : word;

/** `DATABASE_PASSWORD` → database, password; `passwordConfirm` → password, confirm; `x-api-key` → x, api, key. */
export function keyWords(key: string): string[] {
  return key
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter((w) => w.length > 0);
}

/** Whether a key's value is secret, by the key's name alone. */
export function isSecretKeyName(key: string, extra: ReadonlySet<string> = EMPTY): boolean {
  const words = keyWords(key);
  if (words.length === 0) return false;
  if (extra.size > 0 && extra.has(words.join(''))) return true;
  const last = words[words.length - 1] as string;
  if (words.length > 1 && (DESCRIBING.has(last) || COUNTING.has(words[0] as string))) return false;
  for (let i = 0; i < words.length; i++) {
    const word = plural(words[i] as string);
    if (SECRET_WORDS.has(word) || extra.has(word)) return true;
    if (i + 1 < words.length && SECRET_PAIRS.has(`${word} ${plural(words[i + 1] as string)}`)) return true;
    for (const suffix of STRONG_SUFFIXES)
      if (word.length > suffix.length && word.endsWith(suffix) && !word.startsWith('no')) return true;
  }
  return false;
}

const EMPTY: ReadonlySet<string> = new Set();

/** A value that is no secret whatever its key says: a path under `PWD` / `OLDPWD` (the shell's directories). */
export function isInnocentValue(key: string, value: unknown): boolean {
  return typeof value === 'string' && mayBeInnocent(key) && /^(?:\/|~|[A-Za-z]:\\)/.test(value);
}

/** Some string value of `key` is innocent (isInnocentValue): a shell's working directory. */
export function mayBeInnocent(key: string): boolean {
  const k = key.toLowerCase();
  return k === 'pwd' || k === 'oldpwd';
}
