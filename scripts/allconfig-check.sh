#!/bin/sh
# allconfig-check.sh CONFIG FRAGMENT [FALLBACK]: warn of every option that
# the KCONFIG_ALLCONFIG fragment (FRAGMENT, or FALLBACK if there is none)
# pins and CONFIG does not have as pinned.  kconfig-conf drops such a
# value without a word -- out of its range, a choice entry not taken, or
# its dependencies off -- as Linux's merge_config.sh warns of.  Warnings
# only: a randconfig may well turn off what a pinned option depends on.
set -u
config=$1
frag=$2
[ -f "$frag" ] || frag=${3-}
[ -n "$frag" ] && [ -f "$frag" ] || exit 0
sed -n -e 's/^\(CONFIG_[A-Za-z0-9_]*\)=\(.*\)$/\1 \2/p' \
       -e 's/^# \(CONFIG_[A-Za-z0-9_]*\) is not set$/\1 n/p' "$frag" |
while read -r opt val; do
	if [ "$val" = n ]; then
		grep -q "^$opt=" "$config" || continue
	else
		grep -qxF "$opt=$val" "$config" && continue
	fi
	have=$(sed -n "s/^$opt=//p" "$config")
	echo "warning: $frag sets $opt=$val, the configuration has ${have:-it off or absent}" >&2
done
exit 0
