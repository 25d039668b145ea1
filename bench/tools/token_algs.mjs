#!/usr/bin/env node
// Which algorithms a provider really signs its tokens with (bench/run.sh checks its ES256 rows
// with it): one password login (authorization request with PKCE S256, the sign-in form, the
// redirects, the code exchange) and one refresh grant, as bench/tools/oauth_load.mjs does them,
// then the `alg` of the JWS header of every JWT in both token responses.
//
//   node token_algs.mjs --issuer URL --client-id ID --client-secret S --redirect-uri U \
//        --scope "openid offline_access" --email E --password P
//
// Prints one JSON line: {"code": {"access_token": ALG, "id_token": ALG},
// "refresh": {"access_token": ALG, "id_token": ALG}} (a value is null when the token is not a
// JWT, absent when the response has no such token). Exits 1 on any failure.

import * as crypto from 'node:crypto';
import * as http from 'node:http';
import { parseArgs } from 'node:util';

const { values: o } = parseArgs({
  options: {
    issuer: { type: 'string' },
    'client-id': { type: 'string' },
    'client-secret': { type: 'string' },
    'redirect-uri': { type: 'string' },
    scope: { type: 'string', default: 'openid offline_access' },
    email: { type: 'string' },
    password: { type: 'string' },
  },
});
for (const k of ['issuer', 'client-id', 'client-secret', 'redirect-uri', 'email', 'password']) {
  if (!o[k]) { console.error(`--${k} is required`); process.exit(2); }
}
const basic = `Basic ${Buffer.from(`${encodeURIComponent(o['client-id'])}:${encodeURIComponent(o['client-secret'])}`).toString('base64')}`;

function request(url, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = http.request({
      host: u.hostname, port: u.port, path: u.pathname + u.search, method,
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

const cookies = new Map();
const takeCookies = (res) => {
  for (const line of res.headers['set-cookie'] ?? []) {
    const pair = line.split(';')[0];
    const i = pair.indexOf('=');
    cookies.set(pair.slice(0, i).trim(), pair.slice(i + 1).trim());
  }
};
const cookieHeader = () => [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
const unescapeHtml = (s) => s.replace(/&(#x[0-9a-f]+|#[0-9]+|amp|lt|gt|quot|apos);/gi, (m, e) => {
  if (e[0] === '#') return String.fromCodePoint(e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : Number(e.slice(1)));
  return { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[e.toLowerCase()];
});
const attr = (tag, name) => {
  const m = tag.match(new RegExp(`\\b${name}\\s*=\\s*"([^"]*)"`, 'i'));
  return m ? unescapeHtml(m[1]) : undefined;
};

function loginForm(html, pageUrl) {
  for (const [, formAttrs, inner] of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    if (!/name\s*=\s*"password"/i.test(inner)) continue;
    const fields = new URLSearchParams();
    for (const [input] of inner.matchAll(/<input\b[^>]*>/gi)) {
      if ((attr(input, 'type') ?? '').toLowerCase() === 'hidden') fields.append(attr(input, 'name'), attr(input, 'value') ?? '');
    }
    fields.set(/name\s*=\s*"email"/i.test(inner) ? 'email' : 'login', o.email);
    fields.set('password', o.password);
    return { action: new URL(attr(formAttrs, 'action') ?? pageUrl, pageUrl).href, body: fields.toString() };
  }
  throw new Error(`no sign-in form at ${pageUrl}`);
}

async function token(tokenEndpoint, form) {
  const res = await request(tokenEndpoint, {
    method: 'POST',
    headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: form.toString(),
  });
  if (res.status !== 200) throw new Error(`token endpoint: ${res.status} ${res.body.slice(0, 300)}`);
  return JSON.parse(res.body);
}

const headerAlg = (jwt) => {
  const parts = String(jwt).split('.');
  if (parts.length !== 3) return null;
  try { return JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8')).alg ?? null; } catch { return null; }
};
const algs = (t) => {
  const out = {};
  for (const k of ['access_token', 'id_token']) if (t[k] !== undefined) out[k] = headerAlg(t[k]);
  return out;
};

async function main() {
  const d = await request(`${o.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`);
  if (d.status !== 200) throw new Error(`discovery: ${d.status}`);
  const meta = JSON.parse(d.body);
  const b64url = (buf) => buf.toString('base64url');
  const verifier = b64url(crypto.randomBytes(32));
  const state = b64url(crypto.randomBytes(16));
  const q = new URLSearchParams({
    response_type: 'code', client_id: o['client-id'], redirect_uri: o['redirect-uri'], scope: o.scope, state,
    code_challenge: b64url(crypto.createHash('sha256').update(verifier).digest()), code_challenge_method: 'S256',
  });
  let url = `${meta.authorization_endpoint}?${q}`;
  let method = 'GET';
  let body;
  let posted = false;
  for (let hops = 0; hops < 12; hops += 1) {
    const res = await request(url, {
      method,
      headers: { cookie: cookieHeader(), accept: 'text/html', ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
      body,
    });
    takeCookies(res);
    if (res.status >= 300 && res.status < 400) {
      const next = new URL(res.headers.location, url).href;
      if (next.startsWith(o['redirect-uri'])) {
        const p = new URL(next).searchParams;
        if (p.get('state') !== state || !p.get('code')) throw new Error(`bad redirect ${next}`);
        const first = await token(meta.token_endpoint, new URLSearchParams({
          grant_type: 'authorization_code', code: p.get('code'), redirect_uri: o['redirect-uri'], code_verifier: verifier,
        }));
        if (!first.refresh_token) throw new Error('the code exchange answered no refresh token');
        const second = await token(meta.token_endpoint, new URLSearchParams({ grant_type: 'refresh_token', refresh_token: first.refresh_token }));
        process.stdout.write(`${JSON.stringify({ code: algs(first), refresh: algs(second) })}\n`);
        return;
      }
      url = next; method = 'GET'; body = undefined;
      continue;
    }
    if (res.status === 200 && !posted) {
      const form = loginForm(res.body, url);
      url = form.action; method = 'POST'; body = form.body; posted = true;
      continue;
    }
    throw new Error(`login: ${method} ${url} answered ${res.status}: ${res.body.slice(0, 300)}`);
  }
  throw new Error('login: too many redirects');
}

main().catch((e) => { console.error(e.message ?? e); process.exit(1); });
