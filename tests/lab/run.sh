#!/usr/bin/env bash
# The fault lab: five members of the `node` command (Deno, Bun, Node, Deno, Bun) on five hosts
# made of network namespaces, broken on purpose (tests/lab/run.ts has the scenarios). Root only;
# needs iproute2, python3 (the impairment switch, when the kernel has no netem), tcpdump and
# faketime. Not part of `npm test`.
#
#   tests/lab/run.sh [--only=partition,loss,crash,stranger,skew,hostile,load,stress,capacity]
#                    [--load-rate=300] [--load-seconds=60] [--stress-rate=5000]
#                    [--stress-seconds=30] [--impair=auto|netem|switch] [--figures=FILE.json]
#                    [--capacity-rates=200,400,...] [--capacity-seconds=20]
#                    [--members-from=v0.1.0] [--profile=DIR] [--keep]
#
# All scenarios take about 6 minutes on a 2-core machine (tests/lab/run.ts lists them);
# capacity runs only when --only names it.
#
# Network: deployment/netns_e2e.sh makes hosts gkvlab-m0..m5 (m5: the stranger) on a bridge in
# gkvlab-sw, gossip on 10.213.0.10-15 (eth0). This script adds a control network, never
# impaired nor partitioned: eth1 in every host, 10.214.0.10-15, on a second bridge where the
# driver (run.ts) sits at 10.214.0.1 and reaches the members' HTTP APIs. The host's own
# network is not touched. Everything is removed on exit, whatever happens: the processes
# left in the lab's namespaces (by pid), the namespaces, the work directory (unless --keep).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
export PATH="$root/node_modules/.bin:$PATH"

if ((EUID != 0)); then
  echo "tests/lab/run.sh: the fault lab needs root (network namespaces)" >&2
  exit 2
fi
for tool in ip tc python3 tcpdump; do
  command -v "$tool" >/dev/null || {
    echo "tests/lab/run.sh: $tool is missing (Debian: iproute2, python3, tcpdump, faketime)" >&2
    exit 2
  }
done

run=lab
netns=deployment/netns_e2e.sh
keep=0
for arg in "$@"; do [[ $arg == --keep ]] && keep=1; done
work=$(mktemp -d /tmp/gossip-kv-lab.XXXXXX)

cleanup() {
  local status=$? ns pid
  trap - EXIT INT TERM
  for ns in $(ip netns list | awk '{print $1}' | grep -E "^gkv$run-(m[0-9]+|sw)\$" || true); do
    for pid in $(ip netns pids "$ns" 2>/dev/null || true); do kill -9 "$pid" 2>/dev/null || true; done
  done
  "$netns" down "$run" || true
  if ((keep)); then echo "tests/lab/run.sh: work directory kept: $work" >&2; else rm -rf "$work"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$netns" up "$run" 6 >/dev/null
sw=gkv$run-sw
ip -n "$sw" link add brc type bridge
ip -n "$sw" addr add 10.214.0.1/24 dev brc
ip -n "$sw" link set brc up
for i in 0 1 2 3 4 5; do
  ns=gkv$run-m$i
  ip -n "$ns" link add eth1 type veth peer name "c$i" netns "$sw"
  ip -n "$ns" addr add "10.214.0.$((10 + i))/24" dev eth1
  ip -n "$ns" link set eth1 up
  ip -n "$sw" link set "c$i" master brc
  ip -n "$sw" link set "c$i" up
done

# A hard stop well past the lab's own 12-minute budget, should the driver hang.
set +e
timeout -k 10 900 ip netns exec "$sw" node --import tsx tests/lab/run.ts --work="$work" "$@"
status=$?
set -e
((status == 124)) && echo "tests/lab/run.sh: the lab did not end within 15 minutes" >&2
exit "$status"
