// Loading: defaults < file < environment (HERALD_*) < flags; validated once, then frozen.
import { readFileSync } from 'node:fs';
import { HeraldError } from '../errors.js';
import { fromCentrifugoNames, isPlain, type Plain, type Renamed } from './centrifugo-names.js';
import { configSchema, type HeraldConfig, type HeraldConfigInput } from './schema.js';
import type { z } from 'zod';


/** Where configuration comes from, lowest precedence first. */
export interface ConfigSources {
  /** Path of a JSON config file. */
  readonly file?: string;
  /** Values as if read from a file (used by createHerald). */
  readonly values?: HeraldConfigInput;
  /** Environment variables; only `HERALD_*` ones are read. */
  readonly env?: NodeJS.ProcessEnv;
  /** Overrides by dotted key path, e.g. `{"client.token.hmac_secret_key": "s"}` (from CLI flags). */
  readonly overrides?: Readonly<Record<string, unknown>>;
}

/** Builds, validates and freezes the configuration; throws HeraldError HERALD_ERR_CONFIG naming each bad key. */
export function loadConfig(sources: ConfigSources = {}): HeraldConfig {
  let merged: Plain = {};
  // A file and a program's values may use Centrifugo v6's names (centrifugo-names.ts); errors name a
  // key as it was written.
  const renamed: Renamed[] = [];
  const problems: string[] = [];
  for (const source of [sources.file === undefined ? undefined : readConfigFile(sources.file), sources.values as Plain | undefined]) {
    if (source === undefined) continue;
    const translated = fromCentrifugoNames(source);
    renamed.push(...translated.renamed);
    problems.push(...translated.problems);
    merged = deepMerge(merged, translated.values);
  }
  if (problems.length) throw new HeraldError('HERALD_ERR_CONFIG', invalid(problems.map((line) => `  ${line}`), sources.file));
  const env = sources.env ? fromEnv(sources.env) : {};
  merged = deepMerge(merged, env);
  for (const [path, value] of Object.entries(sources.overrides ?? {})) setPath(merged, path.split('.'), value);
  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) {
    // A key the environment or a flag set again is named as Herald names it.
    const later = (path: string) => hasPath(env, path.split('.')) || Object.keys(sources.overrides ?? {}).some((k) => k === path || path.startsWith(`${k}.`));
    throw new HeraldError('HERALD_ERR_CONFIG', formatIssues(parsed.error, sources.file, renamed.filter((r) => !later(r.herald))));
  }
  return deepFreeze(parsed.data);
}

/** The leaf key paths of the configuration, e.g. `client.token.hmac_secret_key`. */
export function configKeyPaths(): string[] {
  const out: string[] = [];
  const walk = (obj: Plain, prefix: string[]) => {
    for (const [k, v] of Object.entries(obj)) {
      if (isPlain(v)) walk(v, [...prefix, k]);
      else out.push([...prefix, k].join('.'));
    }
  };
  walk(configSchema.parse({}) as Plain, []);
  return out;
}

/** The environment variable that sets a key path: `client.token.hmac_secret_key` → `HERALD_CLIENT_TOKEN_HMAC_SECRET_KEY`. */
export function envName(path: string): string {
  return `HERALD_${path.replace(/\./g, '_').toUpperCase()}`;
}

function readConfigFile(file: string): Plain {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new HeraldError('HERALD_ERR_CONFIG', `cannot read config file ${file}: ${(err as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new HeraldError('HERALD_ERR_CONFIG', `config file ${file} is not valid JSON: ${(err as Error).message}`);
  }
  if (!isPlain(value)) throw new HeraldError('HERALD_ERR_CONFIG', `config file ${file} must hold a JSON object`);
  return value;
}

function fromEnv(env: NodeJS.ProcessEnv): Plain {
  const out: Plain = {};
  const known = new Map(configKeyPaths().map((p) => [envName(p), p]));
  const textKeys = stringKeyPaths();
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith('HERALD_') || raw === undefined) continue;
    const path = known.get(name);
    if (!path) {
      throw new HeraldError('HERALD_ERR_CONFIG', `unknown environment variable ${name} (see docs/configuration.md)`);
    }
    setPath(out, path.split('.'), textKeys.has(path) ? raw : parseScalar(raw));
  }
  return out;
}

/** Key paths whose value is text (a secret like "123456" must stay a string, not become a number). */
export function stringKeyPaths(): Set<string> {
  const out = new Set<string>();
  const walk = (obj: Plain, prefix: string[]) => {
    for (const [k, v] of Object.entries(obj)) {
      if (isPlain(v)) walk(v, [...prefix, k]);
      else if (typeof v === 'string') out.add([...prefix, k].join('.'));
    }
  };
  walk(configSchema.parse({}) as Plain, []);
  return out;
}

/** Reads an environment or flag value: JSON when it parses (numbers, booleans, arrays), else the text. */
export function parseScalar(raw: string): unknown {
  const t = raw.trim();
  if (t === '') return raw;
  if (/^(true|false|null|-?\d+(\.\d+)?|\[.*\]|\{.*\})$/s.test(t)) {
    try {
      return JSON.parse(t);
    } catch {
      return raw;
    }
  }
  return raw;
}

function hasPath(obj: Plain, path: string[]): boolean {
  let node: unknown = obj;
  for (const key of path) {
    if (!isPlain(node) || !(key in node)) return false;
    node = node[key];
  }
  return true;
}

function setPath(target: Plain, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    if (!isPlain(node[key])) node[key] = {};
    node = node[key] as Plain;
  }
  node[path[path.length - 1]!] = value;
}

function deepMerge(base: Plain, over: Plain): Plain {
  const out: Plain = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = isPlain(v) && isPlain(out[k]) ? deepMerge(out[k] as Plain, v) : v;
  return out;
}

function formatIssues(error: z.ZodError, file: string | undefined, renamed: readonly Renamed[]): string {
  const lines = error.issues.map((issue) => {
    let key = issue.path.length ? issue.path.map(String).join('.') : '(top level)';
    // A value given under Centrifugo's name: the message names it so.
    const alias = renamed.find((r) => key === r.herald || key.startsWith(`${r.herald}.`));
    if (alias) key = `${alias.written}${key.slice(alias.herald.length)} (Herald's ${alias.herald})`;
    let message = issue.message;
    if (issue.code === 'unrecognized_keys') message = `unknown key(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    return `  ${key}: ${message}`;
  });
  return invalid(lines, file);
}

function invalid(lines: readonly string[], file: string | undefined): string {
  return `invalid configuration${file ? ` (${file})` : ''}:\n${lines.join('\n')}`;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
