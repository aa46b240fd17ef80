"""Counting this process's TCP sockets, for the leak checks of the reliability suite."""

from __future__ import annotations

import os


def own_sockets_to(port: int, *, established_only: bool = False) -> int:
    """TCP sockets held by *this process* whose remote end is ``127.0.0.1:port``.

    ``/proc/self/net/tcp`` lists every socket of the network namespace; the process's own are
    those whose inode is one of its file descriptors.
    """
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    with open("/proc/self/net/tcp") as table:
        next(table)
        for line in table:
            fields = line.split()
            remote_port = int(fields[2].split(":")[1], 16)
            state, inode = fields[3], fields[9]
            if remote_port != port or inode not in inodes:
                continue
            if established_only and state != "01":
                continue
            count += 1
    return count
