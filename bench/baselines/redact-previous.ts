// The redaction engine pgsight shipped before its rule table (transports/redact/): the baseline
// `npm run bench:redact` measures the current engine against, in the same run. Not used by the package.
/**
 * Secret redaction, run once per record in the transport's worker, before any output sees it.
 *
 * - By key name, at any depth (arrays included), case- and separator-insensitive: `Authorization`,
 *   `x-api-key`, `client_secret`, `refreshToken` all match; `monkey`, `author`, `tokenizer_version` do not.
 *   The whole value under such a key is replaced.
 * - By value pattern, inside every string (message, stack traces, SQL included): only the secret part of the
 *   string is replaced, the rest stays readable. Card numbers must pass the Luhn check.
 * - Bounded: deeper than `maxDepth`, wider than `maxKeys`, or longer than `maxStringLength` is cut, never
 *   passed on unscanned.
 */

export interface RedactOptions {
  /** Key names added to the built-in list (matched case- and separator-insensitively, whole name). */
  keys?: readonly string[];
  /** Regular expression sources added to the built-in patterns; each whole match is replaced. */
  patterns?: readonly string[];
  /** What replaces a secret. @default '[REDACTED]' */
  censor?: string;
  /** Nesting depth scanned; deeper values are replaced by a marker. @default 32 */
  maxDepth?: number;
  /** Keys per object and items per array scanned; the rest are dropped (and counted). @default 1000 */
  maxKeys?: number;
  /** Characters per string scanned; a longer string is cut to this. @default 262144 */
  maxStringLength?: number;
}

/** Normalized: lower case, letters and digits only. */
const SECRET_KEYS = [
  'password',
  'passwd',
  'pwd',
  'passphrase',
  'secret',
  'token',
  'apikey',
  'xapikey',
  'apitoken',
  'authorization',
  'proxyauthorization',
  'cookie',
  'setcookie',
  'sessionid',
  'sessid',
  'sessiontoken',
  'sid',
  'connectsid',
  'creditcard',
  'cardnumber',
  'cardno',
  'ccnumber',
  'pan',
  'cvv',
  'cvc',
  'cvv2',
  'securitycode',
  'ssn',
  'socialsecuritynumber',
  'privatekey',
  'clientsecret',
  'accesstoken',
  'refreshtoken',
  'idtoken',
  'secretkey',
  'secretaccesskey',
  'awssecretaccesskey',
  'jwt',
  'bearer',
  'credentials',
];
/** A key ending with one of these is secret too (`db_password`, `stripeSecret`, `githubToken`). */
const SECRET_SUFFIXES = [
  'password',
  'passwd',
  'secret',
  'token',
  'apikey',
  'privatekey',
  'sessionid',
  'cookie',
];

const normalizeKey = (key: string) => key.toLowerCase().replace(/[^a-z0-9]/g, '');

/** Luhn checksum (ISO/IEC 7812): what makes a 13-19 digit run a card number rather than an id. */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

/** Issuer prefixes start with 2 to 6 (Mastercard 2-series and 5, Amex and JCB 3, Visa 4, Discover 6). */
const isCardNumber = (digits: string) =>
  digits.charCodeAt(0) >= 50 && digits.charCodeAt(0) <= 54 && luhnValid(digits);

/**
 * Built-in value patterns, one alternation scanned in a single pass. Each named group says what matched
 * and which part of the match is secret.
 */
const BUILT_IN = [
  // PEM private keys: the key material between the armour lines.
  String.raw`(?<pemHead>-----BEGIN [A-Z ]*PRIVATE KEY-----)(?<pemBody>[\s\S]*?)(?<pemTail>-----END [A-Z ]*PRIVATE KEY-----)`,
  // JSON Web Tokens: three base64url parts, the first two JSON objects ("eyJ" is `{"`).
  String.raw`(?<jwt>\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{8,})`,
  // HTTP credentials: keep the scheme.
  String.raw`(?<authScheme>\b(?:Bearer|Basic|Token|Digest)\s+)(?<authValue>[A-Za-z0-9._~+/=-]{8,})`,
  // Passwords in URLs and connection strings: scheme://user:PASSWORD@host.
  String.raw`(?<urlHead>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/?#@"']*:)(?<urlPass>[^\s@/?#"']+)(?=@)`,
  // key=value connection strings (libpq, JDBC, ODBC): password=..., pwd=...
  String.raw`(?<kvHead>\b(?:password|passwd|pwd)\s*=\s*)(?<kvValue>'(?:[^'\\]|\\.)*'|[^\s;&'"]+)`,
  // SQL: CREATE/ALTER ROLE ... PASSWORD '...'
  String.raw`(?<sqlHead>\bPASSWORD\s+E?)(?<sqlValue>'(?:[^']|'')*')`,
  // AWS: access key ids, and secret keys where a keyword names them.
  String.raw`(?<awsId>\b(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z2-7]{16}\b)`,
  String.raw`(?<awsSecretHead>\b(?:aws_?)?secret_?access_?key["']?\s*[:=]\s*["']?)(?<awsSecret>[A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])`,
  // GitHub, Slack, Stripe, Google API tokens.
  String.raw`(?<github>\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255}))`,
  String.raw`(?<slack>\bxox[abposr]-[A-Za-z0-9-]{10,}|https://hooks\.slack\.com/services/[A-Za-z0-9/]+)`,
  String.raw`(?<stripe>\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}|\bwhsec_[A-Za-z0-9]{16,})`,
  String.raw`(?<google>\bAIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-]))`,
  // Card numbers: 13-19 digits, optionally grouped by spaces or dashes, standing alone; Luhn-checked in the replacer.
  // Not inside a longer token: a digit run within a hex trace id or a base64 string is no card.
  String.raw`(?<card>(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-]))`,
];

