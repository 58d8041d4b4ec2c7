// A real token server for the distribution token-auth spec, used in front of the real registry
// (`auth.token` in its config). It signs ES256 JWTs with node:crypto; the signing certificate goes
// into the registry's `rootcertbundle`.
//
// Why the JWT header carries `kid`: distribution 2.8 (registry/auth/token/token.go VerifySigningKey)
// accepts a token when its header has an `x5c` chain that verifies against rootcertbundle, a raw
// `jwk`, or a `kid` that equals the libtrust key id of a public key in rootcertbundle. The libtrust
// key id is base32(sha256(SPKI DER)[0:30]) split into 12 groups of 4 characters joined by ':'.
// distribution v3 looks a `kid` up by its RFC 7638 thumbprint instead, and v3.0.0 computes an EC
// key's from the curve's generator point, not the key (registry/auth/token/util.go), so no honest
// `kid` matches there. Both check an `x5c` chain first: we send the signing certificate as `x5c`,
// and the `kid` beside it, which 2.8 would take alone.
import { X509Certificate, createHash, createPrivateKey, createPublicKey, randomUUID, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { runChecked } from './tools.js';

/** One grant rule: repositories matching `repo` may receive at most `actions`. */
export interface Grant {
  /** Exact repository name, or a pattern tested against it. `'*'` matches everything. */
  repo: string | RegExp;
  /** Actions this rule allows, e.g. `['pull']`, `['pull', 'push']`, `['*']` (all). */
  actions: string[];
}

export interface TokenUser {
  password: string;
  /** When absent the user receives exactly the actions it asks for on every repository. */
  grants?: Grant[];
}

export interface TokenIssuerOptions {
  /** `service` the registry is configured with (token `aud`). Default `slipway-test-registry`. */
  service?: string;
  /** Token `iss`. Default `slipway-test-issuer`. */
  issuer?: string;
  /** Users allowed to log in with Basic credentials (or the OAuth2 password grant). */
  users?: Record<string, TokenUser>;
  /** What anonymous callers may get (e.g. `[{ repo: 'public/app', actions: ['pull'] }]`). Default: nothing. */
  anonymous?: Grant[];
  /** `expires_in` of issued tokens. Default 300 s. */
  ttlSeconds?: number;
  /** Serve HTTPS with this certificate and key (PEM): the realm becomes `https://127.0.0.1:PORT/token`. */
  tls?: { cert: string; key: string };
}

export interface ScopeAccess {
  type: string;
  name: string;
  actions: string[];
}

export interface TokenRequestRecord {
  method: string;
  /** Path and query as received. */
  url: string;
  service: string | undefined;
  /** Raw `scope` values, in the order received. */
  scopes: string[];
  /** The account that authenticated (undefined when anonymous or rejected). */
  account: string | undefined;
  /** Whether credentials were presented at all. */
  presentedCredentials: boolean;
  /** `password` (Basic or grant_type=password), `refresh_token`, or `anonymous`. */
  grantType: 'password' | 'refresh_token' | 'anonymous';
  /** HTTP status answered. */
  status: number;
  /** What the token grants (empty on failure). */
  granted: ScopeAccess[];
  at: number;
}

export interface TokenIssuer {
  /** `http://127.0.0.1:PORT/token` — the registry's `auth.token.realm`. */
  realm: string;
  service: string;
  issuer: string;
  /** PEM certificate of the signing key — the registry's `auth.token.rootcertbundle`. */
  certPath: string;
  /** Key id placed in the JWT header (libtrust format). */
  keyId: string;
  /** Every request received, oldest first. */
  readonly requests: TokenRequestRecord[];
  addUser(username: string, password: string, grants?: Grant[]): void;
  setGrants(username: string, grants: Grant[] | undefined): void;
  setAnonymous(grants: Grant[]): void;
  setTtl(seconds: number): void;
  /** Answer the next `count` requests with `status` (e.g. 500) to test token-server failures. */
  failNext(status: number, count?: number): void;
  /** Hold the next `count` requests this long before answering (an exchange still in flight). */
  delayNext(ms: number, count?: number): void;
  /** Sign an arbitrary token (for tests of expired or forged tokens). */
  signToken(access: ScopeAccess[], claims?: { subject?: string; ttlSeconds?: number; issuedAt?: number; audience?: string; issuer?: string }): string;
  stop(): Promise<void>;
}

const REFRESH_PREFIX = 'slipway-refresh-';

/** libtrust key id of a public key (see the header comment). */
export function libtrustKeyId(publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  const sum = createHash('sha256').update(der).digest().subarray(0, 30);
  const b32 = base32(sum);
  return b32.match(/.{1,4}/g)!.join(':');
}

function base32(buf: Buffer): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of buf) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
  return out;
}

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

