# Sourced by bench/run-*.sh: what the scripts need, once.
#
#   JOBS   parallel make jobs
#   RES    where tables and raw data go (created)
#   NORAND the command that runs a workload without address space
#          randomisation (setarch -R), empty with ASLR=1 or where it does
#          not work; see run-peers.sh for why
#   mk NAME ARGS...   make in build/bench-NAME with its own KCONFIG_CONFIG
#   MEDIAN_AWK  awk source of median(arr, n), the median of arr[1..n],
#          to put before a table's program: awk "$MEDIAN_AWK"'...'

JOBS=$(nproc 2>/dev/null || echo 2)
RES=build/bench-results
mkdir -p "$RES"

mk() {
	o=build/bench-$1
	shift
	make -s O="$o" KCONFIG_CONFIG="$o/.config" "$@"
}

NORAND=
if [ "${ASLR:-0}" = 0 ]; then
	if setarch -R true 2>/dev/null; then
		NORAND="setarch -R"
	elif setarch "$(uname -m)" -R true 2>/dev/null; then
		NORAND="setarch $(uname -m) -R"
	else
		echo "$(basename "$0"): setarch -R does not work here; ASLR stays on" >&2
	fi
fi

MEDIAN_AWK='
function median(arr, n,    i, j, t, b) {
	for (i = 1; i <= n; i++) b[i] = arr[i]
	for (i = 2; i <= n; i++) { t = b[i]; for (j = i - 1; j >= 1 && b[j] > t; j--) b[j + 1] = b[j]; b[j + 1] = t }
	return (n % 2) ? b[(n + 1) / 2] : (b[n / 2] + b[n / 2 + 1]) / 2
}
'
