#!/bin/sh
# install-deps.sh [config|test|fuzz|check|bench|all]
# install-deps.sh packages NAME...      (a test's own, e.g. tests/run-preload.sh's)
#
# Installs the Debian packages a make target needs and says what it does.
# Runs apt-get directly as root, through sudo otherwise.
set -e
what=${1:-all}

pkgs_config="kconfig-frontends"
pkgs_test="kconfig-frontends libcmocka-dev valgrind"
pkgs_fuzz="clang libclang-rt-dev"
pkgs_check="$pkgs_test $pkgs_fuzz gcc-arm-none-eabi libnewlib-arm-none-eabi gcc-riscv64-unknown-elf qemu-system-arm qemu-system-misc python3 git tmux pkg-config"
pkgs_bench="libjemalloc-dev libmimalloc-dev libgoogle-perftools-dev valgrind"

case $what in
config) want=$pkgs_config ;;
test)   want=$pkgs_test ;;
fuzz)   want="$pkgs_config $pkgs_fuzz" ;;
check)  want=$pkgs_check ;;
bench)  want=$pkgs_bench ;;
all)    want="$pkgs_check $pkgs_bench" ;;
packages) shift; want="$*" ;;
*) echo "usage: $0 config|test|fuzz|check|bench|all | packages NAME..." >&2; exit 2 ;;
esac

missing=
for p in $want; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" = 0 ]; then
	sudo=
elif command -v sudo >/dev/null 2>&1; then
	sudo=sudo
else
	# A Debian installed with a root password has no sudo: say what to run.
	echo "mm: missing Debian packages:$missing" >&2
	echo "mm: no sudo here; as root run: apt-get install --no-install-recommends$missing" >&2
	exit 1
fi
echo "mm: installing missing Debian packages:$missing" >&2
$sudo apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >&2
