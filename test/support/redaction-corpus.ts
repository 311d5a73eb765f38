// The redaction corpus: secrets in the shapes real services log them (synthetic values in each provider's
// format, never real keys), and innocent text that must come out untouched. Each secret entry names the
// secret part; a test searches every output for it.

export interface SecretCase {
  shape: string;
  /** A string as it would be logged, or a record (redacted by key). */
  logged: string | Record<string, unknown>;
  /** The part that must not survive. */
  secret: string;
}

const r = (n: number, alphabet = 'aB3dE6fG9hJ2kL5mN8pQ1rS4tU7vW0xYz') =>
  Array.from({ length: n }, (_, i) => alphabet[(i * 7 + 3) % alphabet.length]).join('');
const hex = (n: number) => r(n, '0123456789abcdef');

const jwtEmptySignature = 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJqYW5lLWRvZSJ9.';

export const SECRET_CASES: readonly SecretCase[] = [
  // Keys that contain a secret word, plurals and containers, other names for the same thing.
  { shape: 'key passwordConfirm', logged: { passwordConfirm: 'pc-Hunter2-x' }, secret: 'pc-Hunter2-x' },
  {
    shape: 'key password_hash',
    logged: { password_hash: '$2b$10$abcdefghijk' },
    secret: '$2b$10$abcdefghijk',
  },
  { shape: 'key secretAnswer', logged: { secretAnswer: 'first-pet-rex' }, secret: 'first-pet-rex' },
  { shape: 'key newPassword', logged: { user: { newPassword: 'np-S3cret-1' } }, secret: 'np-S3cret-1' },
  { shape: 'key passwords[]', logged: { passwords: ['pw-one-111', 'pw-two-222'] }, secret: 'pw-two-222' },
  { shape: 'key tokens[]', logged: { tokens: ['tk-alpha-333'] }, secret: 'tk-alpha-333' },
  { shape: 'key secrets{}', logged: { secrets: { stripe: 'sv-stripe-444' } }, secret: 'sv-stripe-444' },
  { shape: 'key credentials', logged: { credentials: 'cr-555-xyz' }, secret: 'cr-555-xyz' },
  { shape: 'key auth', logged: { auth: 'au-666-xyz' }, secret: 'au-666-xyz' },
  { shape: 'key pass', logged: { db: { pass: 'pa-777-xyz' } }, secret: 'pa-777-xyz' },
  { shape: 'key passphrase', logged: { passphrase: 'pp-888-xyz' }, secret: 'pp-888-xyz' },
  { shape: 'key encryption_key', logged: { encryption_key: 'ek-999-xyz' }, secret: 'ek-999-xyz' },
  { shape: 'key signingKey', logged: { signingKey: 'sk-000-local' }, secret: 'sk-000-local' },
  { shape: 'key accessKey', logged: { accessKey: 'ak-121-xyz' }, secret: 'ak-121-xyz' },
  { shape: 'key otp', logged: { otp: '482913' }, secret: '482913' },
  { shape: 'key PGPASS', logged: { env: { PGPASS: 'pgp-131-xyz' } }, secret: 'pgp-131-xyz' },
  { shape: 'key cvv number', logged: { card: { cvv: 737 } }, secret: '737' },
  // Assignments inside free text.
  {
    shape: 'env DATABASE_PASSWORD',
    logged: 'env: DATABASE_PASSWORD=dbp-141-xyz NODE_ENV=prod',
    secret: 'dbp-141-xyz',
  },
  { shape: 'env DB_PASS', logged: 'DB_HOST=db DB_PASS=dbpass-151 DB_USER=app', secret: 'dbpass-151' },
  {
    shape: 'env PGPASSWORD before psql',
    logged: 'running PGPASSWORD=pgpw-161 psql -h db',
    secret: 'pgpw-161',
  },
  {
    shape: 'env AWS_SESSION_TOKEN',
    logged: 'AWS_SESSION_TOKEN=FwoGZXIvYXdzEJr171',
    secret: 'FwoGZXIvYXdzEJr171',
  },
  {
    shape: 'logfmt client_secret',
    logged: 'level=info client_secret=cs-181-xyz user=jane',
    secret: 'cs-181-xyz',
  },
  { shape: 'env DD_API_KEY', logged: 'DD_API_KEY=ddk191abcdef0123', secret: 'ddk191abcdef0123' },
  { shape: 'env TWILIO_AUTH_TOKEN', logged: 'TWILIO_AUTH_TOKEN=twa201abcdef', secret: 'twa201abcdef' },
  {
    shape: 'prose password:',
    logged: 'login failed, password: hunter2-211 was wrong',
    secret: 'hunter2-211',
  },
  { shape: 'prose api_key:', logged: 'configured with api_key: ak221-zz', secret: 'ak221-zz' },
  {
    shape: 'quoted form',
    logged: "options {'password': 'qp-231-xyz', 'user': 'jane'}",
    secret: 'qp-231-xyz',
  },
  // JSON and query strings inside string values.
  { shape: 'embedded JSON', logged: 'body={"user":"jane","password":"ej-241-xyz"}', secret: 'ej-241-xyz' },
  { shape: 'escaped JSON', logged: String.raw`{\"token\":\"ej-251-xyz\"}`, secret: 'ej-251-xyz' },
  {
    shape: 'request body',
    logged: { http: { request: { body: { content: 'grant_type=password&password=rb-261&username=jane' } } } },
    secret: 'rb-261',
  },
  // URLs.
  { shape: 'query ?token=', logged: 'GET /callback?token=qt-271-xyz&next=/home', secret: 'qt-271-xyz' },
  {
    shape: 'query &api_key=',
    logged: 'https://api.example.com/v1/items?page=2&api_key=qa-281-xyz',
    secret: 'qa-281-xyz',
  },
  {
    shape: 'fragment #access_token=',
    logged: 'https://app.example.com/cb#access_token=fa-291-xyz&expires_in=3600',
    secret: 'fa-291-xyz',
  },
  {
    shape: 'X-Amz-Signature',
    logged: 'https://bucket.s3.amazonaws.com/o?X-Amz-Date=20260101T000000Z&X-Amz-Signature=3f1e301abcdef',
    secret: '3f1e301abcdef',
  },
  {
    shape: 'SAS sig=',
    logged: 'https://acct.blob.core.windows.net/c/b?sv=2022-11-02&sig=sa311XyZ%2Babc%3D',
    secret: 'sa311XyZ%2Babc%3D',
  },
  { shape: 'URL password with /', logged: 'redis://:p/ss+321w@cache:6379/0', secret: 'p/ss+321w' },
  {
    shape: 'userinfo without scheme',
    logged: 'connecting to admin:ui331-pw@db.internal:5432',
    secret: 'ui331-pw',
  },
  // Header dumps.
  {
    shape: 'Cookie header',
    logged: 'headers:\nCookie: sid=ck341abc; theme=dark\nAccept: */*',
    secret: 'ck341abc',
  },
  {
    shape: 'Set-Cookie header',
    logged: 'Set-Cookie: session=sc351xyz; Path=/; HttpOnly',
    secret: 'sc351xyz',
  },
  { shape: 'X-Api-Key header', logged: 'X-Api-Key: xk361-abcdef', secret: 'xk361-abcdef' },
  {
    shape: 'Authorization: ApiKey',
    logged: 'Authorization: ApiKey ZXhhbXBsZTM3MQ==',
    secret: 'ZXhhbXBsZTM3MQ==',
  },
  {
    shape: 'Authorization: Digest',
    logged: 'Authorization: Digest username="jane", response="6629fae49393a05397450978507c4ef1"',
    secret: '6629fae49393a05397450978507c4ef1',
  },
  // SQL.
  {
    shape: 'SQL dollar-quoted password',
    logged: 'ALTER ROLE app PASSWORD $pw$dq381-xyz$pw$',
    secret: 'dq381-xyz',
  },
  { shape: "SQL E'' password", logged: "CREATE ROLE app PASSWORD E'es391\\'xyz'", secret: 'es391' },
  // Provider tokens.
  { shape: 'OpenAI sk-', logged: `key sk-${r(48)}`, secret: `sk-${r(48)}` },
  { shape: 'OpenAI sk-proj-', logged: `OPENAI sk-proj-${r(64)}`, secret: `sk-proj-${r(64)}` },
  { shape: 'Anthropic', logged: `sk-ant-api03-${r(93)}AA`, secret: `sk-ant-api03-${r(93)}AA` },
  { shape: 'GitLab glpat-', logged: `glpat-${r(20)}`, secret: `glpat-${r(20)}` },
  { shape: 'npm', logged: `//registry.npmjs.org/:_authToken=npm_${r(36)}`, secret: `npm_${r(36)}` },
  { shape: 'PyPI', logged: `pypi-AgEIcHlwaS5vcmc${r(70)}`, secret: `pypi-AgEIcHlwaS5vcmc${r(70)}` },
  { shape: 'Twilio SK', logged: `twilio key SK${hex(32)}`, secret: `SK${hex(32)}` },
  { shape: 'SendGrid', logged: `SG.${r(22)}.${r(43)}`, secret: `SG.${r(22)}.${r(43)}` },
  {
    shape: 'Azure AccountKey',
    logged: `DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=${r(86)}==;EndpointSuffix=core.windows.net`,
    secret: r(86),
  },
  { shape: 'Vault hvs.', logged: `vault token hvs.${r(90)}`, secret: `hvs.${r(90)}` },
  { shape: 'Shopify', logged: `shpat_${hex(32)}`, secret: `shpat_${hex(32)}` },
  { shape: 'Mailgun', logged: `mailgun key-${hex(32)}`, secret: `key-${hex(32)}` },
  { shape: 'Heroku', logged: `HRKU-${r(60)}`, secret: `HRKU-${r(60)}` },
  {
    shape: 'Slack xapp-',
    logged: `xapp-1-A0123456789-1234567890123-${hex(64)}`,
    secret: `xapp-1-A0123456789-1234567890123-${hex(64)}`,
  },
  {
    shape: 'Hugging Face',
    logged: `HF hf_${r(34, 'abcdefghijklmnopqrstuvwxyzABCDEFGH')}`,
    secret: `hf_${r(34, 'abcdefghijklmnopqrstuvwxyzABCDEFGH')}`,
  },
  { shape: 'DigitalOcean', logged: `dop_v1_${hex(64)}`, secret: `dop_v1_${hex(64)}` },
  { shape: 'Doppler', logged: `dp.pt.${r(43)}`, secret: `dp.pt.${r(43)}` },
  { shape: 'Linear', logged: `lin_api_${r(40)}`, secret: `lin_api_${r(40)}` },
  { shape: 'Grafana service account', logged: `glsa_${r(32)}_${hex(8)}`, secret: `glsa_${r(32)}_${hex(8)}` },
  { shape: 'Databricks', logged: `dapi${hex(32)}`, secret: `dapi${hex(32)}` },
  { shape: 'Telegram bot', logged: `bot 123456789:AA${r(33)}`, secret: `123456789:AA${r(33)}` },
  { shape: 'Stripe restricted rk_', logged: `rk_live_${r(24)}`, secret: `rk_live_${r(24)}` },
  {
    shape: 'age secret key',
    logged: `AGE-SECRET-KEY-1${r(58, 'QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L')}`,
    secret: r(58, 'QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L'),
  },
  { shape: 'JWT with an empty signature', logged: `id ${jwtEmptySignature} ok`, secret: jwtEmptySignature },
  {
    shape: 'PGP private key block',
    logged: `-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBGPgp${r(40)}\n=abcd\n-----END PGP PRIVATE KEY BLOCK-----`,
    secret: `lQOYBGPgp${r(40)}`,
  },
  {
    shape: 'PEM with its END line cut',
    logged: `key:\n-----BEGIN PRIVATE KEY-----\nMIIEvQIBADAN${r(60)}\nMIIEcut`,
    secret: `MIIEvQIBADAN${r(60)}`,
  },
  // Card numbers that are numbers, in arrays, and glued to a word.
  {
    shape: 'card number as a number',
    logged: { amount: 10, pan_hint: 4111111111111111 },
    secret: '4111111111111111',
  },
  {
    shape: 'card numbers in an array',
    logged: { tried: [5500000000000004, 'x'] },
    secret: '5500000000000004',
  },
  {
    shape: 'card glued to a word',
    logged: 'declined card_6011000990139424 today',
    secret: '6011000990139424',
  },
  // Ids that do not have an id's exact shape are scanned.
  { shape: 'trace_id that is not an id', logged: { trace_id: 'password=ti-401-xyz' }, secret: 'ti-401-xyz' },
  {
    shape: 'span.id that is not an id',
    logged: { span: { id: 'card 4111 1111 1111 1111' } },
    secret: '4111 1111 1111 1111',
  },
  {
    shape: 'parent.id that is not an id',
    logged: { parent: { id: `ghp_${r(36)}` } },
    secret: `ghp_${r(36)}`,
  },
];

