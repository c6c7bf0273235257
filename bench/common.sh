# Sourced by bench/run-*.sh: what both scripts need, once.
#
#   JOBS   parallel make jobs
#   RES    where tables and raw data go (created)
#   mk NAME ARGS...   make in build/bench-NAME with its own KCONFIG_CONFIG

JOBS=$(nproc 2>/dev/null || echo 2)
RES=build/bench-results
mkdir -p "$RES"

mk() {
	o=build/bench-$1
	shift
	make -s O="$o" KCONFIG_CONFIG="$o/.config" "$@"
}
