// Which commands a Webdis client may run. Rules from `webdis.acl` apply in order, later ones
// overriding earlier ones for a client that matches several (as in Webdis); a rule matches by client
// address (IP or CIDR) and/or HTTP Basic credentials. Unlike Webdis, names match whole (disabling
// GETSET does not block GET) and, with no rule naming a command, only pub/sub and PING are open.
import { createHash, timingSafeEqual } from 'node:crypto';
import { BlockList, isIP } from 'node:net';

/** One ACL rule as configured. */
export interface AclRuleConfig {
  readonly ip?: string;
  readonly http_basic_auth?: string;
  readonly enabled: readonly string[];
  readonly disabled: readonly string[];
}

/** Commands open to every client unless a rule disables them. */
export const DEFAULT_COMMANDS: ReadonlySet<string> = new Set(['SUBSCRIBE', 'PSUBSCRIBE', 'UNSUBSCRIBE', 'PUNSUBSCRIBE', 'PUBLISH', 'PING']);

/** Commands refused whatever the rules say: they would change the state of a shared Redis connection. */
export const ALWAYS_REFUSED: ReadonlySet<string> = new Set(['MULTI', 'EXEC', 'WATCH', 'DISCARD', 'SELECT']);

/** Whether a client may run a command (by name, any case). */
export type Permissions = (command: string) => boolean;

interface Rule {
  readonly net: BlockList | undefined;
  readonly credentials: Buffer | undefined;
  readonly enabled: ReadonlySet<string>;
  readonly disabled: ReadonlySet<string>;
}

/** The compiled `webdis.acl`. */
export class Acl {
  private readonly rules: readonly Rule[];

  constructor(rules: readonly AclRuleConfig[]) {
    this.rules = rules.map((r) => ({
      net: r.ip ? subnet(r.ip) : undefined,
      credentials: r.http_basic_auth !== undefined ? digest(r.http_basic_auth) : undefined,
      enabled: new Set(r.enabled.map((c) => c.toUpperCase())),
      disabled: new Set(r.disabled.map((c) => c.toUpperCase())),
    }));
  }

  /** The permissions of a client, from its address and its `Authorization` header. */
  permissions(address: string | undefined, authorization: string | undefined): Permissions {
    const ip = clientAddress(address);
    const credentials = basicCredentials(authorization);
    const matching = this.rules.filter((rule) => matches(rule, ip, credentials));
    const cache = new Map<string, boolean>();
    return (command) => {
      const name = command.toUpperCase();
      let allowed = cache.get(name);
      if (allowed === undefined) {
        allowed = decide(name, matching);
        if (cache.size < 256) cache.set(name, allowed);
      }
      return allowed;
    };
  }
}

function decide(name: string, rules: readonly Rule[]): boolean {
  if (ALWAYS_REFUSED.has(name)) return false;
  let allowed = DEFAULT_COMMANDS.has(name);
  for (const rule of rules) {
    // Within one rule, `disabled` wins over `enabled` (Webdis applies them in that order).
    if (rule.enabled.has(name) || rule.enabled.has('*')) allowed = true;
    if (rule.disabled.has(name) || rule.disabled.has('*')) allowed = false;
  }
  return allowed;
}

function matches(rule: Rule, ip: { address: string; family: 'ipv4' | 'ipv6' } | undefined, credentials: Buffer | undefined): boolean {
  if (rule.credentials && !(credentials && timingSafeEqual(rule.credentials, credentials))) return false;
  if (rule.net && !(ip && rule.net.check(ip.address, ip.family))) return false;
  return true;
}

/** A socket's address, with IPv4-mapped IPv6 (`::ffff:127.0.0.1`) read as the IPv4 address it is. */
function clientAddress(address: string | undefined): { address: string; family: 'ipv4' | 'ipv6' } | undefined {
  if (!address) return undefined;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return { address: mapped[1]!, family: 'ipv4' };
  const family = isIP(address);
  if (family === 4) return { address, family: 'ipv4' };
  if (family === 6) return { address, family: 'ipv6' };
  return undefined;
}

/** The digest of the `user:password` an `Authorization: Basic …` header carries. */
function basicCredentials(header: string | undefined): Buffer | undefined {
  const m = header ? /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header) : null;
  return m ? digest(Buffer.from(m[1]!, 'base64').toString('utf8')) : undefined;
}

/** Fixed-length digests, so credentials compare in constant time whatever their lengths. */
function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** An `ip` rule (`10.0.0.0/8`, `127.0.0.1`, `::1`, `fd00::/8`) as a BlockList. */
function subnet(spec: string): BlockList {
  const [address, bits] = spec.split('/') as [string, string | undefined];
  const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
  const list = new BlockList();
  list.addSubnet(address, bits === undefined ? (family === 'ipv4' ? 32 : 128) : Number(bits), family);
  return list;
}