/** Parses `repository:name:pull,push` (name may contain ':' only in the middle part). */
export function parseScope(scope: string): ScopeAccess | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first <= 0 || last === first) return undefined;
  return {
    type: scope.slice(0, first),
    name: scope.slice(first + 1, last),
    actions: scope.slice(last + 1).split(',').filter((a) => a.length > 0),
  };
}

function repoMatches(rule: Grant, name: string): boolean {
  if (rule.repo === '*') return true;
  return typeof rule.repo === 'string' ? rule.repo === name : rule.repo.test(name);
}

function allowed(grants: Grant[] | undefined, scope: ScopeAccess): string[] {
  if (grants === undefined) return scope.actions;
  const ok = new Set<string>();
  for (const rule of grants) {
    if (!repoMatches(rule, scope.name)) continue;
    for (const a of scope.actions) if (rule.actions.includes(a) || rule.actions.includes('*')) ok.add(a);
  }
  return scope.actions.filter((a) => ok.has(a));
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startTokenIssuer(options: TokenIssuerOptions = {}): Promise<TokenIssuer> {
  const service = options.service ?? 'slipway-test-registry';
  const issuerName = options.issuer ?? 'slipway-test-issuer';
  const users = new Map<string, TokenUser>(Object.entries(options.users ?? {}));
  let anonymous: Grant[] = options.anonymous ?? [];
  let ttl = options.ttlSeconds ?? 300;
  let failures: { status: number; count: number } | undefined;
  let delays: { ms: number; count: number } | undefined;
  const requests: TokenRequestRecord[] = [];
  const refreshTokens = new Map<string, string>();

  const dir = await mkdtemp(join(tmpdir(), 'slipway-token-'));
  const keyPath = join(dir, 'signing.key');
  const certPath = join(dir, 'signing.crt');
  // The registry only reads certificates from rootcertbundle, so the key needs an X.509 wrapper;
  // node:crypto cannot write certificates, the openssl CLI can.
  await runChecked('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', keyPath, '-out', certPath, '-days', '2', '-subj', '/CN=slipway-test-token-issuer']);
  const privateKey = createPrivateKey(await readFile(keyPath));
  const publicKey = createPublicKey(await readFile(certPath));
  const keyId = libtrustKeyId(publicKey);
  const certificateChain = [new X509Certificate(await readFile(certPath)).raw.toString('base64')];

  function signToken(access: ScopeAccess[], claims: { subject?: string; ttlSeconds?: number; issuedAt?: number; audience?: string; issuer?: string } = {}): string {
    const iat = claims.issuedAt ?? Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'ES256', kid: keyId, x5c: certificateChain };
    const payload = {
      iss: claims.issuer ?? issuerName,
      sub: claims.subject ?? '',
      aud: claims.audience ?? service,
      exp: iat + (claims.ttlSeconds ?? ttl),
      // A little slack so a token is valid the moment it is handed out, even across a second boundary.
      nbf: iat - 5,
      iat,
      jti: randomUUID(),
      access,
    };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
    // JWS ES256 wants the raw r||s signature, not DER.
    const sig = sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' });
    return `${input}.${b64url(sig)}`;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://issuer');
    let params = url.searchParams;
    if (req.method === 'POST') params = new URLSearchParams(await readBody(req));
    else await readBody(req);
    const scopes = params.getAll('scope').flatMap((s) => s.split(' ')).filter((s) => s.length > 0);
    const record: TokenRequestRecord = {
      method: req.method ?? 'GET', url: req.url ?? '/', service: params.get('service') ?? undefined, scopes,
      account: undefined, presentedCredentials: false, grantType: 'anonymous', status: 0, granted: [], at: Date.now(),
    };
    requests.push(record);
    if (delays !== undefined && delays.count > 0) {
      delays.count -= 1;
      await sleep(delays.ms);
    }
    const reply = (status: number, body: unknown, headers: Record<string, string> = {}): void => {
      record.status = status;
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(body));
    };
    if (url.pathname !== '/token') return reply(404, { errors: [{ code: 'NOT_FOUND', message: 'not found' }] });
    if (failures !== undefined && failures.count > 0) {
      failures.count -= 1;
      return reply(failures.status, { errors: [{ code: 'UNAVAILABLE', message: 'injected token-server failure' }] });
    }

    let account: string | undefined;
    let grants: Grant[] | undefined = anonymous;
    const authz = req.headers.authorization;
    const unauthorized = (): void => reply(401, { errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] },
      { 'www-authenticate': `Basic realm="slipway-test-issuer"` });
    if (req.method === 'POST' && params.get('grant_type') === 'refresh_token') {
      record.grantType = 'refresh_token';
      record.presentedCredentials = true;
      account = refreshTokens.get(params.get('refresh_token') ?? '');
      if (account === undefined) return unauthorized();
    } else if (req.method === 'POST' && params.get('grant_type') === 'password') {
      record.grantType = 'password';
      record.presentedCredentials = true;
      const user = users.get(params.get('username') ?? '');
      if (user === undefined || user.password !== params.get('password')) return unauthorized();
      account = params.get('username') ?? undefined;
    } else if (authz !== undefined) {
      record.grantType = 'password';
      record.presentedCredentials = true;
      const m = /^Basic\s+(.+)$/i.exec(authz);
      if (m === null) return unauthorized();
      const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      const name = colon < 0 ? decoded : decoded.slice(0, colon);
      const user = users.get(name);
      if (colon < 0 || user === undefined || user.password !== decoded.slice(colon + 1)) return unauthorized();
      account = name;
    }
    if (account !== undefined) grants = users.get(account)?.grants;
    record.account = account;

    const access: ScopeAccess[] = [];
    for (const raw of scopes) {
      const scope = parseScope(raw);
      if (scope === undefined) continue;
      const actions = allowed(grants, scope);
      if (actions.length > 0) access.push({ type: scope.type, name: scope.name, actions });
    }
    record.granted = access;
    const issuedAt = Math.floor(Date.now() / 1000);
    const token = signToken(access, { subject: account ?? '', issuedAt });
    const body: Record<string, unknown> = {
      token, access_token: token, expires_in: ttl, issued_at: new Date(issuedAt * 1000).toISOString(),
    };
    if (account !== undefined && (req.method === 'POST' || params.get('offline_token') === 'true')) {
      const refresh = `${REFRESH_PREFIX}${randomUUID()}`;
      refreshTokens.set(refresh, account);
      body.refresh_token = refresh;
    }
    return reply(200, body);
  }

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(String(err));
    });
  };
  const server: Server = options.tls ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, handler) : createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  // Do not keep a test process alive because a test forgot stop(); the dir goes at exit regardless.
  server.unref();
  const removeAtExit = (): void => rmSync(dir, { recursive: true, force: true });
  process.once('exit', removeAtExit);
  let stopped = false;

  return {
    realm: `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}/token`,
    service,
    issuer: issuerName,
    certPath,
    keyId,
    requests,
    addUser(username, password, grants) { users.set(username, { password, grants }); },
    setGrants(username, grants) {
      const u = users.get(username);
      if (u === undefined) throw new Error(`token issuer: no user ${username}`);
      u.grants = grants;
    },
    setAnonymous(grants) { anonymous = grants; },
    setTtl(seconds) { ttl = seconds; },
    failNext(status, count = 1) { failures = { status, count }; },
    delayNext(ms, count = 1) { delays = { ms, count }; },
    signToken,
    async stop() {
      if (stopped) return;
      stopped = true;
      process.removeListener('exit', removeAtExit);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
