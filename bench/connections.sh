# shellcheck shell=bash
# Connections held by one node (issue 17 item 4), sourced by bench/run.sh, which calls
# measure_connections after the proxy rows. It uses run.sh's helpers and settings (fd_config,
# wait_http, expect, record, rss_kib, log, die, stop_pids, PIDS, WORK, BIN, WRK_LUA, DURATION,
# WARMUP, PAIR_ROUNDS, WRK_THREADS, CONNECTIONS, PORT_BASE, EMAIL, PASSWORD).
#
# A frontdoor of its own (:+50, admin :+51; the warm-session row's configuration, plus a route
# /ws to a WebSocket echo server on :+52 and client_timeouts.header raised, see below) holds
# BENCH_CONN_IDLE (10000) idle keep-alive connections, each having made one real request with a
# session cookie, and BENCH_CONN_WS (1000) WebSockets, each having echoed one message; both are
# held by bench/tools/connections.py. In each of PAIR_ROUNDS rounds: wrk on the warm-session
# route with nothing held, VmRSS, the idle connections opened, VmRSS, the WebSockets opened,
# VmRSS, wrk again with all of them held, one more request on every idle connection and one
# more echo on every WebSocket (how many survived), and everything closed.
# shellcheck disable=SC2154 # run.sh's variables

CONN_IDLE="${BENCH_CONN_IDLE:-10000}"
CONN_WS="${BENCH_CONN_WS:-1000}"
# Seconds between opening connections and reading VmRSS: frontdoor's side of the last
# handshakes finishes, and the allocator's deferred work with it.
CONN_SETTLE="${BENCH_CONN_SETTLE:-2}"
# frontdoor closes a kept-alive connection that sends no request header within
# client_timeouts.header (10 s by default, like Apache's KeepAliveTimeout): the idle connections
# must outlive two wrk runs and the opening of the others, so the bench raises it to its
# largest value. Pingora itself keeps an HTTP/1.1 connection without a time limit and has no
# connection limit; WebSockets are tunnels no client timeout applies to.
CONN_HEADER_TIMEOUT=1h

conn_nofile() { # COUNT: raise the soft limit on open files to COUNT, or stop
  local hard
  hard="$(ulimit -Hn)"
  if [ "$hard" != unlimited ] && [ "$hard" -lt "$1" ]; then
    die "connections: $1 open files needed, the hard limit is $hard (raise it, or lower BENCH_CONN_IDLE)"
  fi
}

conn_ask() { # COMMAND: one command to the holder; prints its JSON answer
  local before _
  before="$(wc -l < "$CONN_OUT")"
  printf '%s\n' "$1" >&"$CONN_CTL"
  for _ in $(seq 1 3000); do
    [ "$(wc -l < "$CONN_OUT")" -gt "$before" ] && { tail -n1 "$CONN_OUT"; return 0; }
    kill -0 "$CONN_HOLDER_PID" 2>/dev/null || die "connections: the holder stopped (see $WORK/logs/conn-holder.err)"
    sleep 0.1
  done
  die "connections: no answer from the holder to '$1' in 300 s"
}

conn_fds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 | wc -l; }

conn_settled() { # PID FILES: wait (up to 60 s) until PID has no more than FILES + 512 open files
  # (the held ones gone; its upstream pool may have grown meanwhile)
  local _
  for _ in $(seq 1 600); do
    [ "$(conn_fds "$1")" -le $(( $2 + 512 )) ] && return 0
    sleep 0.1
  done
  die "connections: frontdoor still has $(conn_fds "$1") open files 60 s after the close (before: $2)"
}

# frontdoor's CPU time so far (user and system, in clock ticks): per request it moves less with
# the machine's other load than req/s does.
conn_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

