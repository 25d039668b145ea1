#!/usr/bin/env node
// The comparison provider of frontdoor's benchmark (bench/run.sh): the npm package
// `oidc-provider`, set up with the grants the bench measures on frontdoor, on 127.0.0.1.
//
//   node provider.mjs --port 18200 --secret S --redirect-uri http://127.0.0.1:9999/callback \
//     --email bench@example.com --password P [--alg RS256|ES256]
//
// --alg picks the signing key and the algorithm of every token it signs (ID tokens and JWT
// access tokens): RS256 (default) is an RSA 2048 key, ES256 an ECDSA P-256 key, as frontdoor's
// `keys.algorithm` does.
//
// Prints exactly `ready` on stdout once listening; notices go to stderr. No request logging.
//
// Clients (all confidential, client_secret_basic, the same secret S):
//   bench-cc          client_credentials; access tokens are JWTs signed with --alg (RFC 9068 shape, via a
//                     default resource indicator), as frontdoor's are
//   bench-web         authorization_code (PKCE S256) + refresh_token, redirect URI as given;
//                     treated as first party: no consent page (as frontdoor's --first-party);
//                     refresh tokens rotate on every use (as frontdoor's); access tokens are
//                     JWTs signed with --alg, plus an ID token signed with --alg
//   bench-introspect  client_credentials with oidc-provider's default opaque access tokens:
//                     oidc-provider refuses to introspect JWT access tokens, so introspection is
//                     measured on these
// One user, whose password is checked with Argon2id at frontdoor's parameters (m=19456 KiB,
// t=2, p=1: the `argon2` crate's default), on libuv's thread pool.
// Storage: in memory (a Map per model), as in oidc-provider's own development setup. frontdoor
// writes to SQLite with synchronous=FULL; this difference favours oidc-provider on every grant.
//
// Pages for the login (HTML, no JavaScript):
//   GET  /interaction/:uid         the login form (fields `login`, `password`)
//   POST /interaction/:uid/login   checks the password, then continues the authorization

import * as crypto from 'node:crypto';
import * as http from 'node:http';
import { parseArgs } from 'node:util';

import argon2 from 'argon2';
import Provider from 'oidc-provider';

const log = (...args) => console.error('[bench-oidc]', ...args);
console.log = console.error;
console.info = console.error;

const { values: opts } = parseArgs({
  options: {
    port: { type: 'string' },
    secret: { type: 'string' },
    'redirect-uri': { type: 'string' },
    email: { type: 'string' },
    password: { type: 'string' },
    alg: { type: 'string', default: 'RS256' },
  },
  strict: true,
});
const fail = (msg) => { log(msg); process.exit(2); };
const port = Number(opts.port);
if (!Number.isInteger(port) || port <= 0 || port > 65535) fail('--port PORT is required');
for (const k of ['secret', 'redirect-uri', 'email', 'password']) if (!opts[k]) fail(`--${k} is required`);
const ALG = opts.alg;
if (!['RS256', 'ES256'].includes(ALG)) fail('--alg takes RS256 or ES256');

const issuer = `http://127.0.0.1:${port}`;
const RESOURCE = 'urn:frontdoor-bench:api';

const ARGON2 = { type: argon2.argon2id, memoryCost: 19456, timeCost: 2, parallelism: 1 };
const user = {
  sub: crypto.randomUUID(),
  email: opts.email.toLowerCase(),
  name: 'Bench User',
  passwordHash: await argon2.hash(opts.password, ARGON2),
};
const dummyHash = await argon2.hash(crypto.randomBytes(32).toString('hex'), ARGON2);

// --- storage: in memory -------------------------------------------------------------------
const stores = new Map();
const storeFor = (model) => {
  if (!stores.has(model)) stores.set(model, new Map());
  return stores.get(model);
};
const nowS = () => Math.floor(Date.now() / 1000);

class MemoryAdapter {
  constructor(model) { this.store = storeFor(model); }
  async upsert(id, payload, expiresIn) {
    this.store.set(id, { payload, expiresAt: expiresIn ? nowS() + expiresIn : Infinity });
  }
  async find(id) {
    const e = this.store.get(id);
    if (!e) return undefined;
    if (e.expiresAt <= nowS()) { this.store.delete(id); return undefined; }
    return e.payload;
  }
  async findByUid(uid) {
    for (const [id, { payload }] of this.store) if (payload.uid === uid) return this.find(id);
    return undefined;
  }
  async findByUserCode() { return undefined; }
  async consume(id) { const e = this.store.get(id); if (e) e.payload.consumed = nowS(); }
  async destroy(id) { this.store.delete(id); }
  async revokeByGrantId(grantId) {
    for (const s of stores.values()) for (const [id, { payload }] of s) if (payload.grantId === grantId) s.delete(id);
  }
}

// A sweep of expired entries, so that a long run does not grow without bound.
setInterval(() => {
  const t = nowS();
  for (const s of stores.values()) for (const [id, e] of s) if (e.expiresAt <= t) s.delete(id);
}, 30_000).unref();

const { privateKey } = ALG === 'ES256'
  ? crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' })
  : crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
// The only key in the keystore, so nothing can be signed with another algorithm.
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: crypto.randomBytes(8).toString('hex'), use: 'sig', alg: ALG };

