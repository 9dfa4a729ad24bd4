"""Test-only host conditions for the emulator's agent stand-in: runs a
command as the agent would, on a host that is worse off than this machine.

    hostenv.py [--hide PATH]... [--deny-perf] -- COMMAND [ARG]...

It is started under `unshare --mount` (and `--net` for a host with no
network path), so what it changes is seen by COMMAND and its children only,
never by this machine or the other "hosts":

--hide PATH    bind-mounts /dev/null over PATH: a file the host does not
               have, where the script looks for it by its path (a char
               device is not a regular file: `[[ -f ]]` misses it). Commands
               found through PATH are hidden by the agent's PATH instead
               (agent.without_path): bash's `command -v` still reports a
               file that is not executable.
--deny-perf    a seccomp filter that makes perf_event_open(2) fail with
               EACCES, as the kernel refuses it under perf_event_paranoid,
               lockdown or a container runtime's default seccomp profile
               (Docker's blocks perf_event_open). perf then prints its own
               "No permission" advice, exactly as on such a host.

Each condition is real: the script under test runs the real commands and
gets the real errors; nothing is stubbed.
"""

import ctypes
import os
import platform
import struct
import subprocess
import sys

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
EACCES = 13
BPF_LD_W_ABS = 0x20
BPF_JEQ_K = 0x15
BPF_RET_K = 0x06
# (AUDIT_ARCH_*, __NR_perf_event_open) from linux/audit.h and the syscall tables.
ARCHES = {
    "x86_64": (0xC000003E, 298),
    "aarch64": (0xC00000B7, 241),
}


def deny_perf_event_open() -> None:
    arch, nr = ARCHES[platform.machine()]
    program = [
        (BPF_LD_W_ABS, 0, 0, 4),  # seccomp_data.arch
        (BPF_JEQ_K, 0, 3, arch),  # another ABI: allow
        (BPF_LD_W_ABS, 0, 0, 0),  # seccomp_data.nr
        (BPF_JEQ_K, 0, 1, nr),
        (BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | EACCES),
        (BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),
    ]
    filters = b"".join(struct.pack("HBBI", *insn) for insn in program)
    buf = ctypes.create_string_buffer(filters, len(filters))

    class Fprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    prog = Fprog(len(program), ctypes.addressof(buf))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP)")


def main(argv: list[str]) -> None:
    hide, deny = [], False
    while argv and argv[0] != "--":
        opt = argv.pop(0)
        if opt == "--hide":
            hide.append(argv.pop(0))
        elif opt == "--deny-perf":
            deny = True
        else:
            sys.exit(f"hostenv.py: unknown option {opt}")
    command = argv[1:]
    for path in hide:
        subprocess.run(["mount", "--bind", "/dev/null", path], check=True)
    if deny:
        deny_perf_event_open()
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
