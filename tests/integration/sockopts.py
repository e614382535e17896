"""sockopts.py PID — the TCP options of another process's sockets, as that process set them.

Each TCP socket of PID is duplicated into this process with pidfd_getfd(2) (Linux 5.6; it
needs ptrace rights over PID: root, or the same user under Yama scope 0/1 for a child) and
read with getsockopt. One line per socket:

    LISTEN <local> nodelay=0|1
    CONN <local> <peer> nodelay=0|1

Exit 2 when pidfd_getfd is not available here (the caller skips its checks)."""
import ctypes
import os
import socket
import sys

SYS_PIDFD_OPEN = 434
SYS_PIDFD_GETFD = 438

libc = ctypes.CDLL(None, use_errno=True)


def addr(a):
    host, port = a[0], a[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def main():
    pid = int(sys.argv[1])
    pidfd = libc.syscall(SYS_PIDFD_OPEN, pid, 0)
    if pidfd < 0:
        print("pidfd_open:", os.strerror(ctypes.get_errno()), file=sys.stderr)
        sys.exit(2)
    for name in sorted(os.listdir(f"/proc/{pid}/fd"), key=int):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            continue
        if not target.startswith("socket:"):
            continue
        fd = libc.syscall(SYS_PIDFD_GETFD, pidfd, int(name), 0)
        if fd < 0:
            err = ctypes.get_errno()
            if err in (1, 38):   # EPERM, ENOSYS: not here
                print("pidfd_getfd:", os.strerror(err), file=sys.stderr)
                sys.exit(2)
            continue
        s = socket.socket(fileno=fd)
        try:
            if s.family not in (socket.AF_INET, socket.AF_INET6) or s.type != socket.SOCK_STREAM:
                continue
            nodelay = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                print(f"LISTEN {addr(s.getsockname())} nodelay={nodelay}")
            else:
                try:
                    peer = addr(s.getpeername())
                except OSError:
                    continue   # not connected (yet, or any more)
                print(f"CONN {addr(s.getsockname())} {peer} nodelay={nodelay}")
        finally:
            s.detach()
            os.close(fd)


if __name__ == "__main__":
    main()
