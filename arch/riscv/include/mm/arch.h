/* SPDX-License-Identifier: MIT */
/*
 * RISC-V bare metal: no lock of its own yet (machine-mode interrupt masking
 * would go here); none, or the application's hooks.
 */
#ifndef MM_ARCH_H
#define MM_ARCH_H

#include <mm/compiler.h>
#include <mm/arch-generic-lock.h>

#endif /* MM_ARCH_H */
