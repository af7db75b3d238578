//! Connecting from a chosen loopback address, so that one machine can play
//! several: an attacker at 127.0.0.2, honest users at 127.0.0.10 and up;
//! and opening many connections at once, as a class starting together does.
//! Shared by the tests, the benchmark and the checker.
//!
//! std's `TcpStream::connect` lets the kernel choose the source address,
//! which on loopback is always 127.0.0.1; another one needs the socket bound
//! before it connects, which std does not offer. So this file declares the
//! three C library functions it needs (std links the C library anyway) and
//! hands the socket to std at once. Linux only: `sockaddr_in` is laid out
//! differently on the BSDs and macOS.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::FromRawFd;

/// `struct sockaddr_in` from `<netinet/in.h>` (Linux): port and address in
/// network byte order.
#[repr(C)]
struct SockaddrIn {
    family: u16,
    port: [u8; 2],
    addr: [u8; 4],
    zero: [u8; 8],
}

unsafe extern "C" {
    fn setsockopt(fd: i32, level: i32, name: i32, value: *const i32, len: u32) -> i32;
    fn socket(domain: i32, kind: i32, protocol: i32) -> i32;
    fn bind(fd: i32, addr: *const SockaddrIn, len: u32) -> i32;
    fn connect(fd: i32, addr: *const SockaddrIn, len: u32) -> i32;
}

const AF_INET: i32 = 2;
const SOCK_STREAM: i32 = 1;
const SOCK_CLOEXEC: i32 = 0o2_000_000;
const SOCK_NONBLOCK: i32 = 0o4_000;
/// `connect`'s errno on a nonblocking socket whose connection is under way.
const EINPROGRESS: i32 = 115;
const SOL_SOCKET: i32 = 1;
const SO_RCVBUF: i32 = 8;
const IPPROTO_TCP: i32 = 6;
const TCP_MAXSEG: i32 = 2;

/// Connects to `to` from `source` (any port), as a client on another
/// machine would. With `receive_buffer`, a client that will stop reading and
/// must fill up in kilobytes on both sides, not in the megabytes the kernel
/// would otherwise allow: the kernel holds at most about that many bytes of
/// what arrives unread (SO_RCVBUF, set before connecting so that TCP's
/// window agrees with it), and TCP segments are 536 bytes (TCP_MAXSEG): the
/// sender's kernel sizes its send buffer by the segment size, so on loopback
/// (64 KiB segments) it would otherwise hold megabytes for the client.
pub fn connect_with(
    source: Ipv4Addr,
    to: SocketAddr,
    receive_buffer: Option<i32>,
) -> io::Result<TcpStream> {
    let options: Vec<(i32, i32, i32)> = match receive_buffer {
        Some(bytes) => vec![(SOL_SOCKET, SO_RCVBUF, bytes), (IPPROTO_TCP, TCP_MAXSEG, 536)],
        None => Vec::new(),
    };
    open(Some(source), to, &options, false)
}

/// Connects from `source` (bound before connecting; `None` lets the kernel
/// choose, as std does), with each socket option (level, name, value) set
/// before connecting. With `nonblocking`, returns at once, the connection
/// perhaps still under way, so that one thread can open thousands at once
/// as many machines would: the socket is nonblocking, and reads give
/// `WouldBlock` until the server sends something, or the error if the
/// connection fails.
pub fn open(
    source: Option<Ipv4Addr>,
    to: SocketAddr,
    options: &[(i32, i32, i32)],
    nonblocking: bool,
) -> io::Result<TcpStream> {
    let SocketAddr::V4(to) = to else {
        return Err(io::Error::other("loopback::open speaks IPv4 only"));
    };
    let address = |ip: Ipv4Addr, port: u16| SockaddrIn {
        family: AF_INET as u16,
        port: port.to_be_bytes(),
        addr: ip.octets(),
        zero: [0; 8],
    };
    let to = address(*to.ip(), to.port());
    let len = std::mem::size_of::<SockaddrIn>() as u32;
    // SAFETY: plain C calls on a descriptor this function owns, with
    // pointers to live, correctly laid out values. `from_raw_fd` takes the
    // new descriptor at once, so it is closed on every return below.
    unsafe {
        let flags = if nonblocking { SOCK_NONBLOCK } else { 0 };
        let fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let stream = TcpStream::from_raw_fd(fd);
        for (level, name, value) in options {
            let size = std::mem::size_of::<i32>() as u32;
            if setsockopt(fd, *level, *name, value, size) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        if let Some(source) = source {
            if bind(fd, &address(source, 0), len) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        if connect(fd, &to, len) != 0 {
            let error = io::Error::last_os_error();
            if !(nonblocking && error.raw_os_error() == Some(EINPROGRESS)) {
                return Err(error);
            }
        }
        Ok(stream)
    }
}
