/**
 * The value rules: one table, in the shape secret scanners use (gitleaks' rules, secretlint's per-provider
 * rules): an id, the keywords of which one must appear for the rule to run at all, a pattern, and what a
 * match is replaced with (a validator, such as Luhn for cards, may keep it). Token formats are the providers'
 * own, as their documentation and those projects' rule lists describe them; each rule names its source.
 *
 * Linear time on any input is a property of every pattern here, checked by the pathological-input test:
 * - a pattern that may start inside a run of characters starts with a negative lookbehind for that run's
 *   class, so a match is attempted once per run, at its start, never at every position inside it;
 * - every repetition after a fixed prefix is bounded ({m,n}), so a failed attempt costs at most n steps;
 * - a pattern that can run to the end of the string (a PEM block with no END line) always matches there, so
 *   the scan goes on after it instead of trying again.
 * JavaScript's backtracking engine is enough under these rules; an RE2-style engine would only be needed for
 * patterns that break them, and none here does. User patterns are checked for the catastrophic shape (a
 * quantified group that itself repeats) when the transport starts.
 */
import { isInnocentValue } from './keys.js';
import { isCardNumber } from './luhn.js';
import { PROVIDER_TOKENS, token } from './tokens.js';

export interface RuleContext {
  censor: string;
  /** Whether a key name (`DATABASE_PASSWORD`, `api_key`) holds a secret. */
  isSecretKey: (key: string) => boolean;
}

export interface Rule {
  readonly id: string;
  /** Lower-case strings, one of which must appear (in any case) for the rule to run. */
  readonly keywords: readonly string[];
  readonly pattern: RegExp;
  /** What a match becomes; returning `match` keeps it. */
  readonly replace: (
    ctx: RuleContext,
    match: string,
    groups: Groups,
    input: string,
    offset: number,
  ) => string;
  /** Instead of `replace`: the rule applied to a whole string (for a scan that must control where it resumes). */
  readonly apply?: (ctx: RuleContext, input: string, pattern: RegExp) => string;
  /** Where the format comes from. */
  readonly source: string;
}

export type Groups = Record<string, string | undefined>;

const SCHEME_CHAR = /[A-Za-z0-9+.-]/;
const PASSWORD_CHAR = /[^\s@:/"'<>]/;
const USER_CHAR = /[A-Za-z0-9_.%+-]/;
const USER_BOUNDARY = /[A-Za-z0-9_.%+/:@-]/;

/** A credential that looks random (a digit, an upper-case letter or a symbol), not a word of prose. */
const looksRandom = (value: string) => /[0-9A-Z+/=_~.-]/.test(value) && !/^[A-Z][a-z]+$/.test(value);

/** `Authorization: Bearer ...`: the scheme word stays, the authorization-scheme rule handles the credential. */
const AUTH_SCHEME = /^(?:Bearer|Basic|Digest|ApiKey|Token|Negotiate|AWS4-HMAC-SHA256)$/i;

const PLACEHOLDER = /^(?:\[REDACTED\]|\*+|x+|X+|<[^>]*>|\$\{[^}]*\}|null|undefined|none|true|false|-)$/;

