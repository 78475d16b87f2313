#!/usr/bin/env bash
# A cluster's network without a cluster: N hosts in N network namespaces, wired to one bridge,
# with a per-namespace /etc/hosts where the gossip headless Service's DNS name resolves to every
# host (as Kubernetes DNS resolves it to every pod) and each pod name to its own host.
# The host's own network is not touched: the bridge lives in a namespace of its own.
# Needs root and iproute2 (`ip`).
#
#   deployment/netns_e2e.sh up RUN N [--name NAME]... [--file /etc/PATH=SRC]...
#       make hosts 0..N-1 and print one line per host: "<i> <netns> <ip>".
#       --name: a name that resolves to every host (the rendered --seeds host, say);
#       --file: SRC appears at /etc/PATH inside every host, e.g. the cluster key file at the
#       path the StatefulSet mounts it (`ip netns exec` bind-mounts /etc/netns/<netns>/<top>
#       over /etc/<top>, so an empty /etc/<top> is made on the machine if missing, and removed
#       by `down`).
#   deployment/netns_e2e.sh exec RUN I CMD...  run CMD in host I (`ip netns exec`, which also
#                                              bind-mounts /etc/netns/<netns>/{hosts,resolv.conf})
#   deployment/netns_e2e.sh down RUN           remove everything of run RUN (idempotent)
#   deployment/netns_e2e.sh selftest           up 3 hosts, check names and reachability, down
#
# RUN: 1 to 5 letters or digits naming this run, so that runs (and other suites' namespaces)
# never collide. Host I of run RUN: netns gkv<RUN>-m<I>, address 10.213.0.<10+I>/24, pod name
# gossip-kv-<I>. Addresses live only inside the run's namespaces.
set -euo pipefail

subnet=10.213.0
ns_of() { echo "gkv$1-m$2"; }
switch_of() { echo "gkv$1-sw"; }
ip_of() { echo "$subnet.$((10 + $1))"; }

check_run() {
  [[ $1 =~ ^[a-z0-9]{1,5}$ ]] || {
    echo "netns_e2e.sh: RUN must be 1 to 5 lowercase letters or digits, got '$1'" >&2
    exit 2
  }
}

state=/run/gossip-kv-netns

down() {
  local run=$1 ns dir
  for ns in $(ip netns list | awk '{print $1}' | grep -E "^gkv$run-(m[0-9]+|sw)\$" || true); do
    ip netns del "$ns" 2>/dev/null || true # deleting a namespace deletes its veth ends
    rm -rf "/etc/netns/$ns"
  done
  if [[ -f $state/$run.mountpoints ]]; then
    while read -r dir; do rmdir "$dir" 2>/dev/null || true; done <"$state/$run.mountpoints"
    rm -f "$state/$run.mountpoints"
  fi
  rmdir /etc/netns 2>/dev/null || true
}

