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
    // A value from the environment or a flag: the error says where it came from.
    const origin = (key: string): string => {
      const flag = Object.keys(sources.overrides ?? {}).find((k) => k === key || key.startsWith(`${k}.`));
      if (flag) return ' (from the command line)';
      const env = Object.keys(sources.env ?? {}).find((name) => name.startsWith('HERALD_') && name === envName(key));
      return env ? ` (from the environment, ${env})` : '';
    };
    throw new HeraldError('HERALD_ERR_CONFIG', formatIssues(parsed.error, sources.file, renamed.filter((r) => !later(r.herald)), origin));
  }
  return deepFreeze(parsed.data);
}

/** A schema as zod 4 describes itself: its kind and what it wraps or holds. */
interface SchemaDef {
  readonly type: string;
  readonly shape?: Record<string, z.ZodType>;
  readonly innerType?: z.ZodType;
  readonly in?: z.ZodType;
  readonly out?: z.ZodType;
}
const defOf = (schema: z.ZodType): SchemaDef => (schema as unknown as { _zod: { def: SchemaDef } })._zod.def;

/**
 * The leaf keys of the configuration schema with their kinds (`string`, `number`, `record`, …): every
 * key, those without a default (optional ones, Centrifugo's aliases) and those holding an object of
 * any keys (`http.static_headers`) too.
 */
function schemaLeaves(): Array<[path: string, type: string]> {
  const out: Array<[string, string]> = [];
  const walk = (schema: z.ZodType, prefix: string[]): void => {
    const def = defOf(schema);
    switch (def.type) {
      case 'object':
        for (const [k, v] of Object.entries(def.shape!)) if (!k.startsWith('$')) walk(v, [...prefix, k]);
        return;
      case 'default':
      case 'prefault':
      case 'optional':
      case 'nullable':
      case 'readonly':
      case 'catch':
        return walk(def.innerType!, prefix);
      case 'pipe':
        // A preprocess is a transform piped into the schema it feeds; a transform after the schema, the reverse.
        return walk(defOf(def.in!).type === 'transform' ? def.out! : def.in!, prefix);
      default:
        out.push([prefix.join('.'), def.type]);
    }
  };
  walk(configSchema, []);
  return out;
}

/** The leaf key paths of the configuration, e.g. `client.token.hmac_secret_key`. */
export function configKeyPaths(): string[] {
  return schemaLeaves().map(([path]) => path);
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
  const out = new Set<string>(schemaLeaves().flatMap(([path, type]) => (type === 'string' ? [path] : [])));
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

function formatIssues(error: z.ZodError, file: string | undefined, renamed: readonly Renamed[], origin: (key: string) => string): string {
  const lines = error.issues.map((issue) => {
    let key = issue.path.length ? issue.path.map(String).join('.') : '(top level)';
    const from = issue.path.length ? origin(key) : '';
    // A value given under Centrifugo's name: the message names it so.
    const alias = renamed.find((r) => key === r.herald || key.startsWith(`${r.herald}.`));
    if (alias) key = `${alias.written}${key.slice(alias.herald.length)} (Herald's ${alias.herald})`;
    let message = issue.message;
    if (issue.code === 'unrecognized_keys') message = `unknown key(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    // A list or an object from the environment or a flag is written as JSON.
    if (from && issue.code === 'invalid_type' && ['array', 'object', 'record'].includes(String(issue.expected))) message += ' (write it as JSON, e.g. ["a","b"] or {"k":"v"})';
    return `  ${key}${from}: ${message}`;
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
