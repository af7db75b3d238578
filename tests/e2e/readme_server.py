#!/usr/bin/env python3
"""A chat server written from the README's protocol section alone, as a
student would: it differs from chatroom only where the README allows (its
own reasons for refusing a name, its own /help text, no optional features).
tests/check.rs grades it with the checker, which must find every rule held.

Python 3, standard library only. One reader thread per client; the room is a
dict under a lock, and a line is never written under it: each client has a
writer thread and a bounded queue, and a client whose queue is full has
stopped reading and is cut off, so nobody else waits for them.

Usage: python3 tests/readme_server.py PORT   (0: a free port)
The first line on stdout is `listening on 127.0.0.1:PORT`.
"""

import queue
import socket
import sys
import threading

MAX_LINE = 1024  # bytes, without the line's end
MAX_NAME = 24  # characters
QUEUE_LINES = 1000  # lines waiting for a client before it is cut off
NAME_SECONDS = 30
KEPT = {"server", "chatroom", "console", "system", "admin"}
INVISIBLE = [  # Unicode 15.0's Default_Ignorable_Code_Point
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160),
    (0x17B4, 0x17B5), (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E),
    (0x2060, 0x206F), (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
]
ACCENTS = [(0x0300, 0x036F), (0x1AB0, 0x1AFF), (0x1DC0, 0x1DFF), (0x20D0, 0x20FF),
           (0xFE20, 0xFE2F)]
HELP = [
    "* you can type:",
    "*   anything else: everyone reads it",
    "*   /msg NAME TEXT: NAME alone reads TEXT",
    "*   /who: who is here",
    "*   /help: what you are reading",
    "*   /quit: goodbye",
]


def within(c, ranges):
    return any(low <= ord(c) <= high for low, high in ranges)


def clean(text):
    """Controls and invisible characters out, a tab a space, the end trimmed."""
    kept = []
    for c in text:
        if c == "\t":
            kept.append(" ")
        elif not (ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or within(c, INVISIBLE)):
            kept.append(c)
    return "".join(kept).rstrip()


def fold(name):
    return name.upper().lower()


def name_problem(name):
    """None for a good name, else the refusal (in this server's words)."""
    if not any(c.isalpha() for c in name):
        return "! without a letter it is no name; try again"
    if "".join(c for c in fold(name) if c.isalpha()) in KEPT:
        return "! the server goes by that name; try another"
    if len(name) > MAX_NAME:
        return "! too long, 24 characters at most; try again"
    previous = " "
    for c in name:
        accent = within(c, ACCENTS) and (previous.isalpha() or within(previous, ACCENTS))
        if not (c.isalnum() or c in "_-" or accent):
            return "! %r cannot be part of a name; try again" % c
        previous = c
    return None


class Client:
    def __init__(self, conn):
        self.conn = conn
        self.name = None
        self.queue = queue.Queue(QUEUE_LINES)
        threading.Thread(target=self.write, daemon=True).start()

    def write(self):
        """The only code that writes to this socket; None ends it."""
        try:
            while True:
                line = self.queue.get()
                if line is None:
                    break
                self.conn.sendall((line + "\n").encode("utf-8"))
        except OSError:
            pass
        try:
            self.conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def send(self, line):
        """Queues a line; False if the queue is full (not reading)."""
        try:
            self.queue.put_nowait(line)
            return True
        except queue.Full:
            return False


room = {}  # folded name -> Client
room_lock = threading.RLock()


def broadcast(line, but=None):
    with room_lock:
        slow = [c for c in list(room.values()) if c is not but and not c.send(line)]
        for client in slow:
            leave(client, " (too slow: stopped reading)")
            try:
                client.conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def leave(client, why=""):
    with room_lock:
        if client.name is not None and room.get(fold(client.name)) is client:
            del room[fold(client.name)]
            broadcast("* %s left%s" % (client.name, why))


def online():
    names = sorted((c.name for c in room.values()), key=fold)
    return "online (%d): %s" % (len(names), ", ".join(names))


def lines_of(conn):
    """Each line, cleaned; None for one over MAX_LINE bytes."""
    stream = conn.makefile("rb")
    while True:
        raw = stream.readline(MAX_LINE + 2)
        if not raw:
            return
        too_long = not raw.endswith(b"\n") and len(raw) == MAX_LINE + 2
        while too_long and not raw.endswith(b"\n"):  # throw the rest away
            raw = stream.readline(MAX_LINE)
            if not raw:
                return
        raw = raw.rstrip(b"\n")
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if too_long or len(raw) > MAX_LINE:
            yield None
        else:
            yield clean(raw.decode("utf-8", errors="replace"))


def command(client, line):
    word, _, rest = line[1:].partition(" ")
    rest = rest.strip()
    if word == "who":
        client.send("* " + online())
    elif word == "help":
        for text in HELP:
            client.send(text)
    elif word == "quit":
        client.send("* bye %s, see you soon" % client.name)
        leave(client)
        return False
    elif word == "msg":
        to, _, text = rest.partition(" ")
        text = text.strip()
        if not text:
            client.send("! usage: /msg NAME TEXT")
            return True
        with room_lock:
            target = room.get(fold(to))
            if target is None:
                client.send("! no user named " + to)
            else:
                target.send("%s (private): %s" % (client.name, text))
                client.send("to %s (private): %s" % (target.name, text))
    else:
        client.send("! unknown command /%s (type /help for the list)" % word)
    return True


def handle(conn):
    client = Client(conn)
    try:
        client.send("* welcome to chatroom, please enter your name")
        conn.settimeout(NAME_SECONDS)
        lines = lines_of(conn)
        for line in lines:
            if line is None:
                client.send("! line too long (at most 1024 bytes); it was not sent")
                continue
            name = line.strip()
            refusal = name_problem(name)
            with room_lock:
                if refusal is None and fold(name) in room:
                    refusal = "! someone online goes by that name; try another"
                if refusal is None:
                    client.name = name
                    room[fold(name)] = client
                    client.send("* welcome %s; %s (type /help for commands)" % (name, online()))
                    broadcast("* %s joined" % name, client)
                    break
            client.send(refusal)
        if client.name is None:
            return
        conn.settimeout(None)
        for line in lines:
            if line is None:
                client.send("! line too long (at most 1024 bytes); it was not sent")
            elif line.startswith("/"):
                if not command(client, line):
                    return
            elif line:
                broadcast("%s: %s" % (client.name, line), client)
    except socket.timeout:
        client.send("! no name within %d s; closing the connection" % NAME_SECONDS)
    except OSError:
        pass
    finally:
        leave(client)
        if not client.send(None):  # the writer sends what is queued, then closes
            conn.close()  # it was cut off: its writer has ended already


def main():
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", int(sys.argv[1])))
    server.listen(128)
    print("listening on %s:%d" % server.getsockname(), flush=True)
    while True:
        conn, _ = server.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
