// JWT verification for connection and subscription tokens (jose). Keys come from the config: an
// HMAC secret, RSA or ECDSA public keys (PEM), or a JWKS endpoint; an algorithm is accepted only when
// its key is configured.
import { createPublicKey, type KeyObject } from 'node:crypto';
import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { linearRegExp, type LinearRegExp } from '../config/regex.js';
import type { TokenConfig } from '../config/schema.js';
import { CLAIM_KEYS, parseKeepingPayloads, payloadText, type PayloadKey } from '../server/json-source.js';

/** The outcome of verifying a token. */
export type TokenResult =
  | { readonly status: 'ok'; readonly claims: JWTPayload & Record<string, unknown> }
  | { readonly status: 'expired' }
  | { readonly status: 'invalid'; readonly reason: string };

const HMAC = ['HS256', 'HS384', 'HS512'];
const RSA = ['RS256', 'RS384', 'RS512'];
const ECDSA = ['ES256', 'ES384', 'ES512'];
const JWKS = [...RSA, ...ECDSA, 'EdDSA'];

/** Verifies tokens against one set of keys. */
export class TokenVerifier {
  private readonly hmac: Uint8Array<ArrayBuffer> | undefined;
  /** The HMAC secret imported for each hash it is asked for (see hmacKey). */
  private readonly hmacKeys = new Map<string, Promise<CryptoKey>>();
  private readonly rsa: KeyObject | undefined;
  private readonly ecdsa: KeyObject | undefined;
  private readonly jwks: JWTVerifyGetKey | undefined;
  private readonly algorithms: string[];
  private readonly audienceRegex: LinearRegExp | undefined;
  private readonly issuerRegex: LinearRegExp | undefined;

  constructor(private readonly config: TokenConfig) {
    if (config.audience_regex) this.audienceRegex = linearRegExp(config.audience_regex);
    if (config.issuer_regex) this.issuerRegex = linearRegExp(config.issuer_regex);
    const algs = new Set<string>();
    if (config.hmac_secret_key) {
      this.hmac = new TextEncoder().encode(config.hmac_secret_key);
      HMAC.forEach((a) => algs.add(a));
    }
    if (config.rsa_public_key) {
      this.rsa = createPublicKey(config.rsa_public_key);
      RSA.forEach((a) => algs.add(a));
    }
    if (config.ecdsa_public_key) {
      this.ecdsa = createPublicKey(config.ecdsa_public_key);
      ECDSA.forEach((a) => algs.add(a));
    }
    if (config.jwks_public_endpoint) {
      this.jwks = createRemoteJWKSet(new URL(config.jwks_public_endpoint), { cacheMaxAge: 3_600_000 });
      JWKS.forEach((a) => algs.add(a));
    }
    this.algorithms = [...algs];
  }

  /** True when at least one key is configured. */
  get configured(): boolean {
    return this.algorithms.length > 0;
  }

  /** Verifies signature, `exp`, `nbf` and, when configured, `aud` and `iss` (as given, or matching an expression). */
  async verify(token: string): Promise<TokenResult> {
    if (!this.configured) return { status: 'invalid', reason: 'no token key configured' };
    try {
      const { payload } = await jwtVerify(token, this.keyFor, {
        algorithms: this.algorithms,
        audience: this.config.audience || undefined,
        issuer: this.config.issuer || undefined,
      });
      const refused = this.claimRefused(payload);
      if (refused) return { status: 'invalid', reason: refused };
      return { status: 'ok', claims: claimsKeepingPayloads(token, payload) };
    } catch (err) {
      if (err instanceof errors.JWTExpired) {
        // Signed, but for another audience or issuer: invalid, expired or not (as with `audience` / `issuer`).
        const refused = this.claimRefused(err.payload);
        return refused ? { status: 'invalid', reason: refused } : { status: 'expired' };
      }
      return { status: 'invalid', reason: err instanceof Error ? err.message : String(err) };
    }
  }

  /** Why a signed token's `aud` or `iss` is refused by audience_regex / issuer_regex (a missing `iss` is matched as ""). */
  private claimRefused(payload: JWTPayload): string | undefined {
    if (this.audienceRegex) {
      const audiences = typeof payload.aud === 'string' ? [payload.aud] : Array.isArray(payload.aud) ? payload.aud : [];
      if (!audiences.some((aud) => this.audienceRegex!.test(aud))) return 'aud does not match audience_regex';
    }
    if (this.issuerRegex && !this.issuerRegex.test(typeof payload.iss === 'string' ? payload.iss : '')) return 'iss does not match issuer_regex';
    return undefined;
  }

  private readonly keyFor: JWTVerifyGetKey = async (header, token) => {
    const alg = header.alg ?? '';
    if (HMAC.includes(alg) && this.hmac) return this.hmacKey(alg);
    if (RSA.includes(alg) && this.rsa) return this.rsa;
    if (ECDSA.includes(alg) && this.ecdsa) return this.ecdsa;
    if (this.jwks) return this.jwks(header, token);
    throw new Error(`no key for algorithm ${alg}`);
  };

