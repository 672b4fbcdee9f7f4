#!/usr/bin/env bash
# Floods a real `v9 agent` with slow-body connections and reports the bystander's latency
# and the agent's memory (issue 14). Usage: scripts/hostile-flood.sh [CONNECTIONS]
# It builds bin/v9, starts one agent on free-ish local ports under a temporary data dir,
# deploys "sink" (concurrency 5000) and "bystander", runs TestFloodExternal, and stops the
# agent.
set -euo pipefail
flood=${1:-2000}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
go build -o bin/v9 ./cmd/v9
dir=$(mktemp -d)
api=127.0.0.1:17900 proxy=127.0.0.1:18080 raft=127.0.0.1:17910
bin/v9 agent --id h1 --data-dir "$dir/data" --bootstrap-expect 1 --insecure-no-tls \
	--api-addr $api --proxy-addr $proxy --raft-addr $raft --containerd-socket "" \
	>"$dir/agent.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
secret=
for _ in $(seq 100); do
	secret=$(bin/v9 --addr $api --json acl bootstrap 2>/dev/null | sed -n 's/.*"secret": *"\([^"]*\)".*/\1/p') && [ -n "$secret" ] && break
	sleep 0.2
done
export V9_TOKEN=$secret
for c in sink:5000 bystander:0; do
	name=${c%%:*} conc=${c##*:}
	mkdir -p "$dir/$name"
	go run ./internal/hostile/tinywasm "hello from $name" >"$dir/$name/m.wasm"
	{
		printf 'name = "%s"\nruntime = "wasm"\n[wasm]\nmodule = "m.wasm"\n' "$name"
		if [ "$conc" != 0 ]; then printf '[limits]\nconcurrency = %s\n' "$conc"; fi
	} >"$dir/$name/v9.toml"
	bin/v9 --addr $api deploy "$dir/$name" >/dev/null
done
for _ in $(seq 100); do
	if curl -sf -H 'Host: bystander.localhost' http://$proxy/ >/dev/null && curl -sf -H 'Host: sink.localhost' http://$proxy/ >/dev/null; then break; fi
	sleep 0.2
done
go test -count=1 -v -run '^TestFloodExternal$' ./internal/hostile/ \
	-hostile.proxy $proxy -hostile.pid $pid -hostile.flood "$flood"
