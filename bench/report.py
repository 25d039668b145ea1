#!/usr/bin/env python3
"""Writes the benchmark's report from the measurements bench/run.sh collected.

    report.py --results results.jsonl --machine JSON --out docs/bench [--readme docs/benchmarks.md]

Writes OUT/results.md, OUT/results.json, OUT/proxy.svg and OUT/provider.svg (with gnuplot), and,
with --readme, replaces the block between `<!-- bench:begin -->` and `<!-- bench:end -->` in
that file with the latest summary. Every figure comes from the results file; nothing is typed in.
"""

import argparse
import json
import os
import subprocess
import sys

p = argparse.ArgumentParser()
p.add_argument("--results", required=True)
p.add_argument("--machine", required=True)
p.add_argument("--out", required=True)
p.add_argument("--readme")
args = p.parse_args()

machine = json.loads(args.machine)
records = [json.loads(line) for line in open(args.results, encoding="utf-8") if line.strip()]
proxy = [r for r in records if r.get("section") == "proxy"]
provider = {r["id"]: r for r in records if r.get("section") == "provider"}
memory = [r for r in records if r.get("section") == "memory"]
cold_latency = next((r for r in records if r.get("section") == "cold_latency"), None)
paired_runs = [r for r in records if r.get("section") == "paired"]
provider_paired = [r for r in records if r.get("section") == "provider_paired"]
postgres_info = next((r for r in records if r.get("section") == "postgres"), None)
conn_runs = [r for r in records if r.get("section") == "connections"]
conn_rounds = [r for r in records if r.get("section") == "connections_round"]
conn_setup = next((r for r in records if r.get("section") == "connections_setup"), None)
by_id = {r["id"]: r for r in proxy}
nginx_rps = by_id.get("nginx_proxy", {}).get("rps")


def ms(us):
    return f"{us / 1000:.2f}"


def rate(x):
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"


def machine_line():
    m = machine
    s = (f"{m['cpu']}, {m['nproc']} cores (`nproc`), {m['memory']}, {m['kernel']}; "
         f"{m['date']}; frontdoor {m['commit']}")
    if m.get("dirty"):
        s += " (with uncommitted changes in the working tree)"
    return s


def smoke_banner():
    if machine.get("smoke"):
        return (f"> **Smoke run**: {machine['duration_s']} s per measurement on a machine that was "
                "busy with other work (builds, tests) at the same time. These numbers prove that "
                "the bench runs end to end; they are not the published figures.\n\n")
    return ""


