#!/usr/bin/env node
// Closed-loop load for the provider path of bench/run.sh, the same client for frontdoor and for
// oidc-provider. K workers each repeat one operation for T seconds; the rate is completed
// operations / elapsed time. Endpoints come from the provider's discovery document.
//
//   node oauth_load.mjs login   --issuer URL --client-id ID --client-secret S --redirect-uri U \
//        --scope "openid offline_access" --email E --password P --concurrency K --duration T
//   node oauth_load.mjs refresh (same options)
//   node oauth_load.mjs tokens  (same options; --count N): N logins, then prints the N refresh
//        tokens, one per line, for a wrk-driven refresh run (bench/wrk/bench.lua)
//   node oauth_load.mjs algs    (same options): one login and one refresh, then prints the
//        `alg` of the JWS header of each token in both answers, as one JSON line
//        {"code": {"access_token": ALG, "id_token": ALG}, "refresh": {…}} (null for a token
//        that is not a JWT), so that bench/run.sh can check what each row really signs with
//
// With --count N the run ends after N operations in all instead of after --duration; --before
// and --after name shell commands run just before and just after the measured operations
// (after the refresh workers have signed in), e.g. to zero and dump a profiler's counters
// (bench/callgrind.sh).
//
// login:   one complete password login per operation, as a browser does it with a fresh cookie
//          jar: GET the authorization endpoint (PKCE S256) and follow redirects to the sign-in
//          form, POST the form (email and password; hidden fields such as the CSRF token are
//          sent back), follow the redirects to the redirect URI, and exchange the code at the
//          token endpoint (client_secret_basic). Counted when the token response carries an
//          access token.
// refresh: every worker first signs in once (not timed) for a refresh token, then repeats the
//          refresh_token grant; refresh tokens rotate, so each answer's token is used next.
//
// Prints one JSON line: {"op","completed","errors","seconds","rate","p50_ms","p99_ms",
// "first_error"}. Exits 1 when nothing completed.

import { execSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as http from 'node:http';
import { parseArgs } from 'node:util';

// parseArgs refuses `--client-secret -x…` as ambiguous: a generated secret may begin with `-`
// (base64url), so the scripts pass values as `--client-secret=…`.
const { positionals, values: o } = parseArgs({
  allowPositionals: true,
  options: {
    issuer: { type: 'string' },
    'client-id': { type: 'string' },
    'client-secret': { type: 'string' },
    'redirect-uri': { type: 'string' },
    scope: { type: 'string', default: 'openid' },
    email: { type: 'string' },
    password: { type: 'string' },
    concurrency: { type: 'string', default: '8' },
    duration: { type: 'string', default: '2' },
    count: { type: 'string' },
    before: { type: 'string' },
    after: { type: 'string' },
  },
});
const op = positionals[0];
if (!['login', 'refresh', 'tokens', 'algs'].includes(op)) {
  console.error('usage: oauth_load.mjs login|refresh|tokens|algs --issuer URL …');
  process.exit(2);
}
const concurrency = Number(o.concurrency);
const duration = Number(o.duration);
const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency * 2 });
const basic = `Basic ${Buffer.from(`${encodeURIComponent(o['client-id'])}:${encodeURIComponent(o['client-secret'])}`).toString('base64')}`;