/**
 * `trace.id`, `span.id`, `transaction.id`, `parent.id`: random hex ids, which an all-digit span id (one in a few
 * thousand) could make look like a Luhn-valid card number. Not scanned.
 */
const TRACE_ID_PARENTS = new Set(['trace', 'span', 'transaction', 'parent']);
/** The same ids as a pino record carries them, at its top level (before the ECS mapping). */
const TRACE_ID_KEYS = new Set(['trace_id', 'span_id', 'traceId', 'spanId']);

export interface Redactor {
  /** Redact a parsed record in place (and return it). */
  (record: Record<string, unknown>): Record<string, unknown>;
  /** Redact one string. */
  text(value: string): string;
  /** Values cut or dropped by the bounds so far. */
  readonly truncated: number;
}

export function createRedactor(options: RedactOptions = {}): Redactor {
  const censor = options.censor ?? '[REDACTED]';
  const maxDepth = options.maxDepth ?? 32;
  const maxKeys = options.maxKeys ?? 1000;
  const maxStringLength = options.maxStringLength ?? 262_144;
  const exact = new Set([...SECRET_KEYS, ...(options.keys ?? []).map(normalizeKey)]);
  const keyCache = new Map<string, boolean>();
  const isSecretKey = (key: string): boolean => {
    let secret = keyCache.get(key);
    if (secret === undefined) {
      const k = normalizeKey(key);
      secret =
        exact.has(k) || SECRET_SUFFIXES.some((suffix) => k.length > suffix.length && k.endsWith(suffix));
      if (keyCache.size < 10_000) keyCache.set(key, secret);
    }
    return secret;
  };

  const userPatterns = (options.patterns ?? []).map((source, i) => `(?<user${i}>${source})`);
  const scanner = new RegExp([...BUILT_IN, ...userPatterns].join('|'), 'gi');
  // The scanner is case-insensitive for the keyword patterns; the token formats that are case-sensitive are
  // re-checked here so that `akia...` or `EYJ...` lookalikes are not taken for secrets.
  const replace = (match: string, ...rest: unknown[]): string => {
    const groups = rest[rest.length - 1] as Record<string, string | undefined>;
    if (groups.pemHead !== undefined) return `${groups.pemHead}${censor}${groups.pemTail}`;
    if (groups.jwt !== undefined) return match.startsWith('eyJ') ? censor : match;
    if (groups.authScheme !== undefined) return `${groups.authScheme}${censor}`;
    if (groups.urlHead !== undefined) return `${groups.urlHead}${censor}`;
    if (groups.kvHead !== undefined) return `${groups.kvHead}${censor}`;
    if (groups.sqlHead !== undefined) return `${groups.sqlHead}'${censor}'`;
    if (groups.awsId !== undefined) return /^[A-Z0-9]+$/.test(match) ? censor : match;
    if (groups.awsSecretHead !== undefined) return `${groups.awsSecretHead}${censor}`;
    if (groups.card !== undefined) return isCardNumber(match.replace(/[ -]/g, '')) ? censor : match;
    return censor; // github, slack, stripe, google, user patterns: the whole match
  };

  let truncated = 0;
  const text = (value: string): string => {
    let s = value;
    if (s.length > maxStringLength) {
      s = `${s.slice(0, maxStringLength)}…[truncated]`;
      truncated++;
    }
    // Nothing secret fits in fewer than 8 characters of the patterns above.
    return s.length < 8 ? s : s.replace(scanner, replace);
  };

  const walk = (value: unknown, depth: number, parentKey = ''): unknown => {
    if (typeof value === 'string') return text(value);
    if (value === null || typeof value !== 'object') return value;
    if (depth >= maxDepth) {
      truncated++;
      return '[truncated: too deep]';
    }
    if (Array.isArray(value)) {
      if (value.length > maxKeys) {
        truncated++;
        value.length = maxKeys;
      }
      for (let i = 0; i < value.length; i++) value[i] = walk(value[i], depth + 1);
      return value;
    }
    const object = value as Record<string, unknown>;
    let count = 0;
    for (const key in object) {
      if (++count > maxKeys) {
        delete object[key];
        truncated++;
        continue;
      }
      const v = object[key];
      if (isSecretKey(key) && v !== null && v !== undefined && v !== '' && typeof v !== 'boolean')
        object[key] = censor;
      else if (key === 'id' && typeof v === 'string' && TRACE_ID_PARENTS.has(parentKey)) continue;
      else if (depth === 0 && typeof v === 'string' && TRACE_ID_KEYS.has(key)) continue;
      else if (v !== null && (typeof v === 'string' || typeof v === 'object'))
        object[key] = walk(v, depth + 1, key);
      else if (typeof v === 'number' && v >= 1e12 && Number.isSafeInteger(v) && isCardNumber(String(v)))
        object[key] = censor;
    }
    return object;
  };

  const redactor = ((record: Record<string, unknown>) =>
    walk(record, 0) as Record<string, unknown>) as Redactor;
  redactor.text = text;
  Object.defineProperty(redactor, 'truncated', { get: () => truncated });
  return redactor;
}
