#!/usr/bin/env node
// A real OpenID Connect provider (the `oidc-provider` package) for frontdoor's federation
// integration tests: one confidential client, users from a JSON file with passwords, its own
// login and consent pages, RP-initiated logout and back-channel logout.
//
//   node provider.js --port 9000 --client-id fd --client-secret s3cret \
//     --redirect-uri http://127.0.0.1:8080/_frontdoor/federation/callback \
//     [--redirect-uri ...] [--post-logout-redirect-uri ...] \
//     [--backchannel-logout-uri http://127.0.0.1:8080/...] --users users.json
//
// Prints exactly `ready` on stdout once listening on 127.0.0.1; everything else goes to stderr.
//
// Pages (HTML, no JavaScript needed):
//   GET  /interaction/:uid          login form (form#login-form, fields `login`, `password`)
//                                   or consent form (form#consent-form, a single submit)
//   POST /interaction/:uid/login    checks the password (login = email or sub); 401 + the form
//                                   again with p#error when wrong
//   POST /interaction/:uid/confirm  grants the requested scopes and claims
//   GET  /interaction/:uid/abort    ends the request with error=access_denied
//   GET  /session/end               the provider's own end_session endpoint: renders
//                                   form#logout-form (hidden `xsrf`, `logout=yes`) that POSTs to
//                                   /session/end/confirm, which sends the back-channel logouts
//                                   before it answers (303)
// Test-only:
//   GET  /test/logout?sub=SUB       ends every provider session of SUB server-side, sending the
//                                   back-channel logout for each client of each session first;
//                                   answers JSON {"sessions": n, "delivered": [..], "failed": [..]}
//   GET  /test/sessions?sub=SUB     JSON list of SUB's live sessions (uid, clients with sid)

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

// stdout carries only `ready`: send every console line (oidc-provider's notices included) to
// stderr.
const log = (...args) => console.error('[oidc-provider]', ...args);
console.log = console.error;
console.info = console.error;

const { values: opts } = parseArgs({
  options: {
    port: { type: 'string' },
    'client-id': { type: 'string' },
    'client-secret': { type: 'string' },
    'redirect-uri': { type: 'string', multiple: true },
    'post-logout-redirect-uri': { type: 'string', multiple: true },
    'backchannel-logout-uri': { type: 'string' },
    'token-endpoint-auth-method': { type: 'string', default: 'client_secret_basic' },
    users: { type: 'string' },
  },
  strict: true,
});

function fail(msg) {
  log(msg);
  process.exit(2);
}

const list = (values) => (values ?? []).flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);

const port = Number(opts.port);
if (!Number.isInteger(port) || port <= 0 || port > 65535) fail('--port PORT is required');
if (!opts['client-id']) fail('--client-id is required');
if (!opts['client-secret']) fail('--client-secret is required');
const redirectUris = list(opts['redirect-uri']);
if (redirectUris.length === 0) fail('--redirect-uri is required');
if (!opts.users) fail('--users FILE is required');

const users = JSON.parse(fs.readFileSync(opts.users, 'utf8'));
if (!Array.isArray(users)) fail('--users must hold a JSON array');
for (const u of users) {
  if (typeof u.sub !== 'string' || !u.sub) fail(`a user without sub: ${JSON.stringify(u)}`);
}
const userBySub = (sub) => users.find((u) => u.sub === sub);
const userByLogin = (login) => users.find((u) => u.email === login || u.sub === login);

const issuer = `http://127.0.0.1:${port}`;

// --- storage: in memory, enumerable so /test/logout can find a user's sessions ---------------
const stores = new Map(); // model name -> Map(id -> { payload, expiresAt })
const storeFor = (model) => {
  if (!stores.has(model)) stores.set(model, new Map());
  return stores.get(model);
};
const now = () => Math.floor(Date.now() / 1000);

class MemoryAdapter {
  constructor(model) {
    this.model = model;
    this.store = storeFor(model);
  }

  async upsert(id, payload, expiresIn) {
    this.store.set(id, { payload, expiresAt: expiresIn ? now() + expiresIn : Infinity });
  }

