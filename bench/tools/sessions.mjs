#!/usr/bin/env node
// Sessions for the memory and cold-path rows of bench/run.sh, made without a hook in frontdoor.
//
//   node sessions.mjs mint --data-dir DIR --user-id ID --tenant T --count N --ttl SECONDS \
//        --csv rows.csv --cookies cookies.txt [--cookie-name frontdoor_session]
//     Writes N session rows for frontdoor's `sessions` table (CSV: id_hash, user_id, tenant,
//     created_at, expires_at, last_seen, auth_method, sid) and, one per line, the matching session
//     cookies. A session is what frontdoor's login creates: a random 256-bit id (base64url),
//     stored as base64url(SHA-256(id)); the cookie value is the id sealed the way the `cookie`
//     crate's private jar seals it (AES-256-GCM with the second half of DIR/keys/cookie.key,
//     the cookie's name as associated data, base64 of nonce ‖ ciphertext ‖ tag), percent-encoded
//     as frontdoor sets it. The rows are imported with the sqlite3 CLI by run.sh.
//
//   node sessions.mjs load --url URL --cookies FILE [--from I] [--count N] [--concurrency C]
//     GETs URL once with each cookie (lines I … I+N-1): every request is a session-cache miss
//     that reads the store and fills the cache. Every answer must be 200. Prints JSON.
//
//   node sessions.mjs latency --url URL --cookies FILE [--from I] [--count N]
//     One connection, one request at a time: each cookie once (cold: a cache miss), then each
//     again (warm: a hit). Prints JSON with p50/p90/p99/mean of both passes in milliseconds.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

const { positionals, values: o } = parseArgs({
  allowPositionals: true,
  options: {
    'data-dir': { type: 'string' },
    'user-id': { type: 'string' },
    tenant: { type: 'string', default: 'default' },
    count: { type: 'string' },
    from: { type: 'string', default: '0' },
    ttl: { type: 'string', default: '43200' },
    csv: { type: 'string' },
    cookies: { type: 'string' },
    'cookie-name': { type: 'string', default: 'frontdoor_session' },
    url: { type: 'string' },
    concurrency: { type: 'string', default: '32' },
  },
});
const cmd = positionals[0];

function writeLines(file) {
  const fd = fs.openSync(file, 'w');
  let buf = [];
  return {
    push(line) { buf.push(line); if (buf.length >= 10000) { fs.writeSync(fd, `${buf.join('\n')}\n`); buf = []; } },
    close() { if (buf.length) fs.writeSync(fd, `${buf.join('\n')}\n`); fs.closeSync(fd); },
  };
}

function mint() {
  const master = Buffer.from(fs.readFileSync(path.join(o['data-dir'], 'keys', 'cookie.key'), 'utf8').trim(), 'base64');
  if (master.length < 64) throw new Error(`cookie.key holds ${master.length} bytes, expected 64`);
  const encKey = master.subarray(32, 64); // cookie::Key = signing (32) ‖ encryption (32)
  const name = Buffer.from(o['cookie-name']);
  const n = Number(o.count);
  const now = Math.floor(Date.now() / 1000);
  const expires = now + Number(o.ttl);
  const csv = writeLines(o.csv);
  const cookies = writeLines(o.cookies);
  for (let i = 0; i < n; i += 1) {
    const raw = crypto.randomBytes(32).toString('base64url');
    const idHash = crypto.createHash('sha256').update(raw).digest('base64url');
    const nonce = crypto.randomBytes(12);
    const c = crypto.createCipheriv('aes-256-gcm', encKey, nonce);
    c.setAAD(name);
    const sealed = Buffer.concat([nonce, c.update(raw, 'utf8'), c.final(), c.getAuthTag()]).toString('base64');
    // The session's public id (`sid` of ID and logout tokens): random, as frontdoor makes it.
    const sid = crypto.randomBytes(16).toString('base64url');
    csv.push(`${idHash},${o['user-id']},${o.tenant},${now},${expires},${now},password,${sid}`);
    cookies.push(`${o['cookie-name']}=${encodeURIComponent(sealed)}`);
  }
  csv.close();
  cookies.close();
  process.stdout.write(`${JSON.stringify({ minted: n })}\n`);
}

function readCookies() {
  const all = fs.readFileSync(o.cookies, 'utf8').split('\n').filter(Boolean);
  const from = Number(o.from);
  const count = o.count === undefined ? all.length - from : Number(o.count);
  return all.slice(from, from + count);
}

function get(agent, url, cookie) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const t0 = process.hrtime.bigint();
    const req = http.request({ agent, host: u.hostname, port: u.port, path: u.pathname + u.search, headers: { cookie } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, ms: Number(process.hrtime.bigint() - t0) / 1e6 }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function load() {
  const cookies = readCookies();
  const concurrency = Number(o.concurrency);
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  let next = 0;
  let bad = 0;
  let firstBad = null;
  const t0 = Date.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < cookies.length) {
      const c = cookies[next];
      next += 1;
      const r = await get(agent, o.url, c);
      if (r.status !== 200) { bad += 1; firstBad ??= r.status; }
    }
  }));
  agent.destroy();
  const seconds = (Date.now() - t0) / 1000;
  process.stdout.write(`${JSON.stringify({ requests: cookies.length, non_200: bad, first_non_200: firstBad, seconds, rate: Math.round(cookies.length / seconds) })}\n`);
  process.exit(bad === 0 ? 0 : 1);
}

function stats(ms) {
  const s = [...ms].sort((a, b) => a - b);
  const p = (q) => Number(s[Math.min(s.length - 1, Math.ceil((q / 100) * s.length) - 1)].toFixed(3));
  return { n: s.length, p50_ms: p(50), p90_ms: p(90), p99_ms: p(99), mean_ms: Number((s.reduce((a, b) => a + b, 0) / s.length).toFixed(3)) };
}

async function latency() {
  const cookies = readCookies();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const passes = {};
  let bad = 0;
  for (const pass of ['cold', 'warm']) {
    const ms = [];
    for (const c of cookies) {
      const r = await get(agent, o.url, c);
      if (r.status !== 200) bad += 1;
      ms.push(r.ms);
    }
    passes[pass] = stats(ms);
  }
  agent.destroy();
  process.stdout.write(`${JSON.stringify({ ...passes, non_200: bad })}\n`);
  process.exit(bad === 0 ? 0 : 1);
}

const run = { mint, load, latency }[cmd];
if (!run) {
  console.error('usage: sessions.mjs mint|load|latency …');
  process.exit(2);
}
Promise.resolve(run()).catch((e) => { console.error(e.message ?? e); process.exit(1); });