/** Innocent keys and text: every one must come out exactly as it went in. */
export const INNOCENT_RECORD: Record<string, unknown> = {
  passwordless_login_enabled: true,
  password_policy: 'min 12 characters',
  secretary: 'Jane Roe',
  tokenizer: 'cl100k_base',
  max_tokens: 4096,
  author: 'Jane Austen',
  monkey: 'banana',
  keyboard_layout: 'dvorak',
  PWD: '/srv/app',
  messages: [
    'Invalid token',
    'Basic subscription tier',
    'token rotation is enabled',
    'digest computed over the request body',
    'bearer instrument of the policy',
    'PWD=/srv/app node server.js',
    'password reset link sent',
  ],
  publishable: ['pk_live_51H8abcDEFghiJKLmnoPQRstu', 'pk_test_51H8abcDEFghiJKLmnoPQRstu'],
  publicKey: 'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 jane@laptop',
  uuid: '550e8400-e29b-41d4-a716-446655440000',
  gitSha: 'a94a8fe5ccb19ba61c4c0873d391e987982fbbd3',
  trace: { id: '4bf92f3536b3b0ff6a6f0d1e27d1e0b1' },
  span: { id: '00f067aa0ba902b7' },
  contentHash: 'sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08',
  image:
    'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==',
  arn: 'arn:aws:iam::123456789012:role/ledger-service',
  tracking: '1Z999AA10123456784',
  isbn: '978-3-16-148410-0',
  phone: '+1 415 555 2671',
  orderId: '4111111111111112',
  orderIds: [4111111111111112, 1234567890123],
  epochMs: 1764150000000,
  url: 'https://example.com:8443/path?q=1&page=2#top',
  sql: 'SELECT id FROM users WHERE email = $1 AND status = ?',
  note: 'the password field is required',
};