up() {
  local run=$1 n=$2
  shift 2
  local names=() files=() sw i ns hosts name file dest src top
  while (($#)); do
    case $1 in
    --name) names+=("$2") ;;
    --file)
      [[ $2 == /etc/?*=?* ]] || {
        echo "netns_e2e.sh: --file wants /etc/PATH=SRC, got '$2'" >&2
        exit 2
      }
      [[ -r ${2#*=} ]] || {
        echo "netns_e2e.sh: cannot read ${2#*=}" >&2
        exit 2
      }
      files+=("$2")
      ;;
    *)
      echo "netns_e2e.sh: unknown argument '$1'" >&2
      exit 2
      ;;
    esac
    shift 2
  done
  ((n >= 1 && n <= 50)) || {
    echo "netns_e2e.sh: N must be 1..50" >&2
    exit 2
  }
  down "$run"
  sw=$(switch_of "$run")
  ip netns add "$sw"
  ip -n "$sw" link set lo up
  ip -n "$sw" link add br0 type bridge
  ip -n "$sw" link set br0 up
  hosts="127.0.0.1 localhost"$'\n'"::1 localhost ip6-localhost ip6-loopback"$'\n'
  for ((i = 0; i < n; i++)); do
    for name in "${names[@]+"${names[@]}"}"; do hosts+="$(ip_of "$i") $name"$'\n'; done
  done
  for ((i = 0; i < n; i++)); do
    ns=$(ns_of "$run" "$i")
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    # Both veth ends are made in the new namespace, then one moves to the switch: no interface
    # ever appears in the host's namespace.
    ip -n "$ns" link add eth0 type veth peer name "p$i" netns "$sw"
    ip -n "$ns" addr add "$(ip_of "$i")/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$sw" link set "p$i" master br0
    ip -n "$sw" link set "p$i" up
    mkdir -p "/etc/netns/$ns"
    printf '%s%s gossip-kv-%s\n' "$hosts" "$(ip_of "$i")" "$i" >"/etc/netns/$ns/hosts"
    # No DNS server in the namespaces: names come from the hosts file (getaddrinfo) only, and a
    # resolver that asks DNS directly fails at once instead of reaching the host's resolver.
    printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n' >"/etc/netns/$ns/resolv.conf"
    for file in "${files[@]+"${files[@]}"}"; do
      dest=${file%%=*}
      src=${file#*=}
      mkdir -p "$(dirname "/etc/netns/$ns/${dest#/etc/}")"
      cp "$src" "/etc/netns/$ns/${dest#/etc/}"
      top=${dest#/etc/}
      top=/etc/${top%%/*}
      if [[ ! -e $top ]]; then
        mkdir -p "$top" "$state"
        echo "$top" >>"$state/$run.mountpoints"
      fi
    done
    echo "$i $ns $(ip_of "$i")"
  done
}

case ${1:-} in
up)
  check_run "${2:?RUN}"
  up "$2" "${3:?N}" "${@:4}"
  ;;
down)
  check_run "${2:?RUN}"
  down "$2"
  ;;
exec)
  check_run "${2:?RUN}"
  ns=$(ns_of "$2" "${3:?I}")
  shift 3
  exec ip netns exec "$ns" "$@"
  ;;
selftest)
  run=st$$
  run=${run:0:5}
  echo "selftest $run" >"/tmp/gkv-$run.txt"
  trap 'down "$run"; rm -f "/tmp/gkv-$run.txt"' EXIT
  up "$run" 3 --name gossip-kv-gossip.gossip-kv.svc.cluster.local \
    --file "/etc/gossip-kv-selftest/keys/cluster.keys=/tmp/gkv-$run.txt" >/dev/null
  for i in 0 1 2; do
    got=$(ip netns exec "$(ns_of "$run" "$i")" getent ahostsv4 gossip-kv-gossip.gossip-kv.svc.cluster.local |
      awk '$2 == "STREAM" {print $1}' | sort | tr '\n' ' ')
    [[ $got == "$subnet.10 $subnet.11 $subnet.12 " ]] || {
      echo "host $i resolves the service name to '$got'" >&2
      exit 1
    }
    got=$(ip netns exec "$(ns_of "$run" "$i")" cat /etc/gossip-kv-selftest/keys/cluster.keys)
    [[ $got == "selftest $run" ]] || {
      echo "host $i does not see the mounted file: '$got'" >&2
      exit 1
    }
    for j in 0 1 2; do
      # Reachability over the bridge: a TCP connect to a closed port is refused by the peer's
      # kernel (an answer), while an unreachable peer times out.
      if ! out=$(ip netns exec "$(ns_of "$run" "$i")" timeout 3 bash -c \
        "exec 3<>/dev/tcp/$(ip_of "$j")/9" 2>&1) && [[ $out != *"refused"* ]]; then
        echo "host $i cannot reach host $j: $out" >&2
        exit 1
      fi
    done
  done
  echo "netns selftest: 3 hosts, names resolve, files mounted, all pairs reach each other"
  ;;
*)
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
  exit 2
  ;;
esac