function request(url, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = http.request({
      agent, host: u.hostname, port: u.port, path: u.pathname + u.search, method,
      headers: body === undefined ? headers : { ...headers, 'content-length': Buffer.byteLength(body) },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

class Jar {
  constructor() { this.cookies = new Map(); }
  take(res) {
    for (const line of res.headers['set-cookie'] ?? []) {
      const [pair, ...attrs] = line.split(';');
      const i = pair.indexOf('=');
      const name = pair.slice(0, i).trim();
      const value = pair.slice(i + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a)) || value === '';
      if (expired) this.cookies.delete(name); else this.cookies.set(name, value);
    }
  }
  header() { return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '); }
}

const NAMED = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
const unescapeHtml = (s) => s.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (m, e) => {
  if (e[0] === '#') return String.fromCodePoint(e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : Number(e.slice(1)));
  return NAMED[e.toLowerCase()] ?? m;
});
const attr = (tag, name) => {
  const m = tag.match(new RegExp(`\\b${name}\\s*=\\s*"([^"]*)"`, 'i'));
  return m ? unescapeHtml(m[1]) : undefined;
};

// The first form with a password field: its action and its hidden inputs.
function loginForm(html, pageUrl) {
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const [, formAttrs, inner] = m;
    if (!/name\s*=\s*"password"/i.test(inner)) continue;
    const fields = new URLSearchParams();
    for (const input of inner.matchAll(/<input\b[^>]*>/gi)) {
      if ((attr(input[0], 'type') ?? '').toLowerCase() === 'hidden') fields.append(attr(input[0], 'name'), attr(input[0], 'value') ?? '');
    }
    const userField = /name\s*=\s*"email"/i.test(inner) ? 'email' : 'login';
    return { action: new URL(attr(formAttrs, 'action') ?? pageUrl, pageUrl).href, fields, userField };
  }
  throw new Error(`no sign-in form at ${pageUrl}`);
}

let meta;
async function discover() {
  const res = await request(`${o.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`);
  if (res.status !== 200) throw new Error(`discovery: ${res.status}`);
  meta = JSON.parse(res.body);
}

const b64url = (buf) => buf.toString('base64url');

async function token(form) {
  const res = await request(meta.token_endpoint, {
    method: 'POST',
    headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: form.toString(),
  });
  const json = res.body.startsWith('{') ? JSON.parse(res.body) : {};
  if (res.status !== 200 || !json.access_token) throw new Error(`token endpoint: ${res.status} ${res.body.slice(0, 200)}`);
  return json;
}

async function login() {
  const jar = new Jar();
  const verifier = b64url(crypto.randomBytes(32));
  const state = b64url(crypto.randomBytes(16));
  const q = new URLSearchParams({
    response_type: 'code', client_id: o['client-id'], redirect_uri: o['redirect-uri'], scope: o.scope,
    state, code_challenge: b64url(crypto.createHash('sha256').update(verifier).digest()), code_challenge_method: 'S256',
  });
  let url = `${meta.authorization_endpoint}?${q}`;
  let method = 'GET';
  let body;
  let posted = false;
  for (let hops = 0; hops < 12; hops += 1) {
    const res = await request(url, {
      method,
      headers: { cookie: jar.header(), accept: 'text/html', ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
      body,
    });
    jar.take(res);
    if (res.status >= 300 && res.status < 400) {
      const next = new URL(res.headers.location, url).href;
      if (next.startsWith(o['redirect-uri'])) {
        const p = new URL(next).searchParams;
        if (p.get('state') !== state || !p.get('code')) throw new Error(`bad redirect ${next}`);
        return token(new URLSearchParams({ grant_type: 'authorization_code', code: p.get('code'), redirect_uri: o['redirect-uri'], code_verifier: verifier }));
      }
      url = next; method = 'GET'; body = undefined;
      continue;
    }
    if (res.status === 200 && !posted) {
      const form = loginForm(res.body, url);
      form.fields.set(form.userField, o.email);
      form.fields.set('password', o.password);
      url = form.action; method = 'POST'; body = form.fields.toString(); posted = true;
      continue;
    }
    throw new Error(`login: ${method} ${url} answered ${res.status}: ${res.body.slice(0, 200)}`);
  }
  throw new Error('login: too many redirects');
}

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** The `alg` of a JWT's header, or null when `jwt` is not a JWT. */
function headerAlg(jwt) {
  const parts = String(jwt).split('.');
  if (parts.length !== 3) return null;
  try { return JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8')).alg ?? null; } catch { return null; }
}

function algs(answer) {
  const out = {};
  for (const k of ['access_token', 'id_token']) if (answer[k] !== undefined) out[k] = headerAlg(answer[k]);
  return out;
}

async function main() {
  await discover();
  if (op === 'algs') {
    const first = await login();
    if (!first.refresh_token) throw new Error('the code exchange answered no refresh token');
    const second = await token(new URLSearchParams({ grant_type: 'refresh_token', refresh_token: first.refresh_token }));
    process.stdout.write(`${JSON.stringify({ code: algs(first), refresh: algs(second) })}\n`);
    agent.destroy();
    return;
  }
  if (op === 'tokens') {
    const n = Number(o.count ?? concurrency);
    const tokens = [];
    for (let i = 0; i < n; i += 1) {
      const t = await login();
      if (!t.refresh_token) throw new Error('the login answered no refresh token');
      tokens.push(t.refresh_token);
    }
    process.stdout.write(`${tokens.join('\n')}\n`);
    agent.destroy();
    return;
  }
  const refreshTokens = [];
  if (op === 'refresh') {
    for (let i = 0; i < concurrency; i += 1) {
      const t = await login();
      if (!t.refresh_token) throw new Error('the login answered no refresh token');
      refreshTokens.push(t.refresh_token);
    }
  }
  const latencies = [];
  let errors = 0;
  let firstError;
  // Operations left to start when bounded by --count.
  let left = o.count === undefined ? Infinity : Number(o.count);
  if (o.before) execSync(o.before, { stdio: 'inherit' });
  const started = process.hrtime.bigint();
  const deadline = o.count === undefined ? Date.now() + duration * 1000 : Infinity;
  async function worker(i) {
    while (Date.now() < deadline && left > 0) {
      left -= 1;
      const t0 = process.hrtime.bigint();
      try {
        if (op === 'login') await login();
        else {
          const t = await token(new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshTokens[i] }));
          if (!t.refresh_token) throw new Error('no rotated refresh token in the answer');
          refreshTokens[i] = t.refresh_token;
        }
        latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
      } catch (e) {
        errors += 1;
        firstError ??= String(e.message ?? e);
        if (op === 'refresh') return; // this worker's chain is broken
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, (_, i) => worker(i)));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (o.after) execSync(o.after, { stdio: 'inherit' });
  latencies.sort((a, b) => a - b);
  const out = {
    op, completed: latencies.length, errors, seconds: Number(seconds.toFixed(3)),
    rate: Number((latencies.length / seconds).toFixed(1)),
    p50_ms: percentile(latencies, 50), p99_ms: percentile(latencies, 99), first_error: firstError ?? null,
  };
  for (const k of ['p50_ms', 'p99_ms']) if (out[k] !== null) out[k] = Number(out[k].toFixed(2));
  process.stdout.write(`${JSON.stringify(out)}\n`);
  agent.destroy();
  process.exit(latencies.length > 0 ? 0 : 1);
}

main().catch((e) => { console.error(e.message ?? e); process.exit(1); });
