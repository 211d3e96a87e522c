//! A connection to the D-Bus system bus over its Unix socket: the
//! `EXTERNAL` authentication (the kernel vouches for our uid through
//! `SO_PEERCRED`), `Hello`, method calls with their replies, and match
//! rules for signals (the D-Bus Specification, "Authentication Protocol"
//! and "Message Bus Specification").

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::wire::{self, Call, Message, WireError};

/// Where the system bus listens unless `DBUS_SYSTEM_BUS_ADDRESS` says
/// otherwise (the specification's default).
pub const SYSTEM_BUS_SOCKET: &str = "/run/dbus/system_bus_socket";

/// Errors talking to the bus; each names what was attempted.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("cannot connect to the D-Bus system bus at {path}: {source}")]
    Connect {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("unsupported DBUS_SYSTEM_BUS_ADDRESS '{0}' (only unix:path=… is supported)")]
    Address(String),
    #[error("the D-Bus system bus refused authentication: {0}")]
    Auth(String),
    #[error("D-Bus call {member}: {source}")]
    Wire { member: String, source: WireError },
    #[error("D-Bus call {member} failed: {name}: {message}")]
    Remote {
        member: String,
        name: String,
        message: String,
    },
    #[error("no answer from the bus to {what} within {secs} s")]
    Timeout { what: String, secs: u64 },
}

impl BusError {
    /// The D-Bus error name of a failed call (`org.freedesktop.systemd1.NoSuchUnit`).
    pub fn remote_name(&self) -> Option<&str> {
        match self {
            Self::Remote { name, .. } => Some(name),
            _ => None,
        }
    }
}

/// One authenticated connection to the system bus.
pub struct Bus {
    stream: BufReader<UnixStream>,
    serial: u32,
    timeout: Duration,
    /// Signals that arrived while waiting for a reply.
    pending: Vec<Message>,
}

impl Bus {
    /// Connects to the system bus, authenticates and says `Hello`; every
    /// later wait for the bus is bounded by `timeout`.
    pub fn system(timeout: Duration) -> Result<Self, BusError> {
        let path = system_bus_path()?;
        let stream = UnixStream::connect(&path).map_err(|source| BusError::Connect {
            path: path.clone(),
            source,
        })?;
        let connect = |source| BusError::Connect {
            path: path.clone(),
            source,
        };
        stream.set_read_timeout(Some(timeout)).map_err(connect)?;
        stream.set_write_timeout(Some(timeout)).map_err(connect)?;
        let mut bus = Self {
            stream: BufReader::new(stream),
            serial: 0,
            timeout,
            pending: Vec::new(),
        };
        bus.authenticate().map_err(connect)?;
        bus.call(&Call {
            destination: "org.freedesktop.DBus",
            path: "/org/freedesktop/DBus",
            interface: "org.freedesktop.DBus",
            member: "Hello",
            signature: "",
            body: Vec::new(),
        })?;
        Ok(bus)
    }

    fn authenticate(&mut self) -> std::io::Result<()> {
        // SAFETY: geteuid(2) cannot fail.
        let uid = unsafe { libc::geteuid() };
        let hex: String = uid
            .to_string()
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect();
        let out = self.stream.get_mut();
        out.write_all(b"\0")?;
        out.write_all(format!("AUTH EXTERNAL {hex}\r\n").as_bytes())?;
        let mut line = String::new();
        // A line from the server is short; a longer one is refused.
        (&mut self.stream).take(512).read_line(&mut line)?;
        if !line.starts_with("OK ") {
            return Err(std::io::Error::other(BusError::Auth(
                line.trim_end().to_owned(),
            )));
        }
        self.stream.get_mut().write_all(b"BEGIN\r\n")
    }

