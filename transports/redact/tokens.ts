/**
 * Provider tokens: formats each provider documents, as gitleaks' rule of the same name lists them. Each is a
 * run of the token's own alphabet, delimited on both sides, and replaced whole.
 */
import type { Rule, RuleContext } from './rules.js';

const whole = (ctx: RuleContext) => ctx.censor;

/** Token rules: a run of the token's own alphabet, delimited on both sides, replaced whole. */
export function token(
  id: string,
  keywords: string[],
  body: string,
  source: string,
  edge = 'A-Za-z0-9_-',
): Rule {
  return {
    id,
    keywords,
    // A token may end a sentence: a '.' after it is punctuation, not more token.
    pattern: new RegExp(`(?<![${edge}])(?:${body})(?![${edge.replace('.', '')}])`, 'g'),
    replace: whole,
    source,
  };
}

export const PROVIDER_TOKENS: readonly Rule[] = [
  token(
    'aws-access-key-id',
    ['akia', 'asia', 'abia', 'acca', 'a3t'],
    '(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z2-7]{16}',
    'AWS IAM identifiers (unique ID prefixes); gitleaks rule aws-access-token',
    'A-Za-z0-9',
  ),
  token(
    'github',
    ['ghp_', 'gho_', 'ghu_', 'ghs_', 'ghr_', 'github_pat_'],
    'gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255}',
    "GitHub's token formats (github.blog, 2021-04-05 and 2022-10-18); gitleaks rules github-*",
    'A-Za-z0-9_',
  ),
  token(
    'gitlab',
    ['glpat-', 'gldt-', 'glrt-', 'glptt-', 'glcbt-', 'glsoat-', 'glft-', 'glimt-', 'glagent-'],
    'gl(?:pat|dt|rt|ptt|cbt|soat|ft|imt|agent)-[A-Za-z0-9_-]{20,64}',
    'GitLab token prefixes (docs.gitlab.com security/tokens); gitleaks rules gitlab-*',
  ),
  {
    id: 'slack',
    keywords: ['xox', 'xapp-', 'hooks.slack.com'],
    pattern:
      /(?<![A-Za-z0-9-])(?:xox[abposre]-[A-Za-z0-9-]{10,250}|xapp-\d-[A-Za-z0-9]{1,64}-\d{1,32}-[A-Za-z0-9]{1,128})|https:\/\/hooks\.slack\.com\/services\/[A-Za-z0-9/]{1,256}/g,
    replace: whole,
    source: "Slack's token types (api.slack.com/authentication/token-types); gitleaks rules slack-*",
  },
  token(
    'stripe',
    ['sk_live', 'sk_test', 'rk_live', 'rk_test', 'whsec_'],
    '(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,247}|whsec_[A-Za-z0-9+/=]{16,128}',
    "Stripe's API keys, restricted keys and webhook secrets (docs.stripe.com/keys); publishable pk_ keys stay",
  ),
  token(
    'google-api-key',
    ['aiza'],
    'AIza[0-9A-Za-z_-]{35}',
    'Google Cloud API keys (cloud.google.com/docs/authentication/api-keys); gitleaks rule gcp-api-key',
  ),
  token(
    'openai-anthropic',
    ['sk-'],
    String.raw`sk-(?:ant-(?:api|admin)\d{2}-|proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,256}`,
    'OpenAI (sk-, sk-proj-, sk-svcacct-) and Anthropic (sk-ant-api03-) keys; gitleaks rules openai-api-key, anthropic-*',
  ),
  token(
    'npm',
    ['npm_'],
    'npm_[A-Za-z0-9]{36}',
    'npm access tokens (docs.npmjs.com, about access tokens); gitleaks rule npm-access-token',
  ),
  token(
    'pypi',
    ['pypi-'],
    'pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,1000}',
    'PyPI API tokens (macaroons for pypi.org); gitleaks rule pypi-upload-token',
  ),
  token(
    'twilio-api-key',
    ['sk'],
    'SK[0-9a-fA-F]{32}',
    'Twilio API key SIDs (twilio.com/docs/iam/api-keys); gitleaks rule twilio-api-key',
    'A-Za-z0-9',
  ),
  token(
    'sendgrid',
    ['sg.'],
    String.raw`SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}`,
    'SendGrid API keys; gitleaks rule sendgrid-api-token',
    'A-Za-z0-9_.-',
  ),
  token(
    'vault',
    ['hvs.', 'hvb.', 'hvr.'],
    String.raw`hv[sbr]\.[A-Za-z0-9_-]{24,256}`,
    'HashiCorp Vault token prefixes (developer.hashicorp.com/vault/docs/concepts/tokens); gitleaks rule vault-*',
    'A-Za-z0-9_.-',
  ),
  token(
    'shopify',
    ['shpat_', 'shpca_', 'shppa_', 'shpss_'],
    'shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}',
    'Shopify access tokens and shared secrets; gitleaks rules shopify-*',
  ),
  token(
    'mailgun',
    ['key-'],
    'key-[0-9a-f]{32}',
    'Mailgun private API keys; gitleaks rule mailgun-private-api-token',
  ),
  token(
    'heroku',
    ['hrku-'],
    'HRKU-[A-Za-z0-9_-]{60}',
    'Heroku API keys (new format); gitleaks rule heroku-api-key-v2',
  ),
  token(
    'hugging-face',
    ['hf_', 'api_org_'],
    'hf_[A-Za-z]{34}|api_org_[A-Za-z]{34}',
    'Hugging Face user and organization tokens; gitleaks rules huggingface-*',
    'A-Za-z0-9_',
  ),
  token(
    'digitalocean',
    ['dop_v1_', 'doo_v1_', 'dor_v1_'],
    'do[opr]_v1_[a-f0-9]{64}',
    'DigitalOcean personal, OAuth and refresh tokens; gitleaks rules digitalocean-*',
  ),
  token(
    'doppler',
    ['dp.pt.', 'dp.st.', 'dp.ct.', 'dp.sa.', 'dp.scim.', 'dp.audit.'],
    String.raw`dp\.(?:pt|st|ct|sa|scim|audit)\.[A-Za-z0-9]{40,44}`,
    'Doppler token prefixes (docs.doppler.com, token formats); gitleaks rule doppler-api-token',
    'A-Za-z0-9_.-',
  ),
  token('linear', ['lin_api_'], 'lin_api_[A-Za-z0-9]{40}', 'Linear API keys; gitleaks rule linear-api-key'),
  token(
    'grafana',
    ['glc_', 'glsa_'],
    'glc_[A-Za-z0-9+/]{32,400}={0,2}|glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}',
    'Grafana Cloud tokens and service account tokens; gitleaks rules grafana-*',
    'A-Za-z0-9_+/=-',
  ),
  token(
    'databricks',
    ['dapi'],
    String.raw`dapi[a-f0-9]{32}(?:-\d)?`,
    'Databricks personal access tokens; gitleaks rule databricks-api-token',
  ),
  token(
    'telegram-bot',
    [':aa'],
    String.raw`\d{8,10}:AA[0-9A-Za-z_-]{33}`,
    'Telegram Bot API tokens (core.telegram.org/bots/api#authorizing-your-bot); gitleaks rule telegram-bot-api-token',
    '0-9A-Za-z_-',
  ),
  token(
    'age-secret-key',
    ['age-secret-key-1'],
    'AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}',
    'age X25519 identities (age-encryption.org/v1, Bech32); gitleaks rule age-secret-key',
  ),
];
