//! phobos-tty: pseudo-terminals for containers and the I/O switchboard
//! (Mesos `mesos-io-switchboard`, reference §8 of the images/network notes).
//!
//! - [`pty`]: a terminal pair from a `ptmx` (`posix_openpt` semantics:
//!   `open(2)` of the multiplexer, `TIOCSPTLCK`, and the peer opened with
//!   `TIOCGPTPEER` rather than by path), window sizes (`TIOCGWINSZ` /
//!   `TIOCSWINSZ`), a descriptor passed over a Unix socket (`SCM_RIGHTS`),
//!   and a caller's terminal in raw mode (termios) restored on drop;
//! - [`frame`]: the switchboard's wire format on its Unix socket;
//! - [`server`]: the [`Switchboard`], the one holder of a terminal master
//!   (or of a DEBUG container's stdin/stdout/stderr pipes, [`Io::Pipes`]):
//!   it copies the command's output into the sandbox log and to every
//!   attached output client through bounded queues (a client that stops
//!   reading is disconnected, never waited for), and takes input from one
//!   client at a time (a second is refused: the agent's 409);
//! - [`client`]: a [`Client`] of a switchboard (the CLI's `run -it`,
//!   `exec -it`, `attach`, and the agent's ATTACH_CONTAINER_INPUT/OUTPUT);
//! - [`terminal`]: the bridge between a caller's terminal and a client:
//!   raw mode, SIGWINCH resizes (signalfd), the Ctrl-P Ctrl-Q detach keys.

pub mod client;
pub mod frame;
pub mod pty;
pub mod server;
pub mod terminal;

pub use client::{Attach, AttachError, Client};
pub use phobos_core::WindowSize;
pub use server::{Io, Options, Switchboard};

/// The switchboard socket's name in a container's runtime entry.
pub const SOCKET_NAME: &str = "io_switchboard.sock";
