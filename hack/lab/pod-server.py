"""A lab pod's workload: serves TCP and UDP on ports 80 and 81 and answers every connection or datagram
with the pod's namespace/name (like the pods of Kubernetes' network policy e2e tests), and on port 82
(TCP and UDP) with "namespace/name PEER", PEER being the source address it sees (IPv4 peers of the
dual-stack socket as plain a.b.c.d): who a Service, NAT or the fabric let through as the client. One
process, one thread, six sockets (dual-stack where the pod has IPv6). Touches READY_FILE once every
socket is bound. The lab's outside client (hack/lab/outside.ts) runs it too.

usage: pod-server.py NAMESPACE/NAME READY_FILE
"""
import selectors
import socket
import sys

name = sys.argv[1]
who = name.encode() + b"\n"
PEER_PORT = 82
ready_file = sys.argv[2]
sel = selectors.DefaultSelector()


def answer(port, addr):
    if port != PEER_PORT:
        return who
    peer = addr[0]
    if peer.startswith("::ffff:") and "." in peer:
        peer = peer[len("::ffff:"):]
    return ("%s %s\n" % (name, peer)).encode()


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
    sel.register(s, selectors.EVENT_READ, (kind, port))


for port in (80, 81, PEER_PORT):
    bind(socket.SOCK_STREAM, port)
    bind(socket.SOCK_DGRAM, port)
open(ready_file, "w").close()

while True:
    for key, _ in sel.select():
        s = key.fileobj
        try:
            kind, port = key.data
            if kind == socket.SOCK_STREAM:
                c, addr = s.accept()
                c.settimeout(1)
                c.sendall(answer(port, addr))
                c.close()
            else:
                _, addr = s.recvfrom(2048)
                s.sendto(answer(port, addr), addr)
        except OSError:
            pass
