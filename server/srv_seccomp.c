/* srv_seccomp — see srv_seccomp.h. */
#include "srv_seccomp.h"

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#if defined(__x86_64__)
#define SRV_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SRV_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

#ifdef SRV_AUDIT_ARCH
#define DENY(nr) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), \
                 BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA))

int srv_seccomp_install(void)
{
    struct sock_filter f[] = {
        /* another architecture's calls (x32, i386 on x86-64) would bypass the numbers below */
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SRV_AUDIT_ARCH, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
#ifdef __x86_64__
        BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000 /* __X32_SYSCALL_BIT */, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
#endif
        DENY(__NR_socket), DENY(__NR_socketpair), DENY(__NR_connect), DENY(__NR_bind),
        DENY(__NR_listen), DENY(__NR_accept), DENY(__NR_accept4), DENY(__NR_ptrace),
        DENY(__NR_process_vm_readv), DENY(__NR_process_vm_writev), DENY(__NR_mount),
        DENY(__NR_umount2), DENY(__NR_unshare), DENY(__NR_setns), DENY(__NR_keyctl),
        DENY(__NR_add_key), DENY(__NR_request_key), DENY(__NR_bpf), DENY(__NR_perf_event_open),
        DENY(__NR_userfaultfd), DENY(__NR_kexec_load), DENY(__NR_init_module),
        DENY(__NR_finit_module), DENY(__NR_pivot_root), DENY(__NR_chroot),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {(unsigned short)(sizeof f / sizeof f[0]), f};
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) == 0 ? 0 : -1;
}
#else
int srv_seccomp_install(void) { return -1; }
#endif
