// SPDX-License-Identifier: MIT
/*
 * Cortex-M startup for the MPS2 boards (AN385 M3, AN386 M4, AN500 M7) as
 * QEMU models them.
 *
 * The vector table sits at address 0, where the core reads the initial
 * stack pointer and the reset vector.  Reset copies .data from its load
 * address, zeroes .bss, runs the constructors, calls main() and hands its
 * return value to exit(), which flushes stdio and ends in _exit(): the
 * semihosting exit, so QEMU's exit status is the firmware's.
 *
 * A fault prints the faulting PC through semihosting and exits with status
 * 128 + the exception number, so a crash never looks like a pass or a hang.
 */
#include <stdint.h>
#include <stdlib.h>
#include "semihost.h"

extern uint32_t __data_load[], __data_start[], __data_end[];
extern uint32_t __bss_start[], __bss_end[];
extern uint32_t __stack_top[];
extern void (*__preinit_array_start[])(void), (*__preinit_array_end[])(void);
extern void (*__init_array_start[])(void), (*__init_array_end[])(void);

int main(void);
void Reset_Handler(void) __attribute__((noreturn));
void Fault_Handler(void) __attribute__((naked));
void fault_report(const uint32_t *frame, uint32_t exc_return) __attribute__((noreturn, used));

void Reset_Handler(void)
{
	uint32_t *src = __data_load, *dst = __data_start;

	while (dst < __data_end)
		*dst++ = *src++;
	for (dst = __bss_start; dst < __bss_end; )
		*dst++ = 0;

	for (void (**f)(void) = __preinit_array_start; f < __preinit_array_end; f++)
		(*f)();
	for (void (**f)(void) = __init_array_start; f < __init_array_end; f++)
		(*f)();

	exit(main());
}

static char *put(char *p, const char *s)
{
	while (*s)
		*p++ = *s++;
	return p;
}

static char *hex32(char *p, uint32_t v)
{
	for (int shift = 28; shift >= 0; shift -= 4)
		*p++ = "0123456789abcdef"[(v >> shift) & 15];
	return p;
}

void fault_report(const uint32_t *frame, uint32_t exc_return)
{
	uint32_t ipsr;
	char msg[80], *p = msg;

	__asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
	ipsr &= 0x1ff;
	p = put(p, "\n*** fault: exception ");
	*p++ = (char)('0' + ipsr / 10 % 10);
	*p++ = (char)('0' + ipsr % 10);
	p = hex32(put(p, ", pc "), frame[6]);		/* stacked PC */
	p = hex32(put(p, ", lr "), frame[5]);		/* stacked LR */
	p = hex32(put(p, ", exc_return "), exc_return);
	*p++ = '\n';
	semihost_write(msg, (size_t)(p - msg));
	semihost_exit(128 + (int)ipsr);
}

/*
 * Find the stack the exception frame went to and report from C.  ARMv6-M
 * instructions only (no IT blocks), so the same code serves the M0+.
 */
void Fault_Handler(void)
{
	__asm__ volatile(
		"movs r0, #4\n\t"
		"mov r1, lr\n\t"
		"tst r0, r1\n\t"
		"beq 1f\n\t"
		"mrs r0, psp\n\t"
		"b 2f\n"
		"1:\tmrs r0, msp\n"
		"2:\tldr r2, =fault_report\n\t"
		"bx r2\n\t"
		".ltorg\n\t");
}

void NMI_Handler(void) __attribute__((weak, alias("Fault_Handler")));
void SVC_Handler(void) __attribute__((weak, alias("Fault_Handler")));
void PendSV_Handler(void) __attribute__((weak, alias("Fault_Handler")));
void SysTick_Handler(void) __attribute__((weak, alias("Fault_Handler")));

/* 16 system exceptions; the board's interrupts are left out (all masked). */
__attribute__((section(".vectors"), used))
static void (*const vectors[16])(void) = {
	(void (*)(void))(uintptr_t)__stack_top,
	Reset_Handler,
	NMI_Handler,
	Fault_Handler,		/* HardFault */
	Fault_Handler,		/* MemManage */
	Fault_Handler,		/* BusFault */
	Fault_Handler,		/* UsageFault */
	0, 0, 0, 0,
	SVC_Handler,
	0,			/* DebugMon */
	0,
	PendSV_Handler,
	SysTick_Handler,
};