    /// Calls a method and returns its reply; an error reply is
    /// [`BusError::Remote`]. Signals received meanwhile are kept for
    /// [`Self::wait_signal`].
    pub fn call(&mut self, call: &Call<'_>) -> Result<Message, BusError> {
        self.serial += 1;
        let serial = self.serial;
        let wire_err = |source| BusError::Wire {
            member: call.member.to_owned(),
            source,
        };
        self.stream
            .get_mut()
            .write_all(&call.encode(serial))
            .map_err(|e| wire_err(WireError::Io(e)))?;
        let deadline = Instant::now() + self.timeout;
        loop {
            let msg = self.read(call.member, deadline)?;
            if msg.reply_serial != Some(serial) {
                if msg.kind == wire::SIGNAL {
                    self.pending.push(msg);
                }
                continue;
            }
            return match msg.kind {
                wire::METHOD_RETURN => Ok(msg),
                _ => Err(BusError::Remote {
                    member: call.member.to_owned(),
                    name: msg.error_name.clone().unwrap_or_default(),
                    message: msg.first_str().unwrap_or_default(),
                }),
            };
        }
    }

    /// Asks the bus to send us the signals `rule` matches.
    pub fn add_match(&mut self, rule: &str) -> Result<(), BusError> {
        let mut body = wire::Writer::default();
        body.str(rule);
        self.call(&Call {
            destination: "org.freedesktop.DBus",
            path: "/org/freedesktop/DBus",
            interface: "org.freedesktop.DBus",
            member: "AddMatch",
            signature: "s",
            body: body.buf,
        })
        .map(drop)
    }

    /// Waits for a signal `matches` accepts (including one already
    /// received), up to the connection's timeout.
    pub fn wait_signal(
        &mut self,
        what: &str,
        matches: impl Fn(&Message) -> bool,
    ) -> Result<Message, BusError> {
        if let Some(i) = self.pending.iter().position(&matches) {
            return Ok(self.pending.swap_remove(i));
        }
        let deadline = Instant::now() + self.timeout;
        loop {
            let msg = self.read(what, deadline)?;
            if msg.kind == wire::SIGNAL && matches(&msg) {
                return Ok(msg);
            }
        }
    }

    fn read(&mut self, what: &str, deadline: Instant) -> Result<Message, BusError> {
        if Instant::now() >= deadline {
            return Err(self.timed_out(what));
        }
        match Message::read(&mut self.stream) {
            Ok(m) => Ok(m),
            Err(WireError::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Err(self.timed_out(what))
            }
            Err(source) => Err(BusError::Wire {
                member: what.to_owned(),
                source,
            }),
        }
    }

    fn timed_out(&self, what: &str) -> BusError {
        BusError::Timeout {
            what: what.to_owned(),
            secs: self.timeout.as_secs(),
        }
    }
}

/// The system bus's socket: `DBUS_SYSTEM_BUS_ADDRESS` when it names a
/// `unix:path=`, else the default.
fn system_bus_path() -> Result<PathBuf, BusError> {
    match std::env::var("DBUS_SYSTEM_BUS_ADDRESS") {
        Ok(address) => parse_address(&address),
        Err(_) => Ok(PathBuf::from(SYSTEM_BUS_SOCKET)),
    }
}

fn parse_address(address: &str) -> Result<PathBuf, BusError> {
    // Several addresses may be listed (`;`): the first unix:path= one.
    for one in address.split(';') {
        if let Some(params) = one.strip_prefix("unix:") {
            for kv in params.split(',') {
                if let Some(path) = kv.strip_prefix("path=") {
                    return Ok(PathBuf::from(unescape_address(path)));
                }
            }
        }
    }
    Err(BusError::Address(address.to_owned()))
}

/// Address values escape bytes as `%xx`.
fn unescape_address(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_name_a_unix_path() {
        assert_eq!(
            parse_address("unix:path=/run/dbus/system_bus_socket").unwrap(),
            PathBuf::from("/run/dbus/system_bus_socket")
        );
        assert_eq!(
            parse_address("tcp:host=x;unix:guid=1,path=/tmp/a%20b").unwrap(),
            PathBuf::from("/tmp/a b")
        );
        assert!(parse_address("unix:abstract=/x").is_err());
        assert!(parse_address("%").is_err());
        assert_eq!(unescape_address("a%"), "a%");
        assert_eq!(unescape_address("a%4"), "a%4");
    }
}
