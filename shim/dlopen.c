// dlopen: clears RTLD_DEEPBIND, then runs libc's dlopen. Under CURLCACHE_DISABLE the flag is
// left alone (pure pass-through).
//
// A language runtime that loads its curl extension with RTLD_DEEPBIND makes the extension
// bind to its own libcurl first, so no call would reach the shim. Without the flag the
// normal global scope (where the preloaded shim comes first) applies again.
//
// libc's dlopen looks at its caller (its return address) to choose the RPATH/RUNPATH,
// $ORIGIN and namespace of the lookup. A wrapper that called it normally would make the
// shim the caller and break programs that dlopen a plugin by a name only their RUNPATH
// knows. So on x86-64 the wrapper is a tail jump written in assembly: libc sees the
// program's own return address. Elsewhere a plain C wrapper is used (with that limitation).
//
// Exported as dlopen@@GLIBC_2.34 (what programs built on glibc >= 2.34 and unversioned
// references bind) and dlopen@GLIBC_2.2.5 (older binaries, through libdl.so.2).
#define _GNU_SOURCE
#include "shim/real.h"

#include <dlfcn.h>
#include <stddef.h>

// The real dlopen once resolved, and the mask applied to the mode; read by the assembly
// without a lock (aligned words; the mask is stored before the target is published).
__attribute__((visibility("hidden"))) void* curlcache_shim_dlopen_target;
__attribute__((visibility("hidden"))) int curlcache_shim_dlopen_mask = -1;

// Slow path of the first call: resolves and remembers the real dlopen, or returns null.
__attribute__((visibility("hidden"), used)) void* curlcache_shim_dlopen_resolve(void) {
    void* fn = curlcache_shim_real_dlopen_function();
    const int mask = curlcache_shim_disabled() ? -1 : ~RTLD_DEEPBIND;
    __atomic_store_n(&curlcache_shim_dlopen_mask, mask, __ATOMIC_RELAXED);
    __atomic_store_n(&curlcache_shim_dlopen_target, fn, __ATOMIC_RELEASE);
    return fn;
}

#if defined(__x86_64__)

// rdi = file, esi = mode. The slow path keeps both across the call and the stack 16-byte
// aligned (8 on entry + 2 pushes + 8).
__asm__(R"(
    .text
    .globl curlcache_shim_dlopen
    .globl curlcache_shim_dlopen_old
    .type curlcache_shim_dlopen, @function
    .type curlcache_shim_dlopen_old, @function
    .symver curlcache_shim_dlopen, dlopen@@GLIBC_2.34
    .symver curlcache_shim_dlopen_old, dlopen@GLIBC_2.2.5
    .p2align 4
curlcache_shim_dlopen:
curlcache_shim_dlopen_old:
    .cfi_startproc
    movq curlcache_shim_dlopen_target(%rip), %rax
    testq %rax, %rax
    jz 1f
    andl curlcache_shim_dlopen_mask(%rip), %esi
    jmp *%rax
1:
    pushq %rdi
    .cfi_adjust_cfa_offset 8
    pushq %rsi
    .cfi_adjust_cfa_offset 8
    subq $8, %rsp
    .cfi_adjust_cfa_offset 8
    call curlcache_shim_dlopen_resolve
    addq $8, %rsp
    .cfi_adjust_cfa_offset -8
    popq %rsi
    .cfi_adjust_cfa_offset -8
    popq %rdi
    .cfi_adjust_cfa_offset -8
    testq %rax, %rax
    jz 2f
    andl curlcache_shim_dlopen_mask(%rip), %esi
    jmp *%rax
2:
    xorl %eax, %eax
    ret
    .cfi_endproc
    .size curlcache_shim_dlopen, .-curlcache_shim_dlopen
    .size curlcache_shim_dlopen_old, .-curlcache_shim_dlopen_old
)");

#else

__attribute__((visibility("default"), used, symver("dlopen@@GLIBC_2.34"))) void*
curlcache_shim_dlopen(const char* file, int mode) {
    const int mask = curlcache_shim_disabled() ? -1 : ~RTLD_DEEPBIND;
    return curlcache_shim_real_dlopen(file, mode & mask);
}

#endif