conn_wrk() { # ID ROUND: the warm-session route on the connections frontdoor: a warm-up, then
  # the measured run. The warm-up also takes the work frontdoor defers while idle (the memory
  # of the previous round's connections is given back as its threads next allocate), which
  # would otherwise be charged to the run without connections after a close.
  local raw="$WORK/raw/conn-$1-$2.txt" json t0 t1
  env BENCH_THREADS="$WRK_THREADS" BENCH_HEADERS="Cookie: $CONN_COOKIE" wrk -t"$WRK_THREADS" -c"$CONNECTIONS" \
    -d"${WARMUP}s" -s "$WRK_LUA" "$CONN_URL/bench.txt" > /dev/null
  t0="$(conn_ticks "$CONN_FD_PID")"
  env BENCH_THREADS="$WRK_THREADS" BENCH_HEADERS="Cookie: $CONN_COOKIE" wrk -t"$WRK_THREADS" -c"$CONNECTIONS" \
    -d"${DURATION}s" --latency -s "$WRK_LUA" "$CONN_URL/bench.txt" > "$raw"
  t1="$(conn_ticks "$CONN_FD_PID")"
  json="$(grep '^BENCH_JSON ' "$raw" | cut -c12-)"
  [ -n "$json" ] || die "no result from wrk for connections $1 round $2 (see $raw)"
  json="$(jq -c --arg id "$1" --argjson r "$2" --argjson cpu "$(( (t1 - t0) * 1000 / $(getconf CLK_TCK) ))" \
    '. + {section: "connections", id: $id, round: $r, tool: "wrk", cpu_ms: $cpu, cpu_us_per_request: ($cpu * 1000 / .requests)}' <<< "$json")"
  record "$json"
  jq -r '"   round \(.round) \(.id): \(.rps|floor) req/s, p99 \(.p99_us) µs, \(.cpu_us_per_request * 10 | round / 10) µs of frontdoor CPU per request, non-2xx \(.err_status)"' <<< "$json" >&2
}

