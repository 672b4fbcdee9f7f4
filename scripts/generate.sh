#!/usr/bin/env bash
# Regenerates the code of buf.gen.yaml (Go in rpc/gen, TypeScript for the console in
# webui/src/gen) into a scratch directory, then brings each output directory in line with it:
# changed files are replaced, new ones added, and generated files whose .proto is gone are
# removed. Unchanged files are not touched, and a failed generation (a .proto that does not
# compile) leaves the outputs as they were.
# Usage: scripts/generate.sh   (BUF=path/to/buf; run from the repository root, bin/ on PATH,
# webui/node_modules installed by `npm ci` for protoc-gen-es)
set -euo pipefail

buf=${BUF:-bin/buf}
outs=(rpc/gen webui/src/gen)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$buf" generate -o "$tmp"

for out in "${outs[@]}"; do
	# Generated files that buf no longer produces.
	if [ -d "$out" ]; then
		find "$out" -type f \( -name '*.pb.go' -o -name '*.connect.go' -o -name '*_pb.ts' \) -print0 |
			while IFS= read -r -d '' f; do
				if [ ! -f "$tmp/$f" ]; then
					echo "generate: removed $f (no longer generated)"
					rm -f "$f"
				fi
			done
		find "$out" -mindepth 1 -type d -empty -delete
	fi

	# New and changed files.
	if [ -d "$tmp/$out" ]; then
		(cd "$tmp" && find "$out" -type f -print0) |
			while IFS= read -r -d '' f; do
				if ! cmp -s "$tmp/$f" "$f"; then
					mkdir -p "$(dirname "$f")"
					cp "$tmp/$f" "$f"
					echo "generate: wrote $f"
				fi
			done
	fi
done