  async find(id) {
    const entry = this.store.get(id);
    if (!entry) return undefined;
    if (entry.expiresAt <= now()) {
      this.store.delete(id);
      return undefined;
    }
    return entry.payload;
  }

  async findByUid(uid) {
    for (const [id, { payload }] of this.store) {
      if (payload.uid === uid) return this.find(id);
    }
    return undefined;
  }

  async findByUserCode(userCode) {
    for (const [id, { payload }] of this.store) {
      if (payload.userCode === userCode) return this.find(id);
    }
    return undefined;
  }

  async consume(id) {
    const entry = this.store.get(id);
    if (entry) entry.payload.consumed = now();
  }

  async destroy(id) {
    this.store.delete(id);
  }

  async revokeByGrantId(grantId) {
    for (const store of stores.values()) {
      for (const [id, { payload }] of store) {
        if (payload.grantId === grantId) store.delete(id);
      }
    }
  }
}

// --- signing key: a fresh RSA key each start, ID tokens RS256 ----------------------------------
const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = {
  ...privateKey.export({ format: 'jwk' }),
  kid: crypto.randomBytes(8).toString('hex'),
  use: 'sig',
  alg: 'RS256',
};

const client = {
  client_id: opts['client-id'],
  client_secret: opts['client-secret'],
  redirect_uris: redirectUris,
  post_logout_redirect_uris: list(opts['post-logout-redirect-uri']),
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  token_endpoint_auth_method: opts['token-endpoint-auth-method'],
  id_token_signed_response_alg: 'RS256',
};
if (opts['backchannel-logout-uri']) {
  client.backchannel_logout_uri = opts['backchannel-logout-uri'];
  client.backchannel_logout_session_required = true;
}

const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({
  '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
}[c]));

const page = (title, body) => `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>${esc(title)}</title></head>
<body><h1>${esc(title)}</h1>
${body}
</body></html>`;

const configuration = {
  adapter: MemoryAdapter,
  clients: [client],
  jwks: { keys: [signingKey] },
  cookies: {
    // Cookies do not tell ports apart: a relying party on another port of 127.0.0.1 sees these
    // too, so give them names of their own.
    names: { session: 'idp_session', interaction: 'idp_interaction', resume: 'idp_interaction_resume' },
    keys: [crypto.randomBytes(32).toString('hex')],
  },
  scopes: ['openid', 'offline_access', 'email', 'profile', 'groups'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
    groups: ['groups', 'roles'],
  },
  ttl: { AccessToken: 3600, IdToken: 3600, AuthorizationCode: 60, Interaction: 3600, Session: 86400, Grant: 86400 },
  // Scope-released claims go into the ID token too, not only into userinfo.
  conformIdTokenClaims: false,
  pkce: { required: () => true }, // S256 is the only method oidc-provider supports
  clientAuthMethods: ['client_secret_basic', 'client_secret_post'],
  responseTypes: ['code'],
  features: {
    devInteractions: { enabled: false }, // it signs anyone in without a password
    userinfo: { enabled: true },
    claimsParameter: { enabled: true },
    backchannelLogout: { enabled: true },
    rpInitiatedLogout: {
      enabled: true,
      async logoutSource(ctx, form) {
        // The stock form keeps its submit button (name=logout value=yes) outside the form; put
        // `logout=yes` inside it so a plain HTML client can post it as it is.
        const inner = form
          .replace('id="op.logoutForm"', 'id="logout-form"')
          .replace('</form>', '<input type="hidden" name="logout" value="yes"/><button type="submit">Sign out</button></form>');
        ctx.type = 'html';
        ctx.body = page('Sign out', `<p>Sign out of ${esc(issuer)}?</p>\n${inner}`);
      },
      async postLogoutSuccessSource(ctx) {
        ctx.type = 'html';
        ctx.body = page('Signed out', '<p id="signed-out">You are signed out.</p>');
      },
    },
  },
  async findAccount(ctx, sub) {
    const user = userBySub(sub);
    if (!user) return undefined;
    return {
      accountId: sub,
      async claims() {
        return {
          sub: user.sub,
          email: user.email,
          email_verified: user.email_verified,
          name: user.name,
          groups: user.groups ?? [],
          roles: user.roles ?? [],
        };
      },
    };
  },
  async renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = page('Error', `<pre id="error">${esc(JSON.stringify(out, null, 2))}</pre>`);
  },
  // oidc-provider refuses outgoing requests to loopback addresses (SSRF protection); the
  // back-channel logout URI of a test relying party is on 127.0.0.1.
  fetch(url, options) {
    const { dispatcher, ...rest } = options;
    return fetch(url, rest);
  },
};

