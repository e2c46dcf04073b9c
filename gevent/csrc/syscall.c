/*
 * gevent's interposed syscall(2) (cargo feature `monkey`, see gevent/src/monkey/futex.rs).
 *
 * std and parking_lot wait on futexes through glibc's variadic `syscall` symbol; this definition,
 * linked into the executable, takes its place for the whole process. Every system call other than
 * SYS_futex goes straight to the kernel (the `syscall` instruction on x86_64, the next definition
 * elsewhere). SYS_futex goes to `gevent_futex` only while `gevent_futex_on` is set (by
 * `monkey::patch_thread`); it decides whether to handle the call (waits of greenlets, wakes while
 * greenlets wait) or to let it through (returns 0).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <sys/syscall.h>
#if !defined(__x86_64__)
#include <dlfcn.h>
#endif

/* Set (relaxed) by Rust once patch_thread() was called. */
int gevent_futex_on = 0;

/* Returns 1 and stores the result in *out (errno set on failure) when it handled the call. */
extern int gevent_futex(long uaddr, long op, long val, long timeout, long uaddr2, long val3,
                        long *out);

static inline long raw_syscall6(long n, long a, long b, long c, long d, long e, long f)
{
#if defined(__x86_64__)
    long ret;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    if ((unsigned long)ret > -4096UL) {
        errno = (int)-ret;
        return -1;
    }
    return ret;
#else
    typedef long (*sys_fn)(long, ...);
    static sys_fn next;
    sys_fn fn = __atomic_load_n(&next, __ATOMIC_ACQUIRE);
    if (!fn) {
        fn = (sys_fn)dlsym(RTLD_NEXT, "syscall");
        __atomic_store_n(&next, fn, __ATOMIC_RELEASE);
    }
    return fn(n, a, b, c, d, e, f);
#endif
}

/* SYS_futex while the hook may be on: gevent decides, else the kernel. */
__attribute__((visibility("hidden"), used)) long gevent_syscall_futex(long n, long a, long b,
                                                                      long c, long d, long e,
                                                                      long f)
{
    if (__atomic_load_n(&gevent_futex_on, __ATOMIC_RELAXED)) {
        long out;
        if (gevent_futex(a, b, c, d, e, f, &out))
            return out;
    }
    return raw_syscall6(n, a, b, c, d, e, f);
}

#if defined(__x86_64__)
/* Sets errno from a failed system call's result (negated in %edi) and returns -1. */
__attribute__((visibility("hidden"), used)) long gevent_syscall_error(int e)
{
    errno = e;
    return -1;
}

/*
 * syscall(2) itself, in assembly: glibc's instruction for instruction (the arguments move one
 * register down, the seventh comes from the stack), plus one compare and branch for SYS_futex.
 * A variadic call passes its arguments as a plain one does, so the futex path is a tail jump to
 * a seven-argument C function.
 */
_Static_assert(SYS_futex == 202, "the futex system call number on x86_64");
__asm__(".pushsection .text\n"
        ".globl syscall\n"
        ".type syscall,@function\n"
        ".p2align 4\n"
        "syscall:\n"
        "    .cfi_startproc\n" /* unwind info: backtraces (the monitor's) pass through */
        "    cmp $202, %rdi\n" /* SYS_futex */
        "    je 2f\n"
        "    mov %rdi, %rax\n"
        "    mov %rsi, %rdi\n"
        "    mov %rdx, %rsi\n"
        "    mov %rcx, %rdx\n"
        "    mov %r8, %r10\n"
        "    mov %r9, %r8\n"
        "    mov 8(%rsp), %r9\n"
        "    syscall\n"
        "    cmp $-4095, %rax\n"
        "    jae 1f\n"
        "    ret\n"
        "1:  neg %eax\n"
        "    mov %eax, %edi\n"
        "    jmp gevent_syscall_error\n"
        "2:  jmp gevent_syscall_futex\n"
        "    .cfi_endproc\n"
        ".size syscall, .-syscall\n"
        ".popsection\n");
#else
long syscall(long n, ...)
{
    va_list ap;
    va_start(ap, n);
    long a = va_arg(ap, long);
    long b = va_arg(ap, long);
    long c = va_arg(ap, long);
    long d = va_arg(ap, long);
    long e = va_arg(ap, long);
    long f = va_arg(ap, long);
    va_end(ap);
    if (n == SYS_futex)
        return gevent_syscall_futex(n, a, b, c, d, e, f);
    return raw_syscall6(n, a, b, c, d, e, f);
}
#endif

/* Referenced from Rust so that the linker keeps this object (and so this `syscall`). */
void gevent_syscall_shim_link(void) {}