const clients = [
  {
    client_id: 'bench-cc', client_secret: opts.secret, grant_types: ['client_credentials'],
    response_types: [], redirect_uris: [], token_endpoint_auth_method: 'client_secret_basic',
  },
  {
    client_id: 'bench-introspect', client_secret: opts.secret, grant_types: ['client_credentials'],
    response_types: [], redirect_uris: [], token_endpoint_auth_method: 'client_secret_basic',
  },
  {
    client_id: 'bench-web', client_secret: opts.secret, grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'], redirect_uris: [opts['redirect-uri']], token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: ALG,
  },
];

const page = (title, body) => `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>${title}</title></head><body><h1>${title}</h1>
${body}
</body></html>`;

const configuration = {
  adapter: MemoryAdapter,
  clients,
  // Also the default of a resource server's `jwt.sign.alg` in oidc-provider 9.
  clientDefaults: { id_token_signed_response_alg: ALG },
  jwks: { keys: [signingKey] },
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  scopes: ['openid', 'offline_access', 'email', 'profile', 'api'],
  claims: { openid: ['sub'], email: ['email'], profile: ['name'] },
  ttl: {
    AccessToken: 3600, ClientCredentials: 3600, IdToken: 3600, AuthorizationCode: 60,
    RefreshToken: 30 * 24 * 3600, Interaction: 600, Session: 12 * 3600, Grant: 30 * 24 * 3600,
  },
  pkce: { required: () => true },
  clientAuthMethods: ['client_secret_basic', 'client_secret_post'],
  responseTypes: ['code'],
  // Refresh tokens rotate on every use, and one is issued whenever the client may refresh
  // (frontdoor: rotation always; a refresh token when offline_access is granted, which the
  // bench asks for there).
  rotateRefreshToken: true,
  async issueRefreshToken(ctx, client) { return client.grantTypeAllowed('refresh_token'); },
  // bench-web is first party: grant what it asks for without a consent page.
  async loadExistingGrant(ctx) {
    const { client, session, params } = ctx.oidc;
    const existing = ctx.oidc.result?.consent?.grantId || session.grantIdFor(client.clientId);
    if (existing) {
      const g = await ctx.oidc.provider.Grant.find(existing);
      if (g) return g;
    }
    const grant = new ctx.oidc.provider.Grant({ clientId: client.clientId, accountId: session.accountId });
    grant.addOIDCScope(String(params.scope ?? 'openid'));
    grant.addResourceScope(RESOURCE, 'api');
    await grant.save();
    return grant;
  },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    // As frontdoor: a client sees only its own tokens.
    introspection: { enabled: true, async allowedPolicy(ctx, client, token) { return token.clientId === client.clientId; } },
    revocation: { enabled: true },
    userinfo: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource(ctx, client) {
        return client.clientId === 'bench-introspect' ? undefined : RESOURCE;
      },
      getResourceServerInfo(ctx, resource) {
        if (resource !== RESOURCE) throw new Error('unknown resource');
        return { scope: 'api', audience: RESOURCE, accessTokenTTL: 3600, accessTokenFormat: 'jwt', jwt: { sign: { alg: ALG } } };
      },
      useGrantedResource() { return true; },
    },
  },
  async findAccount(ctx, sub) {
    if (sub !== user.sub) return undefined;
    return { accountId: sub, async claims() { return { sub, email: user.email, name: user.name }; } };
  },
  async renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = page('Error', `<pre id="error">${JSON.stringify(out)}</pre>`);
  },
};

const provider = new Provider(issuer, configuration);
for (const event of ['server_error', 'grant.error', 'authorization.error', 'introspection.error']) {
  provider.on(event, (ctx, err) => log(event, err?.message ?? err, err?.error_description ?? ''));
}

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

const loginPage = (uid, error) => page('Sign in', `${error ? `<p id="error">${error}</p>\n` : ''}<form id="login-form" method="post" action="/interaction/${uid}/login">
  <label>Email <input type="text" name="login"></label>
  <label>Password <input type="password" name="password"></label>
  <button type="submit">Sign in</button>
</form>`);

provider.use(async (ctx, next) => {
  const m = ctx.path.match(/^\/interaction\/([^/]+)(?:\/(login))?$/);
  if (!m) return next();
  const [, uid, action] = m;
  ctx.set('cache-control', 'no-store');
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  if (details.uid !== uid || details.prompt.name !== 'login') {
    ctx.status = 400;
    ctx.body = page('Error', `<p id="error">unexpected prompt ${details.prompt.name}</p>`);
    return undefined;
  }
  if (!action && ctx.method === 'GET') {
    ctx.type = 'html';
    ctx.body = loginPage(uid);
    return undefined;
  }
  if (action === 'login' && ctx.method === 'POST') {
    const form = await readForm(ctx.req);
    const known = (form.get('login') ?? '').trim().toLowerCase() === user.email;
    const ok = await argon2.verify(known ? user.passwordHash : dummyHash, form.get('password') ?? '');
    if (!known || !ok) {
      ctx.status = 401;
      ctx.type = 'html';
      ctx.body = loginPage(uid, 'Wrong email or password.');
      return undefined;
    }
    await provider.interactionFinished(ctx.req, ctx.res, { login: { accountId: user.sub } }, { mergeWithLastSubmission: false });
    return undefined;
  }
  ctx.status = 405;
  ctx.body = 'method not allowed';
  return undefined;
});

const server = http.createServer({ keepAliveTimeout: 60_000 }, provider.callback());
server.on('error', (err) => fail(`listen on 127.0.0.1:${port}: ${err.message}`));
server.listen(port, '127.0.0.1', () => {
  log(`issuer ${issuer}, ${ALG} signing key`);
  process.stdout.write('ready\n');
});
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