def proxy_table():
    rows = ["| scenario | req/s | p50 ms | p99 ms | p99.9 ms | ÷ nginx proxy | errors |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    for r in proxy:
        ratio = f"{r['rps'] / nginx_rps:.2f}" if nginx_rps else "–"
        errors = r["err_status"] + r["err_connect"] + r["err_read"] + r["err_write"] + r["err_timeout"]
        label = r["label"]
        if r["id"] == "fd_cold":
            share = r["misses"] / max(1, r["misses"] + r["hits"])
            label += f" — {share:.0%} of lookups missed"
        rows.append(f"| {label} | {rate(r['rps'])} | {ms(r['p50_us'])} | {ms(r['p99_us'])} | "
                    f"{ms(r['p999_us'])} | {ratio} | {errors} |")
    return "\n".join(rows)


PROVIDER_OPS = [
    ("cc", "`client_credentials` grants/s, RS256 keys on both"),
    ("cc_es256", "`client_credentials` grants/s, ES256 keys on both"),
    ("refresh", "refresh grants/s, RS256 keys on both"),
    ("refresh_es256", "refresh grants/s, ES256 keys on both"),
    ("introspect", "introspections/s"),
    ("login", "password logins/s (form → code → tokens)"),
]


def provider_table():
    rows = ["| operation | frontdoor /s | oidc-provider /s | frontdoor ÷ oidc-provider | "
            "frontdoor p50 / p99 ms | oidc-provider p50 / p99 ms | load |",
            "|---|---:|---:|---:|---:|---:|---|"]
    for op, label in PROVIDER_OPS:
        f, o = provider.get(f"fd_{op}"), provider.get(f"oidc_{op}")
        if not f or not o:
            continue

        def lat(r):
            if r["tool"] == "wrk":
                return f"{ms(r['p50_us'])} / {ms(r['p99_us'])}"
            return f"{r['p50_ms']:.2f} / {r['p99_ms']:.2f}"

        def errs(r):
            return r.get("err_status", 0) + r.get("errors", 0)

        load = (f"wrk, {machine['connections']} connections" if f["tool"] == "wrk"
                else f"{f['concurrency']} workers, closed loop")
        if errs(f) or errs(o):
            load += f"; errors: frontdoor {errs(f)}, oidc-provider {errs(o)}"
        rows.append(f"| {label} | {rate(f['rps'])} | {rate(o['rps'])} | {f['rps'] / o['rps']:.2f} | "
                    f"{lat(f)} | {lat(o)} | {load} |")
    return "\n".join(rows)


def memory_table():
    if not memory:
        return "(not measured)"
    base = memory[0]["rss_kib"]
    rows = ["| sessions in the cache | RSS MiB | growth over 0, MiB | bytes per session (vs 0) | "
            "bytes per session (vs previous row) | requests that missed the cache |",
            "|---:|---:|---:|---:|---:|---:|"]
    prev = None
    for r in memory:
        n = r["sessions"]
        grow = (r["rss_kib"] - base) * 1024
        per = f"{grow / n:,.0f}" if n else "–"
        marg = "–"
        if prev is not None and n > prev["sessions"] and prev["sessions"] > 0:
            marg = f"{(r['rss_kib'] - prev['rss_kib']) * 1024 / (n - prev['sessions']):,.0f}"
        rows.append(f"| {n:,} | {r['rss_kib'] / 1024:,.1f} | {grow / 1048576:,.1f} | {per} | {marg} | "
                    f"{r['misses']:,} |")
        prev = r
    top = max(r["sessions"] for r in memory)
    if top < 1_000_000:
        rows += ["", f"This run stopped at {top:,} sessions (`--mem-counts`); the full run "
                 "(`bench/run.sh` without `--smoke`) measures 100,000 and 1,000,000."]
    return "\n".join(rows)


def cold_table():
    if not cold_latency:
        return "(not measured)"
    c, w = cold_latency["cold"], cold_latency["warm"]
    return "\n".join([
        "| one request at a time, one connection | requests | p50 ms | p90 ms | p99 ms | mean ms |",
        "|---|---:|---:|---:|---:|---:|",
        f"| session in the store, not in the cache (miss) | {c['n']:,} | {c['p50_ms']:.3f} | "
        f"{c['p90_ms']:.3f} | {c['p99_ms']:.3f} | {c['mean_ms']:.3f} |",
        f"| the same sessions again (cache hit) | {w['n']:,} | {w['p50_ms']:.3f} | {w['p90_ms']:.3f} | "
        f"{w['p99_ms']:.3f} | {w['mean_ms']:.3f} |",
        "",
        f"Cache misses counted by frontdoor's metrics during the cold pass: {cold_latency['misses']:,} "
        f"(expected {c['n']:,}).",
    ])


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return (xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2) if n else None


def paired_median(rid, runs=None):
    """The median req/s of a row's paired rounds (of `runs`, the proxy rows' by default), as a
    row (errors summed), or None."""
    runs = [r for r in (paired_runs if runs is None else runs) if r["id"] == rid]
    if not runs:
        return None
    return {"rps": median([r["rps"] for r in runs]), "rounds": len(runs),
            "err_status": sum(errors_of(r) for r in runs)}


def paired_table():
    if not paired_runs:
        return "(not measured)"
    ids = list(dict.fromkeys(r["id"] for r in paired_runs))
    rounds = sorted({r["round"] for r in paired_runs})
    labels = {"bare_pingora": "bare Pingora proxy", "fd_cookie": "frontdoor, session cookie (warm)",
              "fd_bearer": "frontdoor, Bearer JWT", "nginx_auth_204": "nginx auth_request to a 204 endpoint"}
    out = ["| row | " + " | ".join(f"round {k} req/s" for k in rounds) + " | median | ÷ bare (median) |",
           "|---|" + "---:|" * (len(rounds) + 2)]
    bare = paired_median("bare_pingora")
    for rid in ids:
        by_round = {r["round"]: r["rps"] for r in paired_runs if r["id"] == rid}
        m = paired_median(rid)
        ratio = f"{m['rps'] / bare['rps']:.2f}" if bare else "–"
        out.append(f"| {labels.get(rid, rid)} | " + " | ".join(rate(by_round[k]) if k in by_round else "–"
                                                             for k in rounds)
                   + f" | {rate(m['rps'])} | {ratio} |")
    return "\n".join(out)


def errors_of(r):
    return sum(r.get(k, 0) for k in ("err_status", "err_connect", "err_read", "err_write", "err_timeout", "errors"))


PROVIDER_PAIRED_LABELS = {
    "signatures": "raw signatures/s (examples/signatures, every core)",
    "fd_cc": "`client_credentials`, RS256, SQLite", "fd_cc_es256": "`client_credentials`, ES256, SQLite",
    "fd_refresh": "refresh, `openid offline_access` (2 signatures), RS256, SQLite",
    "fd_refresh_es256": "refresh, `openid offline_access` (2 signatures), ES256, SQLite",
    "fd_refresh1": "refresh, `offline_access` (1 signature), RS256, SQLite",
    "fd_refresh1_es256": "refresh, `offline_access` (1 signature), ES256, SQLite",
    "fd_ccs": "`client_credentials` through the refresh rows' wrk script, RS256, SQLite",
    "fd_ccs_es256": "`client_credentials` through the refresh rows' wrk script, ES256, SQLite",
    "pg_cc": "`client_credentials`, RS256, PostgreSQL", "pg_cc_es256": "`client_credentials`, ES256, PostgreSQL",
    "pg_ccs": "`client_credentials` through the refresh rows' wrk script, RS256, PostgreSQL",
    "pg_ccs_es256": "`client_credentials` through the refresh rows' wrk script, ES256, PostgreSQL",
    "pg_refresh": "refresh, `openid offline_access` (2 signatures), RS256, PostgreSQL",
    "pg_refresh_es256": "refresh, `openid offline_access` (2 signatures), ES256, PostgreSQL",
    "pg_refresh1": "refresh, `offline_access` (1 signature), RS256, PostgreSQL",
    "pg_refresh1_es256": "refresh, `offline_access` (1 signature), ES256, PostgreSQL",
}


def provider_round(rid, field="rps"):
    """{round: figure} of a provider paired row."""
    return {r["round"]: r[field] for r in provider_paired if r["id"] == rid}


def provider_ratio(num, den):
    """The median over the paired rounds of num's figure ÷ den's figure in the same round (each
    a (row id, field) pair), with the medians of both; None when a round of either is missing."""
    a, b = provider_round(*num), provider_round(*den)
    rounds = sorted(set(a) & set(b))
    if not rounds:
        return None
    return (median([a[k] / b[k] for k in rounds]), median([a[k] for k in rounds]),
            median([b[k] for k in rounds]), len(rounds))


def provider_paired_table():
    if not provider_paired:
        return "(not measured in this run)"
    rounds = sorted({r["round"] for r in provider_paired})
    out = ["| row | " + " | ".join(f"round {k}" for k in rounds) + " | median | errors |",
           "|---|" + "---:|" * (len(rounds) + 2)]
    ids = list(dict.fromkeys(r["id"] for r in provider_paired))
    for rid in ids:
        fields = [("rs256_per_s", " RS256"), ("es256_per_s", " ES256")] if rid == "signatures" else [("rps", "")]
        for field, alg in fields:
            by_round = provider_round(rid, field)
            errs = sum(errors_of(r) for r in provider_paired if r["id"] == rid)
            out.append(f"| {PROVIDER_PAIRED_LABELS.get(rid, rid)}{alg} | "
                       + " | ".join(rate(by_round[k]) if k in by_round else "–" for k in rounds)
                       + f" | {rate(median(list(by_round.values())))} | {errs:,} |")
    if postgres_info:
        p = postgres_info
        out += ["", f"PostgreSQL {p['version']} ({'started by the bench' if p['own_server'] else 'BENCH_POSTGRES_URL'}): "
                f"fsync={p['fsync']}, synchronous_commit={p['synchronous_commit']}, "
                f"full_page_writes={p['full_page_writes']}."]
    return "\n".join(out)


def provider_targets(add, missing):
    """Issue 17 item 5: a grant costs little beyond its signature; a refresh costs little beyond
    client_credentials (the durable write's share), on SQLite and PostgreSQL. Ratios are the
    medians of per-round ratios of the paired rounds; without them, the single rows. Refresh is
    divided by the `ccs` rows (client_credentials through the same wrk script as the refresh
    rows, so that wrk costs both the same) when the run has them; runs before them had `cc`."""
    sigs = next((r for r in records if r.get("section") == "signatures"), None)
    for suffix, alg, field, need in (("", "RS256", "rs256_per_s", 0.85), ("_es256", "ES256", "es256_per_s", 0.5)):
        target = f"`client_credentials` grants ÷ raw {alg} signatures (same library, every core)"
        paired = provider_ratio((f"fd_cc{suffix}", "rps"), ("signatures", field))
        used = [r for r in provider_paired if r["id"] == f"fd_cc{suffix}"]
        if paired:
            x, f, s_, n = paired
            add(target, f"{x:.2f}× ({rate(f)} grants vs {rate(s_)} signatures/s, medians of {n} paired rounds)",
                f"≥ {need:.2f}×", x >= need, used)
        elif provider.get(f"fd_cc{suffix}") and sigs:
            f = provider[f"fd_cc{suffix}"]
            x = f["rps"] / sigs[field]
            add(target, f"{x:.2f}× ({rate(f['rps'])} grants vs {rate(sigs[field])} signatures/s, single rows)",
                f"≥ {need:.2f}×", x >= need, [f])
        else:
            missing.append(target)
    for store, prefix in (("SQLite", "fd"), ("PostgreSQL", "pg")):
        for suffix, alg in (("", "RS256"), ("_es256", "ES256")):
            cc = f"{prefix}_ccs{suffix}"
            if not provider_round(cc):
                cc = f"{prefix}_cc{suffix}"
            for kind, what, need_text in (
                    ("refresh1", "`offline_access` alone (one signature, as `client_credentials`)", "≥ 0.80×"),
                    ("refresh", "`openid offline_access` (access and ID token: two signatures)",
                     "≥ 0.80× (two signatures against one: about 0.5× where signing dominates)")):
                rid = f"{prefix}_{kind}{suffix}"
                target = f"refresh ÷ `client_credentials` grants, {alg}, {store}, {what}"
                paired = provider_ratio((rid, "rps"), (cc, "rps"))
                if paired:
                    x, r, c, n = paired
                    used = [q for q in provider_paired if q["id"] in (rid, cc)]
                    how = ", both through the same wrk script" if "_ccs" in cc else ""
                    add(target, f"{x:.2f}× ({rate(r)} vs {rate(c)}/s, medians of {n} paired rounds{how})",
                        need_text, x >= 0.8, used)
                elif prefix == "fd" and kind == "refresh" and provider.get(f"fd_refresh{suffix}") and provider.get(cc):
                    r, c = provider[f"fd_refresh{suffix}"], provider[cc]
                    x = r["rps"] / c["rps"]
                    add(target, f"{x:.2f}× ({rate(r['rps'])} vs {rate(c['rps'])}/s, single rows)",
                        need_text, x >= 0.8, [r, c])
                else:
                    missing.append(target)



def targets():
    """The targets of issue 6, each computed from this run's rows: (target, figure, required, met)
    tuples, and the targets this run has no rows for."""
    rows, missing = [], []

    def add(target, figure, required, ok, used):
        bad = [r for r in used if errors_of(r)]
        if bad:
            figure += f" — not valid: {sum(errors_of(r) for r in bad):,} errors"
            ok = False
        rows.append((target, figure, required, "yes" if ok else "no"))

    fd = by_id.get("fd_cookie")

    def with_warm(rid):
        """(row, warm-session row, how measured): from the paired rounds when the run has both
        (rows measured back to back, medians), else from the single rows."""
        r, warm = paired_median(rid), paired_median("fd_cookie")
        if r and warm:
            return r, warm, f"medians of {r['rounds']} paired rounds"
        return by_id.get(rid), fd, "single rows"

    def vs_warm(target, rid, what, need):
        r, warm, how = with_warm(rid)
        if not warm or not r:
            missing.append(target)
            return
        x = warm["rps"] / r["rps"]
        add(target, f"{x:.2f}× ({rate(warm['rps'])} vs {rate(r['rps'])} req/s, {how})",
            f"≥ {need:.2f}× {what}", x >= need, [warm, r])

    vs_warm("Warm session (fd_cookie) vs bare Pingora", "bare_pingora", "bare Pingora", 0.95)
    # Issue 17's targets.
    vs_warm("Warm session vs nginx auth_request to a do-nothing 204 endpoint", "nginx_auth_204",
            "nginx auth_request (204)", 1.2)
    vs_warm("Warm session vs oauth2-proxy as a reverse proxy", "o2p_proxy",
            "oauth2-proxy reverse proxy", 5.0)
    vs_warm("Warm session vs nginx auth_request to oauth2-proxy", "nginx_o2p",
            "nginx → oauth2-proxy", 3.0)
    vs_warm("Warm session vs nginx reverse proxy (moonshot 0.90×)", "nginx_proxy", "nginx proxy", 0.75)

    up = by_id.get("upstream")
    target = f"p99 added latency over direct (fd_cookie p99 − upstream p99), {machine['connections']} connections"
    if fd and up:
        added = (fd["p99_us"] - up["p99_us"]) / 1000
        add(target, f"{added:.2f} ms ({ms(fd['p99_us'])} − {ms(up['p99_us'])})",
            "< 1 ms at 64 connections", added < 1.0 and machine["connections"] == 64, [fd, up])
    else:
        missing.append(target)

    for rid, what, need in (("fd_api_token", "Api-Token", 0.9), ("fd_bearer", "Bearer JWT", 0.9),
                            ("fd_assertion", "Warm session with a signed assertion", 0.95),
                            ("fd_cookie_big", "Warm session among 3.5 KB of other cookies", 0.9)):
        r, warm, how = with_warm(rid)
        target = f"{what} ({rid}) vs warm session"
        if not warm or not r:
            missing.append(target)
            continue
        x = r["rps"] / warm["rps"]
        add(target, f"{x:.2f}× ({rate(r['rps'])} vs {rate(warm['rps'])} req/s, {how})",
            f"≥ {need:.2f}× warm session", x >= need, [r, warm])

    provider_targets(add, missing)

    for op, what in (("cc", "`client_credentials`"), ("refresh", "refresh")):
        for suffix, alg in (("", "RS256"), ("_es256", "ES256")):
            f, o = provider.get(f"fd_{op}{suffix}"), provider.get(f"oidc_{op}{suffix}")
            if not f:
                missing.append(f"{what} grants/s, {alg}")
                continue
            add(f"{what} grants/s, {alg}", f"{rate(f['rps'])}/s", "≥ 2,000/s", f["rps"] >= 2000, [f])
            if not o:
                missing.append(f"{what}, frontdoor vs oidc-provider, {alg} on both")
                continue
            x = f["rps"] / o["rps"]
            add(f"{what}, frontdoor vs oidc-provider, {alg} on both",
                f"{x:.2f}× ({rate(f['rps'])} vs {rate(o['rps'])}/s)", "≥ 3.00×", x >= 3.0, [f, o])

    r = provider.get("fd_introspect")
    if r:
        add("Introspections/s", f"{rate(r['rps'])}/s", "≥ 10,000/s", r["rps"] >= 10000, [r])
    else:
        missing.append("Introspections/s")

    r = provider.get("fd_login")
    cores = int(machine["nproc"])
    if r:
        per = r["rps"] / cores
        add("Password logins per core (form → code → tokens)",
            f"{per:.1f}/s per core ({rate(r['rps'])}/s on {cores} cores)", "≥ 15/s per core", per >= 15, [r])
    else:
        missing.append("Password logins per core")

    counted = [m for m in memory if m["sessions"] > 0]
    target = "Memory per cached session"
    if memory and memory[0]["sessions"] == 0 and counted:
        base, top = memory[0], counted[-1]
        vs0 = (top["rss_kib"] - base["rss_kib"]) * 1024 / top["sessions"]
        if len(counted) >= 2:
            prev = counted[-2]
            marg = (top["rss_kib"] - prev["rss_kib"]) * 1024 / (top["sessions"] - prev["sessions"])
            add(target, f"{marg:,.0f} B from {prev['sessions']:,} to {top['sessions']:,} sessions "
                f"(vs 0: {vs0:,.0f} B at {top['sessions']:,})", "≤ 1,024 B (vs previous row, largest count)",
                marg <= 1024, [])
        else:
            add(target, f"{vs0:,.0f} B at {top['sessions']:,} sessions, vs 0 (no previous row)",
                "≤ 1,024 B", vs0 <= 1024, [])
    else:
        missing.append(target)
    m1 = next((m for m in memory if m["sessions"] == 1_000_000), None)
    if m1:
        gib = m1["rss_kib"] / 1048576
        add("RSS with 1,000,000 sessions in the cache", f"{gib:.2f} GiB ({m1['rss_kib'] / 1024:,.0f} MiB)",
            "< 1.5 GiB", gib < 1.5, [])
    else:
        largest = max((m["sessions"] for m in memory), default=0)
        missing.append(f"RSS with 1,000,000 sessions (this run's largest count: {largest:,})")
    connection_targets(add, missing)
    return rows, missing


def targets_table():
    rows, missing = targets()
    out = ["| target | figure this run | required | met? |", "|---|---|---|---|"]
    out += [f"| {t} | {f} | {r} | {m} |" for t, f, r, m in rows]
    met = sum(1 for row in rows if row[3] == "yes")
    out += ["", f"{met} of {len(rows)} targets met in this run."]
    if missing:
        out[-1] += " Not measured in this run: " + "; ".join(missing) + "."
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# Connections held by one node (bench/connections.sh)


def conn_held():
    """'10,000 idle connections and 1,000 WebSockets', from the run's setup."""
    return f"{conn_setup['idle']:,} idle connections and {conn_setup['ws']:,} WebSockets"


def conn_memory(r):
    """Bytes of RSS per idle connection and per WebSocket in one round (None when none opened)."""
    rss, idle, ws = r["rss_kib"], r["open_idle"]["opened"], r["open_ws"]["opened"]
    per_idle = (rss["idle"] - rss["before"]) * 1024 / idle if idle else None
    per_ws = (rss["ws"] - rss["idle"]) * 1024 / ws if ws else None
    return per_idle, per_ws


def conn_survivors(r):
    c = r["check"]
    return f"{c['idle_alive']:,} of {c['idle_held']:,}, {c['ws_alive']:,} of {c['ws_held']:,}"


def conn_all_survived():
    """Whether every connection asked for was opened and answered after the wrk run, in
    every round."""
    return all(r["open_idle"]["opened"] == r["open_idle"]["asked"] and r["open_ws"]["opened"] == r["open_ws"]["asked"]
               and r["check"]["idle_alive"] == r["check"]["idle_held"] == r["open_idle"]["opened"]
               and r["check"]["ws_alive"] == r["check"]["ws_held"] == r["open_ws"]["opened"]
               for r in conn_rounds)


def connection_targets(add, missing):
    """Issue 17's connections target: active requests as fast with the connections held as
    without (medians of the paired rounds), and none of them dropped."""
    target = "10k idle connections and 1k WebSockets held: active throughput with them ÷ without"
    held, free = paired_median("with", conn_runs), paired_median("without", conn_runs)
    if not (held and free and conn_rounds):
        missing.append(target)
        missing.append("connections held still open after the rounds")
        return
    x = held["rps"] / free["rps"]
    add(target, f"{x:.2f}× ({rate(held['rps'])} vs {rate(free['rps'])} req/s, medians of {held['rounds']} "
        f"paired rounds, {conn_held()})", "≥ 0.90×", x >= 0.9, [held, free])
    add("Connections held still open and answering after the rounds",
        "; ".join(f"round {r['round']}: {conn_survivors(r)}" for r in conn_rounds),
        "all, every round", conn_all_survived(), [])


def connections_table():
    if not conn_rounds:
        return "(not measured in this run)"
    out = ["| round | without req/s | with req/s | with ÷ without | frontdoor CPU µs per request, without → with | RSS before MiB | idle opened (s) | "
           "bytes per idle connection | WebSockets opened (s) | bytes per WebSocket | open files "
           "before → idle → WebSockets | still open after wrk (idle, WebSockets) | RSS MiB, all closed |",
           "|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---|---|---:|"]
    for r in conn_rounds:
        k = r["round"]
        free = next((x for x in conn_runs if x["id"] == "without" and x["round"] == k), None)
        held = next((x for x in conn_runs if x["id"] == "with" and x["round"] == k), None)
        ratio = f"{held['rps'] / free['rps']:.2f}" if free and held else "–"
        cpu = " → ".join(f"{x['cpu_us_per_request']:.1f}" if x and "cpu_us_per_request" in x else "–"
                         for x in (free, held))
        per_idle, per_ws = conn_memory(r)
        fds = r["fds"]
        out.append(f"| {k} | {rate(free['rps']) if free else '–'} | {rate(held['rps']) if held else '–'} | {ratio} | {cpu} | "
                   f"{r['rss_kib']['before'] / 1024:,.1f} | {r['open_idle']['opened']:,} ({r['open_idle']['seconds']:.1f}) | "
                   f"{per_idle:,.0f} | {r['open_ws']['opened']:,} ({r['open_ws']['seconds']:.1f}) | {per_ws:,.0f} | "
                   f"{fds['before']:,} → {fds['idle']:,} → {fds['ws']:,} | {conn_survivors(r)} | "
                   f"{r['rss_kib']['closed'] / 1024:,.1f} |")
    first_idle, first_ws = conn_memory(conn_rounds[0])
    held, free = paired_median("with", conn_runs), paired_median("without", conn_runs)
    out += ["", f"With {conn_held()} held, active requests ran at "
            f"{held['rps'] / free['rps']:.2f}× the rate without them (medians of {held['rounds']} rounds). "
            f"Memory: {first_idle:,.0f} bytes of RSS per idle keep-alive connection and {first_ws:,.0f} "
            "per WebSocket (round 1, a process that had never held them)."]
    cpu = [median([x["cpu_us_per_request"] for x in conn_runs if x["id"] == rid and "cpu_us_per_request" in x])
           for rid in ("without", "with")]
    if None not in cpu:
        out[-1] += (f" frontdoor's CPU time per request (user and system, from `/proc/PID/stat`; it moves "
                    f"less with the machine's other load than req/s): {cpu[0]:.1f} µs without, {cpu[1]:.1f} µs "
                    f"with them held (medians, {cpu[1] / cpu[0]:.2f}×).")
    return "\n".join(out)


def connections_notes():
    if not conn_setup:
        return ""
    return f"""A frontdoor of its own, configured as the warm-session row's (the same routes, plus
`/ws` to a WebSocket echo server), with `client_timeouts.header: {conn_setup['header_timeout']}`:
frontdoor closes a kept-alive connection that sends no request within `client_timeouts.header`
(10 s by default), and these must stay open through two wrk runs. Pingora keeps HTTP/1.1
connections without a time limit of its own and has no connection limit; WebSocket tunnels get
no client timeout. `bench/tools/connections.py` (Python asyncio) opens {conn_held()}:
each idle connection made one GET of the file with the session cookie, answered 200 without
`Connection: close`; each WebSocket got 101 through frontdoor to the echo server (Python, on
127.0.0.1) with the session cookie, and echoed one message. In each round: wrk on the
warm-session route with nothing held, VmRSS, the idle connections opened, {conn_setup['settle_s']} s,
VmRSS, the WebSockets opened, {conn_setup['settle_s']} s, VmRSS, wrk again with everything held,
then one more GET on every idle connection and one more echo on every WebSocket (the
survivors), and everything closed with a reset. Bytes per connection divide the RSS growth by
the count; they leave out the kernel's socket buffers, which are not in a process's RSS. A
WebSocket's figure covers both of its connections (client and upstream) and the tunnel. The
limit on open files is raised to {conn_setup['nofile']:,} for frontdoor."""


def gnuplot(script):
    subprocess.run(["gnuplot"], input=script, text=True, check=True)


def plots(out):
    # A --provider-only run has no proxy row to draw.
    if proxy:
        proxy_plot(out)
    provider_plot(out)


def proxy_plot(out):
    dat = os.path.join(out, ".proxy.dat")
    with open(dat, "w", encoding="utf-8") as f:
        for i, r in enumerate(proxy):
            label = r["label"].replace('"', "'")
            f.write(f'{i} {r["rps"]:.1f} "{label}"\n')
    n = len(proxy)
    xmax = max((r["rps"] for r in proxy), default=1) * 1.15
    title = f"Proxy path, req/s (wrk -c{machine['connections']}, {machine['duration_s']} s each"
    title += ", smoke run)" if machine.get("smoke") else ")"
    gnuplot(f"""
set terminal svg size 1000,{120 + 38 * n} dynamic font "sans,12" background rgb "white"
set termoption noenhanced
set output "{os.path.join(out, 'proxy.svg')}"
set title "{title}\\n{machine['cpu']}, {machine['nproc']} cores, {machine['date']}"
set style fill solid 0.85 border -1
set yrange [{n - 0.4}:-0.6]
set xrange [0:{xmax:.0f}]
set xlabel "requests per second"
set grid xtics
set format x "%.0f"
set lmargin 58
unset key
plot "{dat}" using (0):1:(0):2:($1-0.38):($1+0.38):ytic(3) with boxxyerror lc rgb "#3b75af", \\
     "{dat}" using 2:1:(sprintf(" %.0f", $2)) with labels left offset 0.6,0 font "sans,10"
""")
    os.remove(dat)


def provider_plot(out):
    pdat = os.path.join(out, ".provider.dat")
    have = [(op, label) for op, label in PROVIDER_OPS if f"fd_{op}" in provider and f"oidc_{op}" in provider]
    if not have:
        # A --proxy-only run: no provider figure to draw.
        return
    with open(pdat, "w", encoding="utf-8") as f:
        for op, label in have:
            short = {"cc": "client_credentials RS256", "cc_es256": "client_credentials ES256",
                     "refresh": "refresh RS256", "refresh_es256": "refresh ES256",
                     "introspect": "introspection", "login": "password login"}[op]
            f.write(f'"{short}" {provider["fd_" + op]["rps"]:.1f} {provider["oidc_" + op]["rps"]:.1f}\n')
    title = "Provider path, operations per second (log scale"
    title += ", smoke run)" if machine.get("smoke") else ")"
    gnuplot(f"""
set terminal svg size {max(900, 150 * len(have))},480 dynamic font "sans,12" background rgb "white"
set termoption noenhanced
set xrange [-0.6:{len(have) - 0.4}]
set output "{os.path.join(out, 'provider.svg')}"
set title "{title}\\n{machine['cpu']}, {machine['nproc']} cores, {machine['date']}"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set logscale y
set yrange [1:*]
set grid ytics
set ylabel "per second"
set key top right
plot "{pdat}" using 2:xtic(1) title "frontdoor" lc rgb "#3b75af", \\
     "" using 3 title "oidc-provider {machine['oidc_provider']}" lc rgb "#e1812c"
""")
    os.remove(pdat)


def method_notes():
    m = machine
    return f"""## How it was measured

`bench/run.sh` (see docs/benchmarks.md) starts everything on 127.0.0.1 of one
machine; the load generator shares the {m['nproc']} cores with the servers. Versions: nginx
{m['nginx']}, wrk {m['wrk']}, Node.js {m['node']}, oidc-provider {m['oidc_provider']}.

**Proxy path.** `wrk -t{m['wrk_threads']} -c{m['connections']} -d{m['duration_s']}s --latency` with
`bench/wrk/bench.lua` (its `done` prints p99.9), after a short warm-up run, for each row; the
upstream is nginx serving a 512-byte file ({m.get('upstream_workers', m['nproc'])} worker process(es), `sendfile {m.get('upstream_sendfile', 'on')}`;
`BENCH_UPSTREAM_WORKERS`, `BENCH_UPSTREAM_SENDFILE`). The nginx proxies keep 64 idle upstream
connections (`keepalive 64`); Pingora pools upstream connections by default. frontdoor and the
bare proxy run with {m.get('proxy_threads', m['nproc'])} worker thread(s) (`BENCH_PROXY_THREADS`, default 1;
frontdoor's own default is one per CPU), each nginx with {m.get('nginx_workers', m['nproc'])} worker process(es) (`BENCH_NGINX_WORKERS`,
default 1: one worker per proxy, the machine's other core left to wrk and the upstream). The ratio column divides each row's req/s by
nginx's plain reverse proxy. The row "nginx auth_request to a do-nothing 204 endpoint" sends
every request through `auth_request` to a location of the upstream nginx that answers 204
(over the same keep-alive pool): the cost of the forward-auth mechanism with an authorizer
that does no work, which frontdoor inline is compared against. The warm-cookie row uses a
session created through the real sign-in form; the Api-Token comes from `frontdoor tokens create`, the Bearer JWT from
`/api/v1/login-check`. Rows with errors (non-2xx/3xx answers, socket errors) are not valid.

**Cold path.** Sessions are written straight into frontdoor's SQLite store, in its schema, by
`bench/tools/sessions.mjs`: a random 256-bit id, stored as base64url(SHA-256(id)), and a cookie
sealed the way the `cookie` crate's private jar seals it (AES-256-GCM with frontdoor's
`keys/cookie.key`). A request with such a cookie finds nothing in the cache and reads the store
(session, then user), exactly as after a restart or once `session.cache_ttl` has passed. The
wrk row gives every request a new session; the share of lookups that really missed is read
from `frontdoor_session_cache_requests_total`. The sequential table sends each of
{cold_latency['cold']['n'] if cold_latency else 0:,} new sessions once (miss) and then again (hit), one
request at a time on one connection, timed by the Node.js client.

**Provider path.** The same clients drive both providers; frontdoor runs with
{m.get('provider_threads', m.get('proxy_threads', m['nproc']))} worker thread(s) for these rows
(`BENCH_PROVIDER_THREADS`, default one per CPU). `client_credentials` and
introspection: wrk POSTing the form with `client_secret_basic`. Refresh: wrk too, with
refresh tokens from real logins (not timed), one per connection and a few spare; each request spends one and the
rotated token in its answer is used by a later request (`bench/wrk/bench.lua`), so every grant
is a real rotation. (A Node.js client used before capped both providers at the rate one
JavaScript thread could drive while sharing the cores.) Password logins: {m['login_concurrency']} workers, each iteration a new cookie jar: the
authorization request (PKCE S256), the sign-in form (GET, then POST with the hidden fields it
carries), the redirects to the redirect URI, and the code exchange; counted when the token
response holds an access token. Both check passwords with Argon2id at frontdoor's parameters
(m=19456 KiB, t=2, p=1) off the event loop (frontdoor: tokio's blocking pool; oidc-provider:
the `argon2` package on libuv's pool).

What is comparable and what is not:
- Storage: frontdoor writes to SQLite in WAL mode with `synchronous=FULL` (a durable commit per
  grant that writes); oidc-provider keeps its models in a JavaScript `Map` in memory, as its
  development setup does, and loses them on restart. This favours oidc-provider on every grant
  that stores something (refresh, login, authorization codes).
- Tokens: both sign access tokens as JWTs (oidc-provider through a default resource
  indicator, `accessTokenFormat: 'jwt'`) and an ID token on the code exchange and on refresh.
  Both algorithms are measured: the `client_credentials` and refresh rows run once with RS256
  keys (RSA 2048, frontdoor's default) and once with ES256 keys (ECDSA P-256; frontdoor's
  `keys.algorithm: ES256`, oidc-provider's `provider.mjs --alg ES256`), on a second instance of
  each, and each pair uses the same algorithm on both providers; before measuring, the bench
  decodes the JWS header of the tokens each instance issues (`client_credentials`, code
  exchange and refresh) and stops unless it names the expected algorithm. The introspection and
  login rows use the RS256 instances. Both rotate refresh tokens on every use. bench-web is
  first party on both (no consent page).
- Introspection: oidc-provider refuses to introspect JWT access tokens, so its row introspects
  an opaque `client_credentials` token (a lookup in its in-memory store); frontdoor's row
  introspects its JWT `client_credentials` token (signature check and grant state).
- oidc-provider runs on one Node.js thread (plus libuv's pool for Argon2); frontdoor uses both
  cores. oidc-provider {m['oidc_provider']} prints that Node.js {m['node']} is not a supported runtime
  (it wants 22 LTS or later).

**Memory.** A second frontdoor with `session.cache_ttl: 24h` (so that nothing expires during the
run) and a cache capacity above the largest count. The 0 row is taken after one real login and a
second of wrk traffic. For each count, the missing sessions are written into its store as above
and each is requested once through the proxy (`sessions.mjs load`, 32 connections), which puts
it in the cache; then VmRSS is read from `/proc`. Bytes per session divides the growth by the
number of sessions; it includes everything that grew (SQLite's page cache, which is bounded at
about 2 MiB per pooled connection, and the allocator's slack), so the column against the
previous row is the better estimate of the marginal cost.
"""


def results_md():
    out = [
        "# frontdoor benchmark results",
        "",
        smoke_banner() + f"Machine: {machine_line()}.",
        "",
        f"Produced by `bench/run.sh` with {machine['duration_s']} s per measurement. "
        "All raw figures are in [results.json](results.json).",
        "",
        "## Targets (issues 6, 14 and 17)",
        "",
        targets_table(),
        "",
        "## Proxy path",
        "",
        f"![Proxy path, requests per second](proxy.svg)",
        "",
        proxy_table(),
        "",
        "## Paired rounds",
        "",
        "The rows the proxy targets compare, measured back to back in turn "
        f"({machine.get('pair_rounds', 0)} rounds, {machine['duration_s']} s each): the machine's speed "
        "drifts by tens of percent within minutes, so these medians, not the single rows above, "
        "give the ratios in the targets table.",
        "",
        paired_table(),
        "",
        "## Cold path: a session that is in the store but not in the cache",
        "",
        cold_table(),
        "",
        "## Provider path: frontdoor and oidc-provider",
        "",
        "![Provider path, operations per second](provider.svg)" if provider else "(not measured in this run)",
        "",
        provider_table(),
        "",
        "### Paired rounds of the provider targets",
        "",
        "Raw signatures and every grant row the provider targets compare, measured back to back "
        f"in each round ({machine['duration_s']} s each; a warm-up round before them is not recorded). "
        "The targets divide the rows of the same round and take the median.",
        "",
        provider_paired_table(),
        "",
        "## Memory: frontdoor's RSS with sessions in the cache",
        "",
        memory_table(),
        "",
        "## Connections held by one node",
        "",
        connections_table(),
        "",
        connections_notes(),
        "",
        method_notes(),
    ]
    return "\n".join(out)


def readme_block():
    lines = [
        "<!-- bench:begin (written by bench/run.sh; do not edit by hand) -->",
        smoke_banner().rstrip("\n"),
        "",
        f"Latest run — {machine_line()}; {machine['duration_s']} s per measurement.",
        "",
        "![Proxy path, requests per second](bench/proxy.svg)",
        "",
        proxy_table(),
        "",
        provider_table(),
        "",
        "### Connections held by one node\n\n" + connections_table() if conn_rounds else "",
        "",
        "### Targets (issues 6, 14 and 17)",
        "",
        targets_table(),
        "",
        "Cold path, memory and the method: [bench/results.md](bench/results.md).",
        "<!-- bench:end -->",
    ]
    return "\n".join(line for line in lines)


os.makedirs(args.out, exist_ok=True)
with open(os.path.join(args.out, "results.json"), "w", encoding="utf-8") as f:
    json.dump({"machine": machine, "results": records}, f, indent=1)
    f.write("\n")
with open(os.path.join(args.out, "results.md"), "w", encoding="utf-8") as f:
    f.write(results_md())
plots(args.out)

if args.readme:
    text = open(args.readme, encoding="utf-8").read()
    begin = text.find("<!-- bench:begin")
    end = text.find("<!-- bench:end -->")
    if begin < 0 or end < 0:
        print(f"{args.readme}: no bench:begin/bench:end markers; not updated", file=sys.stderr)
    else:
        end += len("<!-- bench:end -->")
        with open(args.readme, "w", encoding="utf-8") as f:
            f.write(text[:begin] + readme_block() + text[end:])
