#!/bin/sh
# scripts/run-tests.sh: what 'make test' runs.
#
#   run-tests.sh TIMEOUT JOBS BINARY...      (TEST_WRAPPER from the environment)
#
# The test programs of a build run JOBS at a time: most of them are one
# thread, and under valgrind all of them are, so one after another they
# left the second CPU idle for most of 'make check'.  Each program's output
# goes to BINARY.log and is printed whole, in the order given, as soon as
# that program and those before it are done; a program killed after
# TIMEOUT seconds (a deadlock) counts as failed.  Every program runs even
# after a failure; the exit status is non-zero if any failed.
set -u
timeout=$1
jobs=$2
shift 2
[ "$jobs" -ge 1 ] 2>/dev/null || jobs=1

for t in "$@"; do
	rm -f "$t.status" "$t.log"
done

# The pool: each program writes its exit status last, by a rename, so that
# a status file is only ever seen whole.
# shellcheck disable=SC2016
printf '%s\n' "$@" | TEST_TIMEOUT=$timeout xargs -P "$jobs" -I{} sh -c '
	timeout -k 10 "$TEST_TIMEOUT" ${TEST_WRAPPER:-} "$1" >"$1.log" 2>&1
	echo $? >"$1.status.new" && mv "$1.status.new" "$1.status"' sh {} &
pool=$!

failed=0
for t in "$@"; do
	while [ ! -f "$t.status" ]; do
		if ! kill -0 "$pool" 2>/dev/null && [ ! -f "$t.status" ]; then
			echo 255 >"$t.status"	# the pool died under it
			break
		fi
		sleep 0.05
	done
	st=$(cat "$t.status")
	echo "== $t"
	cat "$t.log"
	if [ "$st" -ne 0 ]; then
		[ "$st" -ne 124 ] || echo "TIMEOUT: $t ran $timeout s"
		echo "FAILED: $t (exit status $st)"
		failed=$((failed + 1))
	fi
done
wait "$pool"
echo "== $# test programs, $failed failed, $jobs at a time"
[ "$failed" -eq 0 ]
