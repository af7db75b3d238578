//! What the server asks of the kernel's sockets that std has no call for:
//! a longer queue of new connections, and a small send buffer for each
//! client while flood control is on. Two C calls, into the C library std
//! links anyway: the only `unsafe` code of the program. Where they do not
//! apply (Windows; the send buffer off Linux), the kernel's own sizes stay.
//!
//! Not here: what std can set (timeouts, `TCP_NODELAY`: `outbox.rs`).

use std::net::{TcpListener, TcpStream};
use std::time::Duration;

/// How many new connections the kernel may hold until the accept loop takes
/// them (the system's own limit, `somaxconn`, may lower it).
const BACKLOG: i32 = 4096;

/// What the kernel is asked to hold, at most, of what was written to one
/// client and not yet taken by it. Linux doubles it for its bookkeeping,
/// and may go over by the packet it is filling (64 KiB at most): 128 KiB at
/// most a client. A reader who keeps up never needs more.
const SEND_BUFFER_BYTES: i32 = 32 * 1024;

#[cfg(unix)]
unsafe extern "C" {
    fn listen(fd: i32, backlog: i32) -> i32;
    fn setsockopt(fd: i32, level: i32, option: i32, value: *const i32, len: u32) -> i32;
}

/// Lets the kernel hold [`BACKLOG`] new connections for the accept loop,
/// where std asks for 128 and has no call to ask for more. When a whole
/// class connects at once, those that do not fit are tried again by their
/// kernel only a second later. POSIX lets a listening socket be given a new
/// length by calling `listen` again.
pub fn widen_backlog(listener: &TcpListener) {
    // SAFETY: a plain C call on a descriptor the listener owns and keeps
    // open; if it fails, the queue keeps std's length.
    #[cfg(unix)]
    let _ = unsafe { listen(std::os::fd::AsRawFd::as_raw_fd(listener), BACKLOG) };
}

/// Decides how much the kernel may hold for a client: with a `max_wait`
/// for lines (flood control on), [`SEND_BUFFER_BYTES`], where it would let
/// the buffer grow to megabytes (on loopback, 4 MiB), so that a line for
/// one who stopped reading waits in the outbox, where the writer times it
/// (`outbox.rs`). Without one (flood control off), nothing paces the room,
/// and the kernel's own size gives a fast reader slack for a moment's
/// delay; only the outbox bound lets a user go then.
pub fn size_send_buffer(socket: &TcpStream, max_wait: Option<Duration>) {
    #[cfg(target_os = "linux")]
    if max_wait.is_some() {
        let fd = std::os::fd::AsRawFd::as_raw_fd(socket);
        // SAFETY: as above, with a pointer to a live `i32`, the option's
        // type; 1 and 7 are `SOL_SOCKET` and `SO_SNDBUF` in Linux's headers.
        let _ = unsafe { setsockopt(fd, 1, 7, &SEND_BUFFER_BYTES, 4) };
    }
}
