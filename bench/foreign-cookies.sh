#!/usr/bin/env bash
# Prints a realistic corporate domain's ~3.5 KB of other cookies (32 preference cookies of 90
# bytes), each followed by "; ", to put around frontdoor's session cookie in a Cookie header:
# what bench/run.sh's fd_cookie_big row and bench/instructions.sh's matching row send.
for i in $(seq 1 32); do printf '_corp_pref_%02d=%s; ' "$i" "$(head -c 90 /dev/zero | tr '\0' 'v')"; done