const provider = new Provider(issuer, configuration);

for (const event of ['server_error', 'authorization.error', 'grant.error', 'end_session.error',
  'userinfo.error', 'interaction.error']) {
  provider.on(event, (ctx, err) => log(event, err?.message ?? err, err?.error_description ?? ''));
}
provider.on('backchannel.error', (ctx, err, cl, accountId, sid) => log('backchannel.error', cl?.clientId, accountId, sid, err?.message));
provider.on('backchannel.success', (ctx, cl, accountId, sid) => log('backchannel.success', cl.clientId, accountId, sid));
provider.on('grant.success', () => log('grant.success'));

// --- HTTP plumbing for our own routes ------------------------------------------------------
async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function loginPage(uid, params, error) {
  return page('Sign in', `<p>Sign in to continue to ${esc(params.client_id)}.</p>
${error ? `<p id="error">${esc(error)}</p>\n` : ''}<form id="login-form" method="post" action="/interaction/${esc(uid)}/login">
  <label>Email <input type="text" name="login" autofocus value="${esc(params.login_hint ?? '')}"></label>
  <label>Password <input type="password" name="password"></label>
  <button type="submit">Sign in</button>
</form>
<p><a id="abort" href="/interaction/${esc(uid)}/abort">Cancel</a></p>`);
}

function consentPage(uid, params, details) {
  const scopes = [...(details.missingOIDCScope ?? [])].join(' ');
  const claims = [...(details.missingOIDCClaims ?? [])].join(' ');
  return page('Authorize', `<p>${esc(params.client_id)} asks for: <span id="scopes">${esc(scopes)}</span>
${claims ? ` <span id="claims">${esc(claims)}</span>` : ''}</p>
<form id="consent-form" method="post" action="/interaction/${esc(uid)}/confirm">
  <button type="submit">Allow</button>
</form>
<p><a id="abort" href="/interaction/${esc(uid)}/abort">Deny</a></p>`);
}

async function interactions(ctx) {
  const m = ctx.path.match(/^\/interaction\/([^/]+)(?:\/(login|confirm|abort))?$/);
  if (!m) return false;
  const [, uid, action] = m;
  ctx.set('cache-control', 'no-store');

  const details = await provider.interactionDetails(ctx.req, ctx.res);
  if (details.uid !== uid) throw new Error('interaction uid mismatch');
  const { prompt, params, session } = details;

  if (!action && ctx.method === 'GET') {
    ctx.type = 'html';
    if (prompt.name === 'login') ctx.body = loginPage(uid, params);
    else if (prompt.name === 'consent') ctx.body = consentPage(uid, params, prompt.details);
    else {
      ctx.status = 400;
      ctx.body = page('Error', `<p id="error">unsupported prompt ${esc(prompt.name)}</p>`);
    }
    return true;
  }

  if (action === 'abort' && ctx.method === 'GET') {
    await provider.interactionFinished(ctx.req, ctx.res, {
      error: 'access_denied',
      error_description: 'End-User aborted interaction',
    }, { mergeWithLastSubmission: false });
    return true;
  }

  if (action === 'login' && ctx.method === 'POST') {
    if (prompt.name !== 'login') throw new Error(`login posted for prompt ${prompt.name}`);
    const form = await readForm(ctx.req);
    const user = userByLogin(form.get('login') ?? '');
    if (!user || typeof user.password !== 'string'
      || !crypto.timingSafeEqual(
        crypto.hash('sha256', form.get('password') ?? '', 'buffer'),
        crypto.hash('sha256', user.password, 'buffer'),
      )) {
      log('login failed for', form.get('login'));
      ctx.status = 401;
      ctx.type = 'html';
      ctx.body = loginPage(uid, params, 'Invalid email or password.');
      return true;
    }
    log('login', user.sub);
    await provider.interactionFinished(ctx.req, ctx.res, {
      login: { accountId: user.sub },
    }, { mergeWithLastSubmission: false });
    return true;
  }

  if (action === 'confirm' && ctx.method === 'POST') {
    if (prompt.name !== 'consent') throw new Error(`consent posted for prompt ${prompt.name}`);
    await readForm(ctx.req);
    const { details: missing } = prompt;
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    if (missing.missingResourceScopes) {
      for (const [indicator, scope] of Object.entries(missing.missingResourceScopes)) {
        grant.addResourceScope(indicator, scope.join(' '));
      }
    }
    const grantId = await grant.save();
    const consent = details.grantId ? {} : { grantId };
    await provider.interactionFinished(ctx.req, ctx.res, { consent }, { mergeWithLastSubmission: true });
    return true;
  }

  ctx.status = 405;
  ctx.body = 'method not allowed';
  return true;
}

