//! The scenarios, one module per concern, against the real `chatroom`
//! binary over real sockets; one crate, so the harness is compiled once.

mod attacks;
mod check;
mod classroom;
mod client;
mod fairness;
mod harness;
mod loadtest;
mod server;
mod teacher;
mod teacher_tools;
mod terminal;
mod typing;
