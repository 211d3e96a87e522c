//! The D-Bus wire format (the D-Bus Specification, "Message Protocol"):
//! just what the scope client needs. Marshalling of basic types, strings,
//! arrays, structs and variants; messages with their header fields; and a
//! reader for replies and signals whose bodies hold strings, object paths,
//! unsigned integers and variants of those.
//!
//! Every length read from the wire is checked against what was received
//! before anything is allocated from it.

use std::io::Read;

/// Message types.
pub const METHOD_CALL: u8 = 1;
pub const METHOD_RETURN: u8 = 2;
pub const ERROR: u8 = 3;
pub const SIGNAL: u8 = 4;

/// The largest message accepted from the bus. systemd's replies and
/// signals to us are a few hundred bytes; the specification allows 128 MiB,
/// which we do not hold in memory for a peer.
pub const MAX_MESSAGE: usize = 4 << 20;

/// Why bytes from the bus are not a message we understand.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("D-Bus message of {0} bytes is larger than the {MAX_MESSAGE} accepted")]
    TooLarge(usize),
    #[error("malformed D-Bus message: {0}")]
    Malformed(&'static str),
    #[error("reading from the bus: {0}")]
    Io(#[from] std::io::Error),
}

/// A body or header being marshalled (little-endian). Offsets are relative
/// to the start of the buffer, which the caller places at an 8-aligned
/// position of the message.
#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn pad(&mut self, align: usize) {
        while !self.buf.len().is_multiple_of(align) {
            self.buf.push(0);
        }
    }

    pub fn byte(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub fn u32(&mut self, v: u32) {
        self.pad(4);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub fn bool(&mut self, v: bool) {
        self.u32(u32::from(v));
    }

    /// A string or an object path (`s`, `o`).
    pub fn str(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }

    /// A signature (`g`).
    pub fn sig(&mut self, s: &str) {
        self.buf.push(s.len() as u8);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }

    /// An array whose elements have alignment `align`, written by `f`.
    pub fn array(&mut self, align: usize, f: impl FnOnce(&mut Self)) {
        self.pad(4);
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        self.pad(align);
        let start = self.buf.len();
        f(self);
        let len = (self.buf.len() - start) as u32;
        self.buf[at..at + 4].copy_from_slice(&len.to_le_bytes());
    }

    /// A struct (or dict entry): 8-aligned, fields written by `f`.
    pub fn structure(&mut self, f: impl FnOnce(&mut Self)) {
        self.pad(8);
        f(self);
    }

    /// A variant of signature `sig` whose value `f` writes.
    pub fn variant(&mut self, sig: &str, f: impl FnOnce(&mut Self)) {
        self.sig(sig);
        f(self);
    }
}

/// A method call to marshal.
pub struct Call<'a> {
    pub destination: &'a str,
    pub path: &'a str,
    pub interface: &'a str,
    pub member: &'a str,
    /// The body's signature, empty for none.
    pub signature: &'a str,
    pub body: Vec<u8>,
}

impl Call<'_> {
    /// The complete message with serial `serial`.
    pub fn encode(&self, serial: u32) -> Vec<u8> {
        let mut w = Writer::default();
        w.byte(b'l');
        w.byte(METHOD_CALL);
        w.byte(0);
        w.byte(1);
        w.u32(self.body.len() as u32);
        w.u32(serial);
        let field = |w: &mut Writer, code: u8, sig: &str, value: &str| {
            w.structure(|w| {
                w.byte(code);
                w.variant(sig, |w| {
                    if sig == "g" {
                        w.sig(value)
                    } else {
                        w.str(value)
                    }
                });
            });
        };
        w.array(8, |w| {
            field(w, 1, "o", self.path);
            field(w, 2, "s", self.interface);
            field(w, 3, "s", self.member);
            field(w, 6, "s", self.destination);
            if !self.signature.is_empty() {
                field(w, 8, "g", self.signature);
            }
        });
        w.pad(8);
        w.buf.extend_from_slice(&self.body);
        w.buf
    }
}

/// A value read from a header field or a body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Str(String),
    U32(u32),
    Other,
}

/// A message read from the bus.
#[derive(Debug, Default)]
pub struct Message {
    pub kind: u8,
    pub serial: u32,
    pub reply_serial: Option<u32>,
    pub path: Option<String>,
    pub interface: Option<String>,
    pub member: Option<String>,
    pub error_name: Option<String>,
    pub signature: String,
    pub body: Vec<u8>,
    big_endian: bool,
}

