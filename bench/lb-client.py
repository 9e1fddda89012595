"""The drain's client (bench/services-drain.ts): COUNT TCP requests to IP:PORT, one connection each,
one every INTERVAL_MS, each with a TIMEOUT_MS budget for connect + reading the whole answer (the lab
pod answers its namespace/name and closes). One line per request on stdout:
  I T_MS ok WHO DURATION_MS        or        I T_MS fail ERROR DURATION_MS
T_MS is the request's start on CLOCK_MONOTONIC in ms, the clock of Node's process.hrtime(), so the
bench places each request on its own timeline. Last line: "done". Run it where the client lives (the
spine's namespace).

usage: lb-client.py IP PORT COUNT INTERVAL_MS TIMEOUT_MS
"""
import socket
import sys
import time

ip, port, count, interval_ms, timeout_ms = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
fam = socket.AF_INET6 if ":" in ip else socket.AF_INET
now_ms = lambda: time.clock_gettime(time.CLOCK_MONOTONIC) * 1000.0
next_at = now_ms()
for i in range(count):
    t0 = now_ms()
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(timeout_ms / 1000.0)
    try:
        s.connect((ip, port))
        data = b""
        while True:
            c = s.recv(256)
            if not c:
                break
            data += c
        who = data.decode(errors="replace").strip()
        if who:
            print(f"{i} {t0:.3f} ok {who} {now_ms() - t0:.3f}", flush=True)
        else:
            print(f"{i} {t0:.3f} fail empty-answer {now_ms() - t0:.3f}", flush=True)
    except OSError as e:
        print(f"{i} {t0:.3f} fail {type(e).__name__}:{getattr(e, 'errno', '')} {now_ms() - t0:.3f}", flush=True)
    finally:
        s.close()
    next_at += interval_ms
    delay = next_at - now_ms()
    if delay > 0:
        time.sleep(delay / 1000.0)
print("done", flush=True)
