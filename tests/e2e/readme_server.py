#!/usr/bin/env python3
"""A chat server written from the README's protocol section alone, as a
student would: it differs from chatroom only where the README allows (its
own reasons for refusing a name, its own /help text, no optional features
but history, with --history N). tests/e2e/check.rs grades it with the
checker, which must find every rule held.

Python 3, standard library only. One reader thread per client; the room is a
dict under a lock, and a line is never written under it: each client has a
writer thread and a bounded queue, and a client whose queue is full has
stopped reading and is cut off, so nobody else waits for them.

Each switch below makes it another server a student could write: one
other reading of the README, or one slip. The checker's tests grade each,
and must find the slip, named (or, for another reading the README allows,
nothing wrong):

  --history N     keeps the last N public lines for newcomers (optional)
  --queue N       a queue of N lines per client, not 1000 (allowed from 100:
                  the README asks for at least 100 lines or 64 KiB)
  --queue-kib N   a queue of N KiB per client instead (allowed from 64)
  --lookup-first  /msg NAME without text looks NAME up first (allowed)
  --echo          a line goes back to its sender too (a slip)
  --case-names    names compared as typed, not folded (a slip)
  --drop-long     an over-long line ends the connection (a slip)
  --chars         the 1024 limit counted in characters, not bytes (a slip)
  --own-greeting  a greeting in its own words (a slip: every rule fails)
  --blocking      no queues: a line is written to every client under the
                  room's lock, and each address is paced, 100 lines at
                  once then 20 a second (the slip the stall rule is for)

Usage: python3 tests/e2e/readme_server.py [SWITCH...] PORT   (0: a free port)
The first line on stdout is `listening on 127.0.0.1:PORT`.
"""

import collections
import queue
import re
import socket
import sys
import threading
import time

ARGS = sys.argv[1:]


def switch(name, default=None):
    """The value after --NAME on the command line (True if it has none)."""
    if "--" + name not in ARGS:
        return default
    at = ARGS.index("--" + name)
    return ARGS[at + 1] if name in ("history", "queue", "queue-kib") else True


MAX_LINE = 1024  # bytes, without the line's end
MAX_NAME = 24  # characters
MAX_GAP = 8  # spaces in a row, inside a line
QUEUE_LINES = int(switch("queue", 1000))  # lines waiting before a cut off
QUEUE_BYTES = int(switch("queue-kib", 0)) * 1024  # or bytes, if given
NAME_SECONDS = 30
HISTORY = int(switch("history", 0))
BURST, RATE = 100, 20  # with --blocking: lines at once, then a second
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
    """Controls, separators and invisible characters out, a tab a space,
    runs of spaces after the first word cut to 8, the end trimmed."""
    kept = []
    for c in text:
        if c == "\t":
            kept.append(" ")
        elif not (ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or c in "\u2028\u2029"
                  or within(c, INVISIBLE)):
            kept.append(c)
    text = "".join(kept).rstrip()
    body = text.lstrip(" ")
    indent = text[: len(text) - len(body)]
    return indent + re.sub(" {%d,}" % (MAX_GAP + 1), " " * MAX_GAP, body)


def fold(name):
    return name.upper().lower()


def key(name):
    """What two names must differ in to be two users: their folded forms."""
    return name if switch("case-names") else fold(name)


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
        # What waits for this client, in lines (or bytes, with --queue-kib),
        # bounded below by hand: a client it would overflow is not reading.
        self.queue = queue.Queue()
        self.waiting = 0
        self.lock = threading.Lock()
        self.writer = None
        if not switch("blocking"):
            self.writer = threading.Thread(target=self.write, daemon=True)
            self.writer.start()

    def write(self):
        """The only code that writes to this socket; None ends it."""
        try:
            while True:
                line = self.queue.get()
                if line is None:
                    break
                self.conn.sendall((line + "\n").encode("utf-8"))
                with self.lock:
                    self.waiting -= self.size(line)
        except OSError:
            pass
        try:
            self.conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    @staticmethod
    def size(line):
        return len(line.encode("utf-8")) + 1 if QUEUE_BYTES else 1

    def send(self, line):
        """Queues a line; False if the queue is full (not reading)."""
        if self.writer is None:  # --blocking: waits while the client is not reading
            try:
                self.conn.sendall((line + "\n").encode("utf-8"))
            except OSError:
                pass
            return True
        with self.lock:
            if self.waiting + self.size(line) > (QUEUE_BYTES or QUEUE_LINES):
                return False
            self.waiting += self.size(line)
        self.queue.put(line)
        return True

    def close(self):
        """Sends what is queued, then closes."""
        if self.writer is not None:
            self.queue.put(None)
            self.writer.join()
        self.conn.close()


