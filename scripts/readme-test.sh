#!/usr/bin/env bash
# readme-test.sh — do what the README's quick start says, in order, so the README cannot drift
# from what works.
#
#   bash scripts/readme-test.sh            in this checkout (CI's is a fresh clone)
#   READMETEST_CLONE=1 bash scripts/...    first `git clone` this checkout's HEAD into a
#                                          temporary directory and work there (slower: the
#                                          console and the binary are built from scratch)
#
# The commands come from README.md itself: the ```sh blocks between the markers
# <!-- readme-test:begin --> and <!-- readme-test:end -->. A line that starts with `make run`
# is started in the background with PORTS and DEV_DATA_DIR added (so it collides with nothing);
# the script waits for the URL it prints last and wants 200 from it. Every other line runs in
# order, in one bash with `set -e`, from the repository's root, with the README's ports
# (7900-7912, 8080-8082) moved to the test cluster's and `curl` made to fail on HTTP errors.
#
# Knobs: READMETEST_PORTS (default: a free run from 27900), READMETEST_TIMEOUT (seconds for
# `make run` to print its URL, default 240). Prints each step's time; the total is the figure
# "from make run to the first 200".
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/v9-readme.XXXXXX")
dev_pid=""

cleanup() {
	local rc=$?
	if [ -n "$dev_pid" ] && kill -0 "$dev_pid" 2>/dev/null; then
		# make and v9 dev run in their own process group (setsid): stop both.
		kill -INT -- "-$dev_pid" 2>/dev/null || true
		for _ in $(seq 1 150); do kill -0 "$dev_pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL -- "-$dev_pid" 2>/dev/null || true
	fi
	if [ "$rc" -ne 0 ] && [ -f "$work/run.log" ]; then
		echo "readme-test: FAILED; last lines of make run:" >&2
		tail -n 40 "$work/run.log" >&2
	fi
	rm -rf "$work"
}
trap cleanup EXIT

now_ms() { local t=${EPOCHREALTIME/[.,]/}; echo $((t / 1000)); }
t0=$(now_ms)
say() { printf 'readme-test: [%6.1fs] %s\n' "$(( $(now_ms) - t0 ))e-3" "$*"; }

repo=$root
if [ "${READMETEST_CLONE:-}" = 1 ]; then
	say "git clone $root (HEAD)"
	git clone -q "$root" "$work/clone"
	repo=$work/clone
fi
cd "$repo"

# free_run P succeeds when P..P+2, P+10..P+12 and P+180..P+182 are all free on 127.0.0.1.
free_run() {
	local p
	for p in $1 $(($1 + 1)) $(($1 + 2)) $(($1 + 10)) $(($1 + 11)) $(($1 + 12)) $(($1 + 180)) $(($1 + 181)) $(($1 + 182)); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then return 1; fi
	done
}
ports=${READMETEST_PORTS:-}
if [ -z "$ports" ]; then
	for p in $(seq 27900 200 47900); do
		if free_run "$p"; then ports=$p; break; fi
	done
	[ -n "$ports" ] || { echo "readme-test: no free ports" >&2; exit 1; }
fi

# The README's ports, moved to the test cluster's.
port_sed=()
for k in 0 1 2; do
	port_sed+=(-e "s/127\.0\.0\.1:$((7900 + k))\b/127.0.0.1:$((ports + k))/g")
	port_sed+=(-e "s/127\.0\.0\.1:$((7910 + k))\b/127.0.0.1:$((ports + 10 + k))/g")
	port_sed+=(-e "s/127\.0\.0\.1:$((8080 + k))\b/127.0.0.1:$((ports + 180 + k))/g")
done

# The marked section's sh blocks, one command per line (comment-only and blank lines dropped).
commands=$(awk '
	/<!-- readme-test:begin -->/ { on = 1; next }
	/<!-- readme-test:end -->/ { on = 0 }
	on && /^```sh/ { block = 1; next }
	on && block && /^```/ { block = 0; next }
	on && block && !/^[[:space:]]*(#|$)/ { print }
' README.md)
[ -n "$commands" ] || { echo "readme-test: no commands between the readme-test markers of README.md" >&2; exit 1; }

script=$work/steps.sh
{
	echo 'set -euo pipefail'
	echo 'step() { printf "readme-test: $ %s\n" "$1"; }'
} >"$script"
ran_make=0
while IFS= read -r line; do
	case $line in
	"make run"*)
		ran_make=1
		say "$line  (PORTS=$ports DEV_DATA_DIR=$work/dev, in the background)"
		# The log exists before the job starts: the background shell opens it in its own time,
		# and the loop below reads it at once.
		: >"$work/run.log"
		# shellcheck disable=SC2086
		XDG_CONFIG_HOME="$work/config" setsid ${line} PORTS="$ports" DEV_DATA_DIR="$work/dev" >"$work/run.log" 2>&1 </dev/null &
		dev_pid=$!
		deadline=$(( $(now_ms) + ${READMETEST_TIMEOUT:-240} * 1000 ))
		url=""
		shown=0
		while [ -z "$url" ]; do
			# make run's own progress (not the nodes' log lines), timed as it appears.
			total=$(wc -l <"$work/run.log")
			if [ "$total" -gt "$shown" ]; then
				tail -n "+$((shown + 1))" "$work/run.log" | head -n "$((total - shown))" | grep -E '^(build: |v9 dev: |go: downloading |serving: )' |
					while IFS= read -r l; do say "  | $l"; done || true
				shown=$total
			fi
			if ! kill -0 "$dev_pid" 2>/dev/null; then
				echo "readme-test: make run exited before printing the example's URL" >&2
				exit 1
			fi
			[ "$(now_ms)" -lt "$deadline" ] || { echo "readme-test: make run printed no URL in time" >&2; exit 1; }
			last=$(grep -v '^time=' "$work/run.log" | tail -n 1 || true)
			if [[ $last =~ ^http://127\.0\.0\.1:[0-9]+/[a-z0-9-]+/$ ]]; then url=$last; fi
			sleep 0.2
		done
		code=$(curl -s -o /dev/null -w '%{http_code}' "$url")
		say "make run ended on $url: HTTP $code (time to the first 200)"
		[ "$code" = 200 ] || exit 1
		;;
	*)
		cmd=$(printf '%s\n' "$line" | sed "${port_sed[@]}" -e 's/^curl /curl -fsS /')
		printf 'step %q\n%s\n' "$cmd" "$cmd" >>"$script"
		;;
	esac
done <<<"$commands"
[ "$ran_make" = 1 ] || { echo "readme-test: the README's marked section has no make run" >&2; exit 1; }

# The commands run as a user's shell would: the CLI finds the token v9 dev kept (in a private
# config dir here), and V9_ADDR is whatever the README exports.
say "running the README's commands"
env -u V9_TOKEN -u V9_ADDR XDG_CONFIG_HOME="$work/config" bash "$script"
say "ok: every command of the README's quick start worked"
