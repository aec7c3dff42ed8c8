/* srv_seccomp — the system-call filter of the daemon's child processes.
 *
 * A validation or job child reads files, computes, and writes files in its job directory. It
 * has no business with the network, other processes' memory, mounts, namespaces, the kernel
 * keyring or BPF: those calls fail with EPERM in it, so a reader exploited by a crafted file
 * cannot phone home, listen, or attack the daemon next to it. A deny-list (not an allow-list) is
 * deliberate: libhdf5, OpenBLAS and glibc use a wide, version-dependent set of ordinary calls,
 * and an allow-list that missed one would turn a library upgrade into failed jobs.
 */
#ifndef SRV_SECCOMP_H
#define SRV_SECCOMP_H

/* Install the filter on the calling thread (and what it execs); needs no_new_privs set first.
 * Async-signal-safe (one prctl): callable between fork and exec. Returns 0, or -1 where the
 * kernel or architecture has no seccomp filter support (the child then runs without it). */
int srv_seccomp_install(void);

#endif