room = {}  # key(name) -> Client
room_lock = threading.RLock()
history = collections.deque(maxlen=HISTORY)  # the last public lines
buckets = {}  # with --blocking: address -> (lines it may send at once, when)
buckets_lock = threading.Lock()


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
        if client.name is not None and room.get(key(client.name)) is client:
            del room[key(client.name)]
            broadcast("* %s left%s" % (client.name, why))


def online():
    names = sorted((c.name for c in room.values()), key=fold)
    return "online (%d): %s" % (len(names), ", ".join(names))


def pace(address):
    """With --blocking: wait until the address may send one more line."""
    with buckets_lock:
        now = time.monotonic()
        tokens, then = buckets.get(address, (BURST, now))
        tokens = min(BURST, tokens + (now - then) * RATE) - 1
        buckets[address] = (tokens, now)
    if tokens < 0:
        time.sleep(-tokens / RATE)


def lines_of(conn):
    """Each line, cleaned; None for one over MAX_LINE bytes (or characters,
    with --chars)."""
    stream = conn.makefile("rb")
    most = MAX_LINE * 4 if switch("chars") else MAX_LINE  # bytes read at most
    while True:
        raw = stream.readline(most + 2)
        if not raw:
            return
        too_long = not raw.endswith(b"\n") and len(raw) == most + 2
        while too_long and not raw.endswith(b"\n"):  # throw the rest away
            raw = stream.readline(most)
            if not raw:
                return
        raw = raw.rstrip(b"\n")
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        text = raw.decode("utf-8", errors="replace")
        if too_long or len(text if switch("chars") else raw) > MAX_LINE:
            yield None
        else:
            yield clean(text)


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
        with room_lock:
            target = room.get(key(to))
            if not to or not text and not (switch("lookup-first") and target is None):
                client.send("! usage: /msg NAME TEXT")
            elif target is None:
                client.send("! no user named " + to)
            else:
                target.send("%s (private): %s" % (client.name, text))
                client.send("to %s (private): %s" % (target.name, text))
    else:
        client.send("! unknown command /%s (type /help for the list)" % word)
    return True


def too_long(client):
    """Says so; False if the connection ends for it (--drop-long)."""
    client.send("! line too long (at most 1024 bytes); it was not sent")
    return not switch("drop-long")


def handle(conn):
    client = Client(conn)
    try:
        if switch("own-greeting"):
            client.send("* hello! what is your name?")
        else:
            client.send("* welcome to chatroom, please enter your name")
        conn.settimeout(NAME_SECONDS)
        lines = lines_of(conn)
        for line in lines:
            if line is None:
                if not too_long(client):
                    return
                continue
            name = line.strip()
            refusal = name_problem(name)
            with room_lock:
                if refusal is None and key(name) in room:
                    refusal = "! someone online goes by that name; try another"
                if refusal is None:
                    client.name = name
                    room[key(name)] = client
                    for said in history:
                        client.send("* [earlier] " + said)
                    client.send("* welcome %s; %s (type /help for commands)" % (name, online()))
                    broadcast("* %s joined" % name, client)
                    break
            client.send(refusal)
        if client.name is None:
            return
        conn.settimeout(None)
        for line in lines:
            if switch("blocking"):
                pace(conn.getpeername()[0])
            if line is None:
                if not too_long(client):
                    return
            elif line.startswith("/"):
                if not command(client, line):
                    return
            elif line:
                said = "%s: %s" % (client.name, line)
                with room_lock:
                    history.append(said)
                    broadcast(said, None if switch("echo") else client)
    except socket.timeout:
        client.send("! no name within %d s; closing the connection" % NAME_SECONDS)
    except OSError:
        pass
    finally:
        leave(client)
        client.close()


def main():
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", int(ARGS[-1])))
    server.listen(128)
    print("listening on %s:%d" % server.getsockname(), flush=True)
    while True:
        conn, _ = server.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
