#!/usr/bin/env bash
# Starts a local Anvil and deploys the test tokens from fixtures/contracts.
#   anvil/start.sh [PORT]            start Anvil on 127.0.0.1:PORT (default 8545),
#                                    deploy, then run in the foreground (Ctrl-C stops it)
#   anvil/start.sh --deploy-only URL deploy to an already running, fresh Anvil at URL
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
bin="$here/node_modules/.bin"

# Account 0 of the default mnemonic; on a fresh chain its nonces 0, 1, 2
# give the contract addresses below, which keyward's tests hard-code.
deployer=0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266
names=(TestDollar TestEighteen HostileToken)
expected=(
  0x5FbDB2315678afecb367f032d93F642f64180aa3
  0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512
  0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0
)

die() { echo "start.sh: error: $*" >&2; exit 1; }

[[ -x "$bin/anvil" && -x "$bin/cast" ]] ||
  die "anvil/cast not installed; run: npm ci --prefix anvil --ignore-scripts"

# cast looks for a Foundry project in its working directory, so run it from
# an empty one.
workdir="$(mktemp -d)"
anvil_pid=""
cleanup() {
  if [[ -n "$anvil_pid" ]]; then
    kill "$anvil_pid" 2>/dev/null || true
    wait "$anvil_pid" 2>/dev/null || true
  fi
  rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cast() { (cd "$workdir" && "$bin/cast" "$@"); }

deploy() {
  local url="$1" i name fixture bytecode receipt addr nonce
  # Refuse before sending anything: any other nonce gives other addresses.
  nonce="$(cast nonce --rpc-url "$url" "$deployer")" || die "no node answering on $url"
  [[ "$nonce" == 0 ]] || die "deployer $deployer has nonce $nonce on $url; deploy needs a fresh Anvil"
  for i in "${!names[@]}"; do
    name="${names[$i]}"
    fixture="$root/fixtures/contracts/$name.json"
    [[ -f "$fixture" ]] || die "missing $fixture; build it with: node anvil/build-contracts.mjs"
    bytecode="$(node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).bytecode)' \
      "$fixture")" || die "cannot read $fixture"
    receipt="$(cast send --rpc-url "$url" --unlocked --from "$deployer" --json --create "$bytecode")" ||
      die "deploying $name failed"
    addr="$(node -e 'const r = JSON.parse(process.argv[1]);
      if (r.status !== "0x1" || !r.contractAddress) process.exit(1);
      process.stdout.write(r.contractAddress)' "$receipt")" || die "deploying $name reverted: $receipt"
    addr="$(cast to-check-sum-address "$addr")"
    [[ "$addr" == "${expected[$i]}" ]] ||
      die "$name deployed at $addr, expected ${expected[$i]} (is the chain fresh? deployer nonce must start at 0)"
    printf '%-13s %s\n' "$name" "$addr"
  done
}

if [[ "${1:-}" == "--deploy-only" ]]; then
  [[ $# -eq 2 ]] || die "usage: $0 --deploy-only URL"
  deploy "$2"
  exit 0
fi

port="${1:-8545}"
[[ "$port" =~ ^[0-9]+$ ]] || die "usage: $0 [PORT] | $0 --deploy-only URL"
url="http://127.0.0.1:$port"
# Otherwise the readiness check below could succeed against whatever already
# listens there.
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
  die "port $port is already in use"
fi

"$bin/anvil" --host 127.0.0.1 --port "$port" --chain-id 31337 \
  --mnemonic "test test test test test test test test test test test junk" --silent &
anvil_pid=$!

for _ in $(seq 100); do
  kill -0 "$anvil_pid" 2>/dev/null || { anvil_pid=""; die "anvil exited during startup"; }
  cast chain-id --rpc-url "$url" >/dev/null 2>&1 && break
  sleep 0.1
done
[[ "$(cast chain-id --rpc-url "$url" 2>/dev/null)" == 31337 ]] || die "anvil did not answer on $url within 10s"

echo "anvil listening on $url (chain id 31337)"
deploy "$url"
echo "ready; Ctrl-C stops anvil"
wait "$anvil_pid"
