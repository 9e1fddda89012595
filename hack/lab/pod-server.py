"""A lab pod's workload: serves TCP and UDP on ports 80 and 81 and answers every connection or datagram
with the pod's namespace/name (like the pods of Kubernetes' network policy e2e tests). One process, one
thread, four sockets (dual-stack where the pod has IPv6). Touches READY_FILE once every socket is bound.

usage: pod-server.py NAMESPACE/NAME READY_FILE
"""
import selectors
import socket
import sys

who = sys.argv[1].encode() + b"\n"
ready_file = sys.argv[2]
sel = selectors.DefaultSelector()


def bind(kind, port):
    try:
        s = socket.socket(socket.AF_INET6, kind)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("::", port))
    except OSError:  # no IPv6 in this namespace
        s = socket.socket(socket.AF_INET, kind)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", port))
    if kind == socket.SOCK_STREAM:
        s.listen(64)
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ, kind)


for port in (80, 81):
    bind(socket.SOCK_STREAM, port)
    bind(socket.SOCK_DGRAM, port)
open(ready_file, "w").close()

while True:
    for key, _ in sel.select():
        s = key.fileobj
        try:
            if key.data == socket.SOCK_STREAM:
                c, _ = s.accept()
                c.settimeout(1)
                c.sendall(who)
                c.close()
            else:
                _, addr = s.recvfrom(2048)
                s.sendto(who, addr)
        except OSError:
            pass
