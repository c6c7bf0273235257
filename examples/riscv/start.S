/* SPDX-License-Identifier: MIT */
/*
 * Bare-metal entry for QEMU's RISC-V virt machine (-bios none): hart 0 sets
 * up gp and the stack, zeroes .bss and calls main(); the others park.  The
 * image is RAM-only (QEMU loads every section where it runs), so there is
 * no .data to copy.
 */
#if __riscv_xlen == 64
#define REG_S sd
#define REG_SIZE 8
#else
#define REG_S sw
#define REG_SIZE 4
#endif

	.section .text.start, "ax"
	.globl _start
_start:
	.option push
	.option norelax
	la	gp, __global_pointer$
	.option pop
	.option push
	.option arch, +zicsr
	csrr	t0, mhartid
	.option pop
	bnez	t0, park
	la	sp, __stack_top
	la	t0, __bss_start
	la	t1, __bss_end
1:	bgeu	t0, t1, 2f
	REG_S	zero, 0(t0)
	addi	t0, t0, REG_SIZE
	j	1b
2:	call	main
	call	semihost_exit
park:	wfi
	j	park

/*
 * The RISC-V semihosting trap: ebreak between two marker instructions,
 * uncompressed and in one page (the function is 16-byte aligned and 16
 * bytes long).  a0 = operation, a1 = argument; the result comes back in a0.
 */
	.section .text.semihost, "ax"
	.balign 16
	.globl semihost_call
semihost_call:
	.option push
	.option norvc
	slli	zero, zero, 0x1f
	ebreak
	srai	zero, zero, 7
	.option pop
	ret