function liveSessions(sub) {
  const out = [];
  for (const [id, { payload, expiresAt }] of storeFor('Session')) {
    if (expiresAt > now() && payload.accountId === sub) out.push({ id, payload });
  }
  return out;
}

async function testRoutes(ctx) {
  if (ctx.method !== 'GET') return false;
  if (ctx.path === '/test/sessions') {
    const sub = ctx.query.sub;
    ctx.body = liveSessions(sub).map(({ payload }) => ({
      uid: payload.uid,
      clients: Object.fromEntries(Object.entries(payload.authorizations ?? {})
        .map(([clientId, a]) => [clientId, { sid: a.sid }])),
    }));
    return true;
  }
  if (ctx.path === '/test/logout') {
    const sub = ctx.query.sub;
    if (!sub) {
      ctx.status = 400;
      ctx.body = { error: 'sub is required' };
      return true;
    }
    const delivered = [];
    const failed = [];
    const sessions = liveSessions(sub);
    for (const { id, payload } of sessions) {
      for (const [clientId, { sid, grantId }] of Object.entries(payload.authorizations ?? {})) {
        const cl = await provider.Client.find(clientId);
        if (cl?.backchannelLogoutUri) {
          try {
            await cl.backchannelLogout(sub, sid);
            log('backchannel.success (test/logout)', clientId, sub, sid);
            delivered.push({ client_id: clientId, sid });
          } catch (err) {
            log('backchannel.error (test/logout)', clientId, sub, sid, err.message);
            failed.push({ client_id: clientId, sid, error: err.message });
          }
        }
        if (grantId) {
          await new MemoryAdapter('Grant').destroy(grantId);
          await new MemoryAdapter('Grant').revokeByGrantId(grantId);
        }
      }
      storeFor('Session').delete(id);
    }
    ctx.body = { sessions: sessions.length, delivered, failed };
    return true;
  }
  return false;
}

provider.use(async (ctx, next) => {
  const started = Date.now();
  try {
    const handled = (await testRoutes(ctx)) || (await interactions(ctx));
    if (!handled) await next();
  } catch (err) {
    log('error in', ctx.method, ctx.path, err);
    ctx.status = err.status ?? 500;
    ctx.type = 'html';
    ctx.body = page('Error', `<p id="error">${esc(err.name)}: ${esc(err.message)}</p>`);
  } finally {
    log(ctx.method, ctx.url, '->', ctx.res.headersSent ? ctx.res.statusCode : ctx.status, `${Date.now() - started}ms`);
  }
});

const server = http.createServer(provider.callback());
server.on('error', (err) => fail(`listen on 127.0.0.1:${port}: ${err.message}`));
server.listen(port, '127.0.0.1', () => {
  log(`issuer ${issuer}, client ${client.client_id}, redirect_uris ${redirectUris.join(' ')}, `
    + `backchannel_logout_uri ${client.backchannel_logout_uri ?? '-'}, ${users.length} users`);
  process.stdout.write('ready\n');
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}
