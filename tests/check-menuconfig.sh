#!/bin/sh
# 'make menuconfig' opens, saves a changed configuration, and the next
# 'make' builds with it.  Driven like a person would drive it: in a tmux
# terminal, with keystrokes (Library helpers -> turn Text reports off ->
# Esc Esc -> save).
set -u
cd "$(dirname "$0")/.."
O=build/check/menuconfig
M="make O=$O KCONFIG_CONFIG=$O/.config"
S=mm-menuconfig-$$
fail() { echo "FAIL $*"; tmux kill-session -t "$S" 2>/dev/null; echo "menuconfig: 0 passed, 1 failed"; exit 1; }

rm -rf "$O"
$M -s host_sbrk_defconfig >/dev/null && $M -s all >/dev/null || fail "configure and build"
grep -q '^#define CONFIG_MM_REPORTS 1' "$O/include/generated/autoconf.h" || fail "reports on at start"

tmux new-session -d -s "$S" -x 120 -y 40 "$M menuconfig; echo MENUCONFIG-EXITED; sleep 60"
screen() { tmux capture-pane -p -t "$S"; }
wait_for() {
	for _ in $(seq 50); do screen | grep -q "$1" && return 0; sleep 0.2; done
	return 1
}
wait_for 'Library helpers' || fail "menu did not open"
tmux send-keys -t "$S" Down Down Enter
wait_for '\[\*\] Text reports' || fail "submenu did not open"
tmux send-keys -t "$S" n
wait_for '\[ \] Text reports' || fail "option did not toggle"
# Esc Esc leaves the submenu; the second pair must reach mconf once it is
# back in the main menu: lxdialog's on_key_esc() reads the key after an
# Esc and throws away all other pending input, so two pairs that arrive
# before mconf reads the first (a loaded machine) cancel each other.
tmux send-keys -t "$S" Escape Escape
wait_for 'Library helpers  --->' || fail "submenu did not close"
tmux send-keys -t "$S" Escape Escape
wait_for 'save your new configuration' || fail "no save prompt"
tmux send-keys -t "$S" Enter
wait_for 'MENUCONFIG-EXITED' || fail "menuconfig did not exit"
tmux kill-session -t "$S"

grep -q '^# CONFIG_MM_REPORTS is not set' "$O/.config" || fail "saved .config lacks the change"
out=$($M all 2>&1) || fail "build after menuconfig"
grep -q 'CONFIG_MM_REPORTS' "$O/include/generated/autoconf.h" && fail "autoconf.h still has the option"
echo "$out" | grep -q ' CC ' || fail "nothing was rebuilt"
echo "PASS menuconfig saves a configuration the next make uses"
echo "menuconfig: 1 passed, 0 failed"