export const RULES: readonly Rule[] = [
  {
    id: 'private-key-block',
    keywords: ['-----begin'],
    // An END line that is missing or cut: everything to the end of the string goes.
    pattern:
      /-----BEGIN [A-Z0-9 ]{0,40}?PRIVATE KEY(?: BLOCK)?-----[\s\S]*?(?:-----END [A-Z0-9 ]{0,40}?PRIVATE KEY(?: BLOCK)?-----|$)/g,
    replace: (ctx, match) => {
      const head = match.slice(0, match.indexOf('-----', 5) + 5);
      const end = match.lastIndexOf('-----END ');
      return `${head}${ctx.censor}${end > 0 ? match.slice(end) : ''}`;
    },
    source: 'RFC 7468 (PEM), RFC 4880 section 6.2 (PGP armor); gitleaks rule private-key',
  },
  token(
    'jwt',
    ['eyj'],
    String.raw`eyJ[A-Za-z0-9_-]{5,4096}\.eyJ[A-Za-z0-9_-]{5,8192}\.(?:[A-Za-z0-9_-]{8,1024})?`,
    'RFC 7519 (JWT) with RFC 7515 compact serialization; an unsecured JWT (alg none) has an empty signature',
    'A-Za-z0-9_.-',
  ),
  {
    id: 'http-authorization-scheme',
    keywords: ['bearer', 'basic', 'token', 'digest', 'apikey', 'api-key', 'negotiate'],
    pattern:
      /(?<![A-Za-z0-9_-])(?<scheme>Bearer|Basic|Token|Digest|ApiKey|Api-Key|Negotiate)[ \t]{1,4}(?<cred>[A-Za-z0-9-]{1,32}="[^"\r\n]{0,512}"(?:,[ \t]{0,4}[A-Za-z0-9-]{1,32}=(?:"[^"\r\n]{0,512}"|[^\s,]{0,512})){0,32}|[A-Za-z0-9._~+/=-]{8,4096})/gi,
    replace: (ctx, match, g) => {
      const cred = g.cred as string;
      // A Digest parameter list, or a credential that is not a word of prose (`Basic subscription tier`).
      if (cred.includes('="') || looksRandom(cred)) return `${g.scheme} ${ctx.censor}`;
      return match;
    },
    source:
      'RFC 9110 section 11 (HTTP authentication), RFC 7617 (Basic), RFC 6750 (Bearer), RFC 7616 (Digest)',
  },
  {
    id: 'http-header',
    keywords: [
      'cookie',
      'authorization',
      'api-key',
      'auth-token',
      'access-token',
      'csrf',
      'xsrf',
      'session-id',
    ],
    // A header line in a dump (`Cookie: a=1; b=2`), to the end of the line. A quoted JSON key (`"cookie":`)
    // has its quote before the colon and is not matched: the assignment rule handles those without eating
    // the rest of the object.
    pattern:
      /(?<![A-Za-z0-9_-])(?<name>(?:set-)?cookie|(?:proxy-)?authorization|x-api-key|api-key|x-auth-token|x-access-token|x-csrf-token|x-xsrf-token|x-session-id)[ \t]{0,4}:[ \t]{0,4}(?<value>[^\r\n]{1,8192})/gi,
    replace: (ctx, match, g) => {
      const value = g.value as string;
      if (PLACEHOLDER.test(value.trim())) return match;
      const scheme = /^(Bearer|Basic|Digest|ApiKey|Token|Negotiate|AWS4-HMAC-SHA256)\s/i.exec(value)?.[1];
      return `${g.name}: ${scheme ? `${scheme} ` : ''}${ctx.censor}`;
    },
    source: 'RFC 9110 (Authorization), RFC 6265 (Cookie, Set-Cookie); OWASP logging cheat sheet',
  },
  {
    id: 'url-password',
    keywords: ['://'],
    // Anchored on each '://' (a native search) rather than tried at every word: the same matches as
    // /(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]{0,31}:\/\/<user>:<password>@/, at a fraction of the cost.
    pattern: /([^\s:/?#@"'<>]{0,256}):([^\s@"'<>]{1,256})@/y,
    replace: (_ctx, match) => match,
    apply: (ctx, input, userinfo) => {
      let out = '';
      let from = 0;
      for (let at = input.indexOf('://'); at !== -1; at = input.indexOf('://', Math.max(at + 3, from))) {
        let start = at;
        while (start > 0 && at - start <= 32 && SCHEME_CHAR.test(input[start - 1] as string)) start--;
        if (start === at || at - start > 32 || !/[A-Za-z]/.test(input[start] as string)) continue;
        userinfo.lastIndex = at + 3;
        const m = userinfo.exec(input);
        if (!m || at + 3 < from) continue;
        const passStart = at + 3 + (m[1] as string).length + 1;
        out += `${input.slice(from, passStart)}${ctx.censor}@`;
        from = userinfo.lastIndex;
      }
      return from === 0 ? input : out + input.slice(from);
    },
    source: 'RFC 3986 section 3.2.1 (userinfo); libpq connection URIs',
  },
  {
    id: 'userinfo-without-scheme',
    keywords: ['@'],
    // user:password@host written without a scheme, anchored on each '@' and read backwards: a password of
    // 1-128 characters (no space, '@', ':', '/', quote), a ':', a user of 1-64 characters, then a host.
    pattern: /[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8}(?::\d{1,5})?(?![A-Za-z0-9_.@-])/y,
    replace: (_ctx, match) => match,
    apply: (ctx, input, host) => {
      let out = '';
      let from = 0;
      for (let at = input.indexOf('@'); at !== -1; at = input.indexOf('@', at + 1)) {
        let colon = at - 1;
        while (colon >= from && at - colon <= 129 && PASSWORD_CHAR.test(input[colon] as string)) colon--;
        if (colon < from || input[colon] !== ':' || colon === at - 1) continue;
        let user = colon;
        while (user > from && colon - user < 64 && USER_CHAR.test(input[user - 1] as string)) user--;
        if (user === colon || (user > 0 && USER_BOUNDARY.test(input[user - 1] as string))) continue;
        if (/^(?:mailto|tel|sip)$/i.test(input.slice(user, colon))) continue;
        host.lastIndex = at + 1;
        if (!host.test(input)) continue;
        out += `${input.slice(from, colon + 1)}${ctx.censor}`;
        from = at;
      }
      return from === 0 ? input : out + input.slice(from);
    },
    source: 'RFC 3986 section 3.2.1 (userinfo), as written without a scheme (user:pass@host)',
  },
  {
    id: 'sql-password',
    keywords: ['password'],
    pattern:
      /\bPASSWORD[ \t\r\n]{1,8}(?:E'(?:[^'\\]|\\.|''){0,1024}'|'(?:[^']|''){0,1024}'|\$(?<tag>[A-Za-z_][A-Za-z0-9_]{0,30})?\$[\s\S]{0,1024}?\$\k<tag>\$)/gi,
    replace: (ctx, match) => `${match.slice(0, 8)} '${ctx.censor}'`,
    source: 'PostgreSQL CREATE ROLE / ALTER ROLE ... PASSWORD (string constants, E-strings, dollar quoting)',
  },
  {
    id: 'assignment',
    keywords: [
      'pass',
      'pwd',
      'secret',
      'token',
      'key',
      'auth',
      'credential',
      'cookie',
      'session',
      'sid',
      'sig',
      'otp',
      'jwt',
      'bearer',
      'cvv',
      'cvc',
      'ssn',
      'card',
    ],
    // `KEY=value` (env dumps, logfmt, query strings, libpq), `key: value` (prose, YAML, headers), quoted and
    // JSON forms (`"key":"value"`, `\"key\":\"value\"` in a logged body), `key => value`. The key decides.
    // The value is read in a lookahead: when the key is innocent the scan resumes right after the separator,
    // so `error: password=x` still finds `password`.
    pattern:
      /(?<![A-Za-z0-9_.\\-])(?<q>\\?["'])?(?<key>[A-Za-z_][A-Za-z0-9_.-]{0,79})\k<q>[ \t]{0,4}(?:=>|:=|[:=])[ \t]{0,4}(?=(?<vq>\\?["'])(?<quoted>(?:(?!\k<vq>)[^\r\n]){0,2048})\k<vq>|(?<bare>[^\s&;,"'<>(){}[\]\\?#=]{1,1024}={0,2}))/g,
    replace: (_ctx, match) => match,
    apply: (ctx, input, pattern) => {
      let out = '';
      let from = 0;
      pattern.lastIndex = 0;
      for (let m = pattern.exec(input); m !== null; m = pattern.exec(input)) {
        const g = m.groups as Groups;
        const key = g.key as string;
        const value = g.quoted ?? g.bare ?? '';
        if (
          value === '' ||
          PLACEHOLDER.test(value) ||
          AUTH_SCHEME.test(value) ||
          !ctx.isSecretKey(key) ||
          isInnocentValue(key, value)
        )
          continue;
        const start = m.index + m[0].length + (g.vq?.length ?? 0);
        out += input.slice(from, start) + ctx.censor;
        from = start + value.length;
        pattern.lastIndex = from;
      }
      return from === 0 ? input : out + input.slice(from);
    },
    source: 'logfmt, dotenv and shell assignment forms; WHATWG URL query strings; JSON (RFC 8259)',
  },
  ...PROVIDER_TOKENS,
  {
    id: 'card-number',
    keywords: [],
    // 13-19 digits, optionally grouped by spaces or dashes, not inside a longer digit run; also glued to a
    // word (`card_6011...`). Kept when it fails Luhn, or sits inside a hex run (a hash or an id).
    pattern: /(?<![0-9])[0-9](?:[ -]?[0-9]){12,18}(?![0-9])/g,
    replace: (ctx, match, _g, input, offset) => {
      if (!isCardNumber(match.replace(/[ -]/g, ''))) return match;
      if (insideHexRun(input, offset, match.length)) return match;
      return ctx.censor;
    },
    source:
      'ISO/IEC 7812 (issuer prefixes, Luhn check digit); PCI DSS requirement 3.4 (render PAN unreadable)',
  },
];

/** A digit run that is part of a hex string of 24 or more characters (a hash, a trace id) is no card. */
function insideHexRun(input: string, offset: number, length: number): boolean {
  const hex = (i: number) => {
    const c = input.charCodeAt(i) | 0x20;
    return (c >= 48 && c <= 57) || (c >= 97 && c <= 102);
  };
  let start = offset;
  let end = offset + length;
  while (start > 0 && hex(start - 1) && end - start < 64) start--;
  while (end < input.length && hex(end) && end - start < 64) end++;
  const run = input.slice(start, end);
  return run.length >= 24 && /[a-fA-F]/.test(run) && !/[ -]/.test(run);
}

/** Rules that run on every string whatever its words (no keyword): the card check only needs digits. */
export const DIGIT_RULE_ID = 'card-number';