  /**
   * The HMAC secret as a Web Crypto key for `alg`'s hash, imported once. jose verifies with Web Crypto:
   * given bytes or a KeyObject it imports a key for every token (more than the verification costs
   * itself, paid on every connect of a storm); a CryptoKey is bound to one hash, so one per alg.
   */
  private hmacKey(alg: string): Promise<CryptoKey> {
    let key = this.hmacKeys.get(alg);
    if (!key) {
      key = crypto.subtle.importKey('raw', this.hmac!, { name: 'HMAC', hash: `SHA-${alg.slice(2)}` }, false, ['verify']);
      this.hmacKeys.set(alg, key);
    }
    return key;
  }
}

/**
 * The verified claims, parsed again from the token's payload text so that `info`, `data` and `meta` keep the
 * source text rawJsonClaim passes on (jose's parse would round a 64-bit integer in them). The text is
 * the one jose has just verified and parsed, so this parse gives the same claims.
 */
function claimsKeepingPayloads(token: string, payload: JWTPayload): JWTPayload & Record<string, unknown> {
  const text = Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8');
  try {
    const claims = parseKeepingPayloads(text, CLAIM_KEYS);
    if (claims && typeof claims === 'object' && !Array.isArray(claims)) return claims as JWTPayload & Record<string, unknown>;
  } catch {
    // jose parsed the same text: keep its claims if this parse fails all the same.
  }
  return payload as JWTPayload & Record<string, unknown>;
}

/**
 * Reads `info` / `b64info`-style claims into raw JSON text (undefined when absent). A `b64` value is
 * written into JSON lines as is, so it must be JSON (else it is ignored) and loses its raw newlines
 * (only whitespace in JSON; they would split the line).
 */
export function rawJsonClaim(claims: Record<string, unknown>, name: PayloadKey): string | undefined {
  const b64 = claims[`b64${name}`];
  if (typeof b64 === 'string' && b64 !== '') {
    const text = Buffer.from(b64, 'base64').toString('utf8').replace(/\n/g, '');
    try {
      JSON.parse(text);
      return text;
    } catch {
      return undefined;
    }
  }
  return jsonClaimText(claims, name);
}

/**
 * A claim's JSON value as written (no base64 form: Centrifugo's `meta`), on one line: a raw newline
 * in JSON text is whitespace, and the text goes into newline-delimited frames and Redis envelope
 * headers. Undefined when absent or null.
 */
export function jsonClaimText(claims: Record<string, unknown>, name: PayloadKey): string | undefined {
  if (claims[name] === null) return undefined;
  return payloadText(claims, name)?.replace(/\n/g, '');
}

/** The user id a token names in `claim` ('' when absent): numbers count as their decimal text. */
export function tokenUser(claims: Record<string, unknown>, claim: string): string {
  const user = claims[claim];
  return typeof user === 'string' ? user : typeof user === 'number' || typeof user === 'bigint' ? String(user) : '';
}

/** The expiry a token sets for the connection or subscription, in ms since the epoch; 0 = never. */
export function tokenExpiry(claims: Record<string, unknown>): number {
  if (typeof claims.expire_at === 'number') return expireAtMs(claims);
  return typeof claims.exp === 'number' ? claims.exp * 1000 : 0;
}

/**
 * An `expire_at` (Unix seconds, a token's claim or a proxy's result) in ms since the epoch; 0 when
 * absent or 0 (never).
 */
export function expireAtMs(fields: Record<string, unknown>): number {
  return typeof fields.expire_at === 'number' && fields.expire_at > 0 ? fields.expire_at * 1000 : 0;
}

/**
 * What is wrong with a connection token's claims, as Centrifugo reads them into typed fields (a token
 * it cannot read is invalid): `channels` a list of strings, `subs` an object, `expire_at` a number,
 * `b64info` a string. Undefined when nothing is.
 */
export function malformedConnectClaims(claims: Record<string, unknown>): string | undefined {
  const { channels, subs, expire_at: expireAt, b64info } = claims;
  if (channels !== undefined && !(Array.isArray(channels) && channels.every((c) => typeof c === 'string'))) return 'channels is not a list of strings';
  if (subs !== undefined && (typeof subs !== 'object' || subs === null || Array.isArray(subs))) return 'subs is not an object';
  if (expireAt !== undefined && typeof expireAt !== 'number') return 'expire_at is not a number';
  if (b64info !== undefined && typeof b64info !== 'string') return 'b64info is not a string';
  // A user id Centrifugo reads as a string; a number is taken as its digits, anything else (an
  // object, a list, true) would connect as no user at all.
  const { sub } = claims;
  if (sub !== undefined && sub !== null && typeof sub !== 'string' && typeof sub !== 'number') return 'sub is not a string';
  return 'channel' in claims ? 'channel claim' : undefined;
}
