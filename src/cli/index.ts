#!/usr/bin/env node
import { parseArgs } from 'node:util';
/**
 * The `pgsight` command (package.json `bin`): `npx pgsight setup ...`. Progress on stdout, one line per
 * step; a failure is one line on stderr with its error code, and a distinct exit status per kind.
 */
import { processConfig } from '../config/env.js';
import { Problems } from '../config/problems.js';
import { PgsightError, type PgsightErrorCode } from '../errors.js';
import { type SetupOptions, setup } from './setup.js';

const HELP = `Usage: pgsight setup [--elasticsearch URL] [--kibana URL] [--api-key KEY | --user USER --password PASSWORD]
                     [--space SPACE] [--dry-run]

Installs what pgsight's Kibana dashboards need:
  Elasticsearch  the ILM policy pgsight-logs, the component template pgsight-mappings and the index
                 template logs-pgsight (data streams logs-pgsight.*-*)
  Kibana         the dashboards in dashboards/*.ndjson, with their data view (imported with overwrite)

Running it again changes nothing when everything is installed already.

Options:
  --elasticsearch URL   Elasticsearch to install the templates and ILM policy into
  --kibana URL          Kibana to import the dashboards into
  --api-key KEY         an API key (the encoded form), sent to both
  --user USER           basic authentication user, sent to both (with --password)
  --password PASSWORD   basic authentication password
                        Prefer the environment to these three (the command line shows in ps):
                        ELASTICSEARCH_API_KEY, or ELASTICSEARCH_USERNAME and ELASTICSEARCH_PASSWORD;
                        KIBANA_API_KEY, KIBANA_USERNAME, KIBANA_PASSWORD for Kibana's own (default: the same)
  --space SPACE         Kibana space to import into (default: the default space)
  --dry-run             print what would change, change nothing
  -h, --help            this text

Exit status: 0 done; 2 bad arguments; 3 unreachable; 4 unauthorized; 5 version too old;
             6 partial import; 1 any other error.
`;

const EXIT: Partial<Record<PgsightErrorCode, number>> = {
  PGSIGHT_ERR_ARGUMENT_INVALID: 2,
  PGSIGHT_ERR_SETUP_UNREACHABLE: 3,
  PGSIGHT_ERR_SETUP_UNAUTHORIZED: 4,
  PGSIGHT_ERR_SETUP_VERSION: 5,
  PGSIGHT_ERR_SETUP_IMPORT: 6,
};

const USAGE_HINT = '\nRun pgsight setup --help for usage.';

const SETUP_OPTIONS = {
  elasticsearch: { type: 'string' },
  kibana: { type: 'string' },
  'api-key': { type: 'string' },
  user: { type: 'string' },
  password: { type: 'string' },
  space: { type: 'string' },
  'dry-run': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export function parseSetupArgs(args: string[]): SetupOptions | 'help' {
  // Not strict: every unknown option, stray argument and missing value is collected and named at once.
  const parsed = parseArgs({
    args,
    strict: false,
    tokens: true,
    allowPositionals: true,
    options: SETUP_OPTIONS,
  });
  const problems = new Problems();
  for (const token of parsed.tokens ?? []) {
    if (token.kind === 'positional') problems.add(`unexpected argument ${JSON.stringify(token.value)}`);
    if (token.kind !== 'option') continue;
    const known = SETUP_OPTIONS[token.name as keyof typeof SETUP_OPTIONS];
    if (!known) problems.add(`unknown option ${token.rawName}`);
    else if (known.type === 'string' && token.value === undefined)
      problems.add(`${token.rawName} needs a value`);
    else if (known.type === 'boolean' && token.value !== undefined)
      problems.add(`${token.rawName} takes no value`);
  }
  const v = parsed.values as {
    [K in keyof typeof SETUP_OPTIONS]?: (typeof SETUP_OPTIONS)[K]['type'] extends 'string' ? string : boolean;
  };
  if (v.help) return 'help';
  for (const key of ['elasticsearch', 'kibana'] as const) {
    const value = v[key];
    if (value !== undefined && !/^https?:\/\/[^/\s]+/.test(value))
      problems.add(`--${key} must be an http(s) URL, got ${JSON.stringify(value)}`);
  }
  if (!v.elasticsearch && !v.kibana) problems.add('give --elasticsearch URL, --kibana URL, or both');
  if (v['api-key'] !== undefined && (v.user !== undefined || v.password !== undefined))
    problems.add('--api-key and --user / --password are alternatives: give one');
  if ((v.user === undefined) !== (v.password === undefined))
    problems.add('--user and --password go together');
  problems.throwIfAny('PGSIGHT_ERR_ARGUMENT_INVALID', 'pgsight setup', USAGE_HINT);
  // Credentials on the command line show in `ps`: with no flag, they come from the environment.
  const fromFlags = v['api-key'] !== undefined || v.user !== undefined;
  const { elasticsearch: es, kibana } = processConfig().setupCredentials;
  const envCredentials = fromFlags
    ? {}
    : {
        ...(es.apiKey
          ? { apiKey: es.apiKey }
          : es.username
            ? { user: es.username, password: es.password ?? '' }
            : {}),
        ...(kibana !== es
          ? kibana.apiKey
            ? { kibanaApiKey: kibana.apiKey }
            : kibana.username
              ? { kibanaUser: kibana.username, kibanaPassword: kibana.password ?? '' }
              : {}
          : {}),
      };
  return {
    ...envCredentials,
    ...(v.elasticsearch ? { elasticsearch: v.elasticsearch } : {}),
    ...(v.kibana ? { kibana: v.kibana } : {}),
    ...(v['api-key'] ? { apiKey: v['api-key'] } : {}),
    ...(v.user !== undefined ? { user: v.user, password: v.password ?? '' } : {}),
    ...(v.space ? { space: v.space } : {}),
    dryRun: v['dry-run'] === true,
  };
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(HELP);
    return command === undefined ? 2 : 0;
  }
  if (command !== 'setup') {
    process.stderr.write(`pgsight: unknown command ${JSON.stringify(command)}\n\n${HELP}`);
    return 2;
  }
  try {
    const options = parseSetupArgs(rest);
    if (options === 'help') {
      process.stdout.write(HELP);
      return 0;
    }
    await setup(options, (line) => process.stdout.write(`pgsight setup: ${line}\n`));
    process.stdout.write(`pgsight setup: done${options.dryRun ? ' (dry run: nothing was changed)' : ''}\n`);
    return 0;
  } catch (error) {
    if (error instanceof PgsightError) {
      process.stderr.write(`pgsight setup: ${error.code}: ${error.message}\n`);
      return EXIT[error.code] ?? 1;
    }
    process.stderr.write(`pgsight setup: unexpected failure: ${(error as Error)?.stack ?? String(error)}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