impl Message {
    /// Reads one message from `r`.
    pub fn read(r: &mut impl Read) -> Result<Self, WireError> {
        let mut fixed = [0u8; 16];
        r.read_exact(&mut fixed)?;
        let big_endian = match fixed[0] {
            b'l' => false,
            b'B' => true,
            _ => return Err(WireError::Malformed("unknown byte order")),
        };
        let u32_at = |i: usize| {
            let b = [fixed[i], fixed[i + 1], fixed[i + 2], fixed[i + 3]];
            if big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        let body_len = u32_at(4) as usize;
        let fields_len = u32_at(12) as usize;
        let header_len = (16 + fields_len).next_multiple_of(8);
        let total = header_len.saturating_add(body_len);
        if total > MAX_MESSAGE {
            return Err(WireError::TooLarge(total));
        }
        let mut rest = vec![0u8; total - 16];
        r.read_exact(&mut rest)?;
        let mut msg = Message {
            kind: fixed[1],
            serial: u32_at(8),
            big_endian,
            ..Default::default()
        };
        let mut all = fixed.to_vec();
        all.extend_from_slice(&rest);
        let mut rd = Reader::new(&all[..16 + fields_len], big_endian);
        rd.pos = 16;
        while rd.pos < all.len().min(16 + fields_len) {
            rd.align(8)?;
            if rd.pos >= 16 + fields_len {
                break;
            }
            let code = rd.byte()?;
            let value = rd.variant()?;
            match (code, value) {
                (1, Value::Str(s)) => msg.path = Some(s),
                (2, Value::Str(s)) => msg.interface = Some(s),
                (3, Value::Str(s)) => msg.member = Some(s),
                (4, Value::Str(s)) => msg.error_name = Some(s),
                (5, Value::U32(n)) => msg.reply_serial = Some(n),
                (8, Value::Str(s)) => msg.signature = s,
                _ => {}
            }
        }
        msg.body = all[header_len..].to_vec();
        Ok(msg)
    }

    /// The body's values, for bodies of basic types and variants of them
    /// (`s`, `o`, `u`, `v`; e.g. JobRemoved's `uoss`).
    pub fn values(&self) -> Result<Vec<Value>, WireError> {
        let mut rd = Reader::new(&self.body, self.big_endian);
        let mut out = Vec::new();
        for c in self.signature.bytes() {
            out.push(rd.value(c)?);
        }
        Ok(out)
    }

    /// The first string of the body (an error's message, a returned path).
    pub fn first_str(&self) -> Option<String> {
        match self.values().ok()?.into_iter().next()? {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    big_endian: bool,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], big_endian: bool) -> Self {
        Self {
            buf,
            pos: 0,
            big_endian,
        }
    }

    fn align(&mut self, n: usize) -> Result<(), WireError> {
        self.pos = self.pos.next_multiple_of(n);
        if self.pos > self.buf.len() {
            return Err(WireError::Malformed("truncated"));
        }
        Ok(())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(WireError::Malformed("truncated"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, WireError> {
        self.align(4)?;
        let b: [u8; 4] = self.take(4)?.try_into().expect("4 bytes");
        Ok(if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    fn text(&mut self, len: usize) -> Result<String, WireError> {
        let bytes = self.take(len)?;
        let s = std::str::from_utf8(bytes).map_err(|_| WireError::Malformed("string not UTF-8"))?;
        let s = s.to_owned();
        self.take(1)?;
        Ok(s)
    }

    fn value(&mut self, code: u8) -> Result<Value, WireError> {
        match code {
            b's' | b'o' => {
                let len = self.u32()? as usize;
                Ok(Value::Str(self.text(len)?))
            }
            b'g' => {
                let len = usize::from(self.byte()?);
                Ok(Value::Str(self.text(len)?))
            }
            b'u' | b'i' | b'b' => Ok(Value::U32(self.u32()?)),
            b'y' => {
                self.byte()?;
                Ok(Value::Other)
            }
            b'v' => self.variant(),
            _ => Err(WireError::Malformed("a type this client does not read")),
        }
    }

    fn variant(&mut self) -> Result<Value, WireError> {
        let len = usize::from(self.byte()?);
        let sig = self.text(len)?;
        match sig.as_bytes() {
            [c] => self.value(*c),
            _ => Err(WireError::Malformed("a variant this client does not read")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_round_trips_through_the_reader() {
        let mut body = Writer::default();
        body.str("phobos-a.scope");
        body.str("fail");
        let call = Call {
            destination: "org.freedesktop.systemd1",
            path: "/org/freedesktop/systemd1",
            interface: "org.freedesktop.systemd1.Manager",
            member: "StopUnit",
            signature: "ss",
            body: body.buf,
        };
        let bytes = call.encode(7);
        assert_eq!(
            (bytes.len() - call.body.len()) % 8,
            0,
            "the body starts 8-aligned"
        );
        let msg = Message::read(&mut &bytes[..]).unwrap();
        assert_eq!(msg.kind, METHOD_CALL);
        assert_eq!(msg.serial, 7);
        assert_eq!(msg.member.as_deref(), Some("StopUnit"));
        assert_eq!(msg.path.as_deref(), Some("/org/freedesktop/systemd1"));
        assert_eq!(msg.signature, "ss");
        assert_eq!(
            msg.values().unwrap(),
            [
                Value::Str("phobos-a.scope".into()),
                Value::Str("fail".into())
            ]
        );
    }

    #[test]
    fn arrays_record_their_length_without_the_leading_padding() {
        let mut w = Writer::default();
        w.byte(1);
        w.array(8, |w| w.structure(|w| w.u32(5)));
        // byte, 3 pad, u32 length, (already 8-aligned) struct with a u32.
        assert_eq!(w.buf.len(), 12);
        assert_eq!(&w.buf[4..8], &4u32.to_le_bytes());
        let mut w = Writer::default();
        w.array(8, |_| {});
        assert_eq!(w.buf, [0, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn hostile_lengths_are_refused_before_allocating() {
        let mut m = vec![b'l', SIGNAL, 0, 1];
        m.extend_from_slice(&u32::MAX.to_le_bytes());
        m.extend_from_slice(&1u32.to_le_bytes());
        m.extend_from_slice(&0u32.to_le_bytes());
        assert!(matches!(
            Message::read(&mut &m[..]),
            Err(WireError::TooLarge(_))
        ));
        // A string claiming more bytes than the body has.
        let msg = Message {
            signature: "s".into(),
            body: 1000u32.to_le_bytes().to_vec(),
            ..Default::default()
        };
        assert!(msg.values().is_err());
        // Garbage of every short length never panics.
        for n in 0..64 {
            let junk: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            let _ = Message::read(&mut &junk[..]);
        }
    }
}
