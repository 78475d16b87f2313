#!/usr/bin/env bash
# The two Secrets of a Gossip KV install, made on the spot and never written to the repository:
#
#   gossip-kv-cluster-key  key "cluster.keys": the cluster keys, one per line, each the base64 of
#                          32 random bytes; the first line is the primary key (it encrypts), every
#                          line decrypts. Mounted at /etc/gossip-kv/keys/cluster.keys (--key-file).
#   gossip-kv-http-token   key "token": the bearer token of the HTTP API's write routes
#                          (env GOSSIP_KV_HTTP_TOKEN).
#
# Usage: deployment/k8s/secrets.sh COMMAND [--namespace NS] [--no-restart]
#   init       create both Secrets (and the namespace) unless they exist
#   token      print the HTTP token
#   keys       print the fingerprints (SHA-256 prefixes) of the installed keys, primary first
#   add-key    key rotation step 1: append a new key (every member can then decrypt with it)
#   promote    key rotation step 2: make the newest key the primary (members encrypt with it)
#   retire     key rotation step 3: remove every key but the primary
#   render     print both Secrets as YAML with fresh values, without touching any cluster
#              (for `kubectl apply -f -` or a sealed-secrets/SOPS pipeline)
#
# add-key, promote and retire then restart the members one at a time
# (`kubectl rollout restart` + `rollout status`), so every member has read the new key file
# before the next step may start; --no-restart skips that (for a `node` command that reloads
# its key file by itself).
set -euo pipefail

namespace=gossip-kv
statefulset=gossip-kv
restart=1
command=${1:-}
[[ $# -gt 0 ]] && shift
while (($#)); do
  case $1 in
  --namespace | -n)
    namespace=$2
    shift 2
    ;;
  --no-restart)
    restart=0
    shift
    ;;
  *)
    echo "secrets.sh: unknown argument $1" >&2
    exit 2
    ;;
  esac
done
kubectl=${KUBECTL:-kubectl}

new_key() { head -c 32 /dev/urandom | base64 -w0; }
new_token() { head -c 32 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '='; }

work=$(mktemp -d)
chmod 700 "$work"
trap 'rm -rf "$work"' EXIT

secret_yaml() { # name key file
  "$kubectl" create secret generic "$1" --namespace "$namespace" \
    --from-file="$2=$3" --dry-run=client -o yaml
}

current_keys() {
  "$kubectl" get secret gossip-kv-cluster-key --namespace "$namespace" \
    -o 'jsonpath={.data.cluster\.keys}' | base64 -d
}

write_keys() { # file with the new key lines
  secret_yaml gossip-kv-cluster-key cluster.keys "$1" | "$kubectl" apply -f -
}

roll() {
  if ((restart)) && "$kubectl" get statefulset "$statefulset" --namespace "$namespace" >/dev/null 2>&1; then
    "$kubectl" rollout restart statefulset "$statefulset" --namespace "$namespace"
    "$kubectl" rollout status statefulset "$statefulset" --namespace "$namespace" --timeout=10m
  fi
}

# A fingerprint, not a prefix of the key: the first 12 hex digits of its SHA-256.
fingerprints() { while read -r key; do printf '%s' "$key" | sha256sum | cut -c1-12; done; }

case $command in
render)
  new_key >"$work/keys"
  echo >>"$work/keys"
  new_token >"$work/token"
  secret_yaml gossip-kv-cluster-key cluster.keys "$work/keys"
  echo ---
  secret_yaml gossip-kv-http-token token "$work/token"
  ;;
init)
  "$kubectl" create namespace "$namespace" --dry-run=client -o yaml | "$kubectl" apply -f -
  if "$kubectl" get secret gossip-kv-cluster-key --namespace "$namespace" >/dev/null 2>&1; then
    echo "secret gossip-kv-cluster-key exists: kept"
  else
    new_key >"$work/keys"
    echo >>"$work/keys"
    write_keys "$work/keys"
  fi
  if "$kubectl" get secret gossip-kv-http-token --namespace "$namespace" >/dev/null 2>&1; then
    echo "secret gossip-kv-http-token exists: kept"
  else
    new_token >"$work/token"
    secret_yaml gossip-kv-http-token token "$work/token" | "$kubectl" apply -f -
  fi
  ;;
token)
  "$kubectl" get secret gossip-kv-http-token --namespace "$namespace" \
    -o 'jsonpath={.data.token}' | base64 -d
  echo
  ;;
keys)
  current_keys | grep -v '^$' | fingerprints
  ;;
add-key)
  current_keys | grep -v '^$' >"$work/keys"
  new_key >>"$work/keys"
  echo >>"$work/keys"
  write_keys "$work/keys"
  echo "keys now (primary first):"
  fingerprints <"$work/keys"
  roll
  ;;
promote)
  current_keys | grep -v '^$' >"$work/old"
  if (($(wc -l <"$work/old") < 2)); then
    echo "secrets.sh: only one key installed; run add-key first" >&2
    exit 1
  fi
  { tail -n 1 "$work/old" && head -n -1 "$work/old"; } >"$work/keys"
  write_keys "$work/keys"
  echo "keys now (primary first):"
  fingerprints <"$work/keys"
  roll
  ;;
retire)
  current_keys | grep -v '^$' | head -n 1 >"$work/keys"
  write_keys "$work/keys"
  echo "keys now (primary first):"
  fingerprints <"$work/keys"
  roll
  ;;
*)
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
  [[ -z $command || $command == help || $command == --help ]] || exit 2
  ;;
esac
