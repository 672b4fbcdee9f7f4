#!/usr/bin/env bash
# Runs every Go fuzz target (func FuzzXxx) in the given packages for a fixed time each.
# Usage: scripts/fuzz.sh FUZZTIME [packages...]   (packages default to ./...)
# `go test -fuzz` accepts one package and one target per run, so targets are found with
# `go test -list '^Fuzz'` and run one at a time. New crashers land in the package's
# testdata/fuzz/<Target>/ and become regression cases for plain `go test`.
set -euo pipefail

GO=${GO:-go}
fuzztime=${1:?usage: fuzz.sh FUZZTIME [packages...]}
shift
pkgs=("${@:-./...}")

if ! listing=$("$GO" test -run '^$' -list '^Fuzz' "${pkgs[@]}" 2>&1); then
	echo "$listing" >&2
	echo "fuzz: could not list fuzz targets (see above)" >&2
	exit 1
fi

# The listing prints a package's matching names, then "ok  <pkg>  <time>".
targets=()
names=()
while IFS= read -r line; do
	case "$line" in
	Fuzz*) names+=("$line") ;;
	ok*)
		pkg=$(awk '{ print $2 }' <<<"$line")
		for n in "${names[@]+"${names[@]}"}"; do targets+=("$pkg $n"); done
		names=()
		;;
	esac
done <<<"$listing"

if [ ${#targets[@]} -eq 0 ]; then
	echo "fuzz: no fuzz targets found in ${pkgs[*]}"
	exit 0
fi

failed=()
for t in "${targets[@]}"; do
	read -r pkg name <<<"$t"
	echo "fuzz: $name in $pkg for $fuzztime"
	if ! "$GO" test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg"; then
		failed+=("$pkg $name")
	fi
done

echo "fuzz: $(( ${#targets[@]} - ${#failed[@]} )) passed, ${#failed[@]} failed"
if [ ${#failed[@]} -gt 0 ]; then
	printf 'fuzz: FAILED %s\n' "${failed[@]}" >&2
	exit 1
fi