measure_connections() {
  local p_conn=$((PORT_BASE + 50)) p_admin=$((PORT_BASE + 51)) p_echo=$((PORT_BASE + 52))
  local p fd_files=$((CONN_IDLE + 2 * CONN_WS + 2 * CONNECTIONS + 1024)) holder_files=$((CONN_IDLE + CONN_WS + 256))
  for p in $p_conn $p_admin $p_echo; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      die "port $p on 127.0.0.1 is in use; set BENCH_PORT_BASE to another base"
    fi
  done
  conn_nofile "$fd_files"
  conn_nofile "$holder_files"
  log "connections: $CONN_IDLE idle keep-alive connections and $CONN_WS WebSockets held by a frontdoor :$p_conn, $PAIR_ROUNDS paired rounds"

  local tools="$ROOT/bench/tools/connections.py"
  (ulimit -n "$((CONN_WS + 256))" && exec python3 "$tools" echo --port "$p_echo") > "$WORK/logs/ws-echo.log" 2>&1 &
  local echo_pid=$!
  PIDS+=("$echo_pid")

  local conf="$WORK/frontdoor-connections.yaml"
  {
    fd_config "$p_conn" "$p_admin" "$WORK/conn-data" "client_timeouts: { header: $CONN_HEADER_TIMEOUT }"
    # routes: is the last key fd_config writes.
    echo "  - { host: \"*\", path_prefix: /ws, upstream: \"http://127.0.0.1:$p_echo\" }"
  } > "$conf"
  (ulimit -n "$fd_files" && exec "$BIN" --config "$conf" serve) > "$WORK/logs/frontdoor-connections.log" 2>&1 &
  local fd_pid=$!
  PIDS+=("$fd_pid")
  CONN_FD_PID=$fd_pid
  wait_http "http://127.0.0.1:$p_admin/healthz"
  wait_http "http://127.0.0.1:$p_echo/"
  printf '%s\n' "$PASSWORD" | "$BIN" --config "$conf" users add --email "$EMAIL" --name "Bench User" \
    --groups bench --password-stdin >/dev/null
  CONN_URL="http://127.0.0.1:$p_conn"
  local jar="$WORK/conn-jar.txt" csrf
  csrf="$(curl -s -c "$jar" -b "$jar" "$CONN_URL/_frontdoor/login" | grep -o 'name="csrf_token" value="[^"]*"' | head -n1 | cut -d'"' -f4)"
  expect 303 -c "$jar" -b "$jar" "$CONN_URL/_frontdoor/login" --data-urlencode "email=$EMAIL" \
    --data-urlencode "password=$PASSWORD" --data-urlencode "csrf_token=$csrf" --data-urlencode return_to=/
  CONN_COOKIE="frontdoor_session=$(awk '$6 == "frontdoor_session" {print $7}' "$jar")"
  expect 200 -H "Cookie: $CONN_COOKIE" "$CONN_URL/bench.txt"

  CONN_OUT="$WORK/conn-holder.jsonl"
  : > "$CONN_OUT"
  mkfifo "$WORK/conn-ctl"
  (ulimit -n "$holder_files" && exec python3 "$tools" hold --port "$p_conn" --cookie "$CONN_COOKIE") \
    < "$WORK/conn-ctl" > "$CONN_OUT" 2> "$WORK/logs/conn-holder.err" &
  CONN_HOLDER_PID=$!
  PIDS+=("$CONN_HOLDER_PID")
  exec {CONN_CTL}> "$WORK/conn-ctl"
  local probe
  probe="$(conn_ask "ws 1")"
  [ "$(jq .opened <<< "$probe")" = 1 ] || die "connections: a WebSocket through frontdoor failed: $probe"
  conn_ask close > /dev/null

  record "$(jq -nc --argjson i "$CONN_IDLE" --argjson w "$CONN_WS" --arg t "$CONN_HEADER_TIMEOUT" \
    --argjson s "$CONN_SETTLE" --arg n "$fd_files" \
    '{section: "connections_setup", idle: $i, ws: $w, header_timeout: $t, settle_s: $s, nofile: ($n|tonumber)}')"
  local round rss0 rss1 rss2 rss3 rss4 fds0 fds1 fds2 idle ws check
  for round in $(seq 1 "$PAIR_ROUNDS"); do
    conn_wrk without "$round"
    sleep 1
    rss0="$(rss_kib "$fd_pid")"; fds0="$(conn_fds "$fd_pid")"
    idle="$(conn_ask "idle $CONN_IDLE")"
    sleep "$CONN_SETTLE"
    rss1="$(rss_kib "$fd_pid")"; fds1="$(conn_fds "$fd_pid")"
    ws="$(conn_ask "ws $CONN_WS")"
    sleep "$CONN_SETTLE"
    rss2="$(rss_kib "$fd_pid")"; fds2="$(conn_fds "$fd_pid")"
    log "   round $round: $(jq .opened <<< "$idle") idle connections in $(jq .seconds <<< "$idle") s, $(jq .opened <<< "$ws") WebSockets in $(jq .seconds <<< "$ws") s; RSS $rss0 → $rss1 → $rss2 KiB, open files $fds0 → $fds1 → $fds2"
    conn_wrk with "$round"
    check="$(conn_ask check)"
    rss3="$(rss_kib "$fd_pid")"
    conn_ask close > /dev/null
    # frontdoor has let go of every connection before the next round's run without them, so
    # that their teardown is not charged to it.
    conn_settled "$fd_pid" "$fds0"
    sleep "$CONN_SETTLE"
    rss4="$(rss_kib "$fd_pid")"
    log "   round $round: still open after wrk: $(jq -r '"\(.idle_alive) of \(.idle_held) idle, \(.ws_alive) of \(.ws_held) WebSockets"' <<< "$check"); RSS $rss3 KiB, $rss4 KiB once closed"
    record "$(jq -nc --argjson r "$round" --argjson idle "$idle" --argjson ws "$ws" --argjson check "$check" \
      --argjson rss "[$rss0, $rss1, $rss2, $rss3, $rss4]" --argjson fds "[$fds0, $fds1, $fds2]" \
      '{section: "connections_round", round: $r, open_idle: $idle, open_ws: $ws, check: $check,
        rss_kib: {before: $rss[0], idle: $rss[1], ws: $rss[2], after_wrk: $rss[3], closed: $rss[4]},
        fds: {before: $fds[0], idle: $fds[1], ws: $fds[2]}}')"
  done

  exec {CONN_CTL}>&-
  wait "$CONN_HOLDER_PID" 2>/dev/null || true
  stop_pids "$fd_pid" "$echo_pid"
  local kept=() pid
  for pid in "${PIDS[@]}"; do
    case " $CONN_HOLDER_PID $fd_pid $echo_pid " in *" $pid "*) ;; *) kept+=("$pid") ;; esac
  done
  PIDS=("${kept[@]}")
}
