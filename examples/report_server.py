#!/usr/bin/env python3
"""One common way to write the report's server: Python, sockets, a thread per
client, a list of sockets under a lock.

The report (sections 3.1 and 4.1) describes a server that listens on a TCP
socket and starts a separate thread for each client it accepts; it says no
more. This file fills in the rest the way such servers are usually written,
so that `chatroom` can be measured and graded beside it:

- one thread per client (the report's design);
- a shared list of the clients' sockets, guarded by one lock;
- a line from one client is sent to every other with sendall(), in the
  sender's own thread, while the lock is held.

It speaks chatroom's wire format, just enough for the benchmark
(examples/loadtest.rs) and the checker (examples/check/): the greeting, a
name (the first line), the welcome with who is online, `* NAME joined`,
`NAME: TEXT`, `* NAME left`. What it leaves out (name checks, commands,
limits, cleaning) the checker reports.

With --paced it adds flood control, as a student might next: each address
may send 100 lines at once, then 20 a second (the README's default), and a
faster sender's next line is read later. The broadcast is unchanged, so one
client that stops reading still freezes everyone: the checker's stall rule
fails it too.

Usage: python3 examples/report_server.py [--paced] [PORT]   (0: a free port)
The first line on stdout is `listening on 127.0.0.1:PORT`.
"""

import socket
import sys
import threading
import time

PACED = "--paced" in sys.argv[1:]
BURST, RATE = 100, 20  # lines at once, then lines a second, per address
buckets = {}  # address -> (lines it may still send at once, when counted)
buckets_lock = threading.Lock()


def pace(address):
    """With --paced: wait until the address may send one more line."""
    with buckets_lock:
        now = time.monotonic()
        tokens, then = buckets.get(address, (BURST, now))
        tokens = min(BURST, tokens + (now - then) * RATE) - 1
        buckets[address] = (tokens, now)
    if tokens < 0:
        time.sleep(-tokens / RATE)

clients = []  # (socket, name) of the clients who have chosen a name
# Re-entrant: a thread holding it may call broadcast(), which takes it again,
# so that joining (or leaving) and telling the others is one step: nobody
# can join in between and hear of someone already in their welcome.
clients_lock = threading.RLock()


def broadcast(text, sender):
    """Send a line to every client but the sender, holding the lock."""
    data = (text + "\n").encode("utf-8")
    with clients_lock:
        for client in list(clients):
            if client[0] is not sender:
                try:
                    client[0].sendall(data)  # waits while this client is not reading
                except OSError:
                    clients.remove(client)


def handle(conn):
    """The thread of one client: its name, then its lines."""
    name = None
    try:
        conn.sendall(b"* welcome to chatroom, please enter your name\n")
        lines = conn.makefile("r", encoding="utf-8", errors="replace", newline="\n")
        name = lines.readline().strip()
        if not name:
            return
        with clients_lock:
            clients.append((conn, name))
            names = sorted((n for _, n in clients), key=str.lower)
            online = f"online ({len(names)}): {', '.join(names)}"
            conn.sendall(f"* welcome {name}; {online} (type /help for commands)\n".encode())
            broadcast(f"* {name} joined", conn)
        for line in lines:
            if PACED:
                pace(conn.getpeername()[0])
            if line.strip():
                broadcast(f"{name}: {line.strip()}", conn)
    except OSError as error:
        print(f"error: {error}", file=sys.stderr)  # and keep serving (report section 5)
    finally:
        with clients_lock:
            if (conn, name) in clients:
                clients.remove((conn, name))
            if name:
                broadcast(f"* {name} left", None)
        conn.close()


def main():
    ports = [arg for arg in sys.argv[1:] if arg != "--paced"]
    port = int(ports[0]) if ports else 1918
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen()
    print("listening on %s:%d" % server.getsockname(), flush=True)
    while True:
        conn, _ = server.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
