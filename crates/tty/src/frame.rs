//! The switchboard's wire format on its Unix stream socket.
//!
//! Every frame is a 5-byte header, a type byte and a big-endian `u32`
//! payload length, then the payload, at most [`MAX_PAYLOAD`] bytes (a
//! longer length is an error before anything is allocated). A client
//! opens with `HELLO` (which streams it wants, and its window size); the
//! server answers `ACCEPTED` or `REFUSED` (a reason; then it closes). Then
//! `DATA` flows both ways (input to the terminal, its output back),
//! `RESIZE` and `EOF` from the input client; `ERR_DATA` carries a
//! command's stderr where it is not a terminal (pipes). The server closes the stream
//! when the terminal's output ends. (The agent maps these onto the v1 API's
//! `ProcessIO` records: DATA, CONTROL TTY_INFO, and a 409 for REFUSED.)

use phobos_core::WindowSize;

/// The largest payload of one frame.
pub const MAX_PAYLOAD: usize = 64 * 1024;
/// Type byte plus length.
pub const HEADER_LEN: usize = 5;

const HELLO: u8 = 1;
const ACCEPTED: u8 = 2;
const REFUSED: u8 = 3;
const DATA: u8 = 4;
const RESIZE: u8 = 5;
const EOF: u8 = 6;
const ERR_DATA: u8 = 7;

const WANTS_INPUT: u8 = 1;
const WANTS_OUTPUT: u8 = 2;

/// What a client asks for when it attaches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hello {
    /// It sends input (only one client at a time may).
    pub input: bool,
    /// It receives output.
    pub output: bool,
    /// Its window size, applied when it takes the input.
    pub size: Option<WindowSize>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    Hello(Hello),
    Accepted,
    Refused(String),
    Data(Vec<u8>),
    Resize(WindowSize),
    Eof,
    /// Output of the command's stderr (a switchboard over pipes; a
    /// terminal merges stderr into `Data`).
    ErrData(Vec<u8>),
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("a frame of {0} bytes is over the {MAX_PAYLOAD}-byte limit")]
    TooLong(usize),
    #[error("unknown frame type {0}")]
    UnknownType(u8),
    #[error("malformed {0} frame")]
    Malformed(&'static str),
}

impl Frame {
    /// Appends the frame's bytes to `out`. A `Data` frame longer than
    /// [`MAX_PAYLOAD`] must be split by the caller (see [`encode_data`]).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let (kind, payload): (u8, std::borrow::Cow<'_, [u8]>) = match self {
            Frame::Hello(h) => {
                let mut p =
                    vec![(u8::from(h.input) * WANTS_INPUT) | (u8::from(h.output) * WANTS_OUTPUT)];
                let s = h.size.unwrap_or(WindowSize {
                    rows: 0,
                    columns: 0,
                });
                p.extend_from_slice(&s.rows.to_be_bytes());
                p.extend_from_slice(&s.columns.to_be_bytes());
                (HELLO, p.into())
            }
            Frame::Accepted => (ACCEPTED, (&[][..]).into()),
            Frame::Refused(reason) => {
                let bytes = reason.as_bytes();
                (REFUSED, bytes[..bytes.len().min(MAX_PAYLOAD)].into())
            }
            Frame::Data(d) => (DATA, d.as_slice().into()),
            Frame::Resize(s) => {
                let mut p = s.rows.to_be_bytes().to_vec();
                p.extend_from_slice(&s.columns.to_be_bytes());
                (RESIZE, p.into())
            }
            Frame::Eof => (EOF, (&[][..]).into()),
            Frame::ErrData(d) => (ERR_DATA, d.as_slice().into()),
        };
        header(kind, payload.len(), out);
        out.extend_from_slice(&payload);
    }
}

fn header(kind: u8, len: usize, out: &mut Vec<u8>) {
    out.push(kind);
    out.extend_from_slice(&(len as u32).to_be_bytes());
}

/// Appends `bytes` as `Data` frames of at most [`MAX_PAYLOAD`] bytes each.
pub fn encode_data(bytes: &[u8], out: &mut Vec<u8>) {
    encode_output(false, bytes, out);
}

/// Appends `bytes` as `Data` (`stderr` false) or `ErrData` frames of at
/// most [`MAX_PAYLOAD`] bytes each.
pub fn encode_output(stderr: bool, bytes: &[u8], out: &mut Vec<u8>) {
    let kind = if stderr { ERR_DATA } else { DATA };
    for chunk in bytes.chunks(MAX_PAYLOAD) {
        header(kind, chunk.len(), out);
        out.extend_from_slice(chunk);
    }
}

fn size_at(p: &[u8]) -> WindowSize {
    WindowSize {
        rows: u16::from_be_bytes([p[0], p[1]]),
        columns: u16::from_be_bytes([p[2], p[3]]),
    }
}

/// Splits a byte stream into frames. It holds at most one frame plus what
/// one read added.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    start: usize,
}

impl Decoder {
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes fed and not yet decoded.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next whole frame, `None` until one is complete.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        let rest = &self.buf[self.start..];
        if rest.len() < HEADER_LEN {
            self.compact();
            return Ok(None);
        }
        let kind = rest[0];
        let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        if len > MAX_PAYLOAD {
            return Err(FrameError::TooLong(len));
        }
        if !(HELLO..=ERR_DATA).contains(&kind) {
            return Err(FrameError::UnknownType(kind));
        }
        if rest.len() < HEADER_LEN + len {
            self.compact();
            return Ok(None);
        }
        let p = &rest[HEADER_LEN..HEADER_LEN + len];
        let frame = match kind {
            HELLO => {
                if len != 5 || p[0] & !(WANTS_INPUT | WANTS_OUTPUT) != 0 {
                    return Err(FrameError::Malformed("HELLO"));
                }
                let size = size_at(&p[1..]);
                Frame::Hello(Hello {
                    input: p[0] & WANTS_INPUT != 0,
                    output: p[0] & WANTS_OUTPUT != 0,
                    size: (size.rows > 0 && size.columns > 0).then_some(size),
                })
            }
            ACCEPTED if len == 0 => Frame::Accepted,
            ACCEPTED => return Err(FrameError::Malformed("ACCEPTED")),
            REFUSED => Frame::Refused(String::from_utf8_lossy(p).into_owned()),
            DATA => Frame::Data(p.to_vec()),
            ERR_DATA => Frame::ErrData(p.to_vec()),
            RESIZE if len == 4 => Frame::Resize(size_at(p)),
            RESIZE => return Err(FrameError::Malformed("RESIZE")),
            EOF if len == 0 => Frame::Eof,
            _ => return Err(FrameError::Malformed("EOF")),
        };
        self.start += HEADER_LEN + len;
        Ok(Some(frame))
    }

    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(frames: &[Frame]) -> Vec<Frame> {
        let mut bytes = Vec::new();
        for f in frames {
            f.encode(&mut bytes);
        }
        // Fed one byte at a time: boundaries do not matter.
        let mut d = Decoder::default();
        let mut out = Vec::new();
        for b in bytes {
            d.feed(&[b]);
            while let Some(f) = d.next_frame().unwrap() {
                out.push(f);
            }
        }
        assert_eq!(d.pending(), 0);
        out
    }

    #[test]
    fn frames_round_trip_across_any_split() {
        let frames = vec![
            Frame::Hello(Hello {
                input: true,
                output: true,
                size: Some(WindowSize {
                    rows: 40,
                    columns: 120,
                }),
            }),
            Frame::Hello(Hello {
                input: false,
                output: true,
                size: None,
            }),
            Frame::Accepted,
            Frame::Refused("busy".into()),
            Frame::Data(b"hello\r\n".to_vec()),
            Frame::Data(Vec::new()),
            Frame::Resize(WindowSize {
                rows: 1,
                columns: 2,
            }),
            Frame::Eof,
            Frame::ErrData(b"oops\n".to_vec()),
        ];
        assert_eq!(round_trip(&frames), frames);
    }

    #[test]
    fn long_data_is_split_and_long_lengths_refused() {
        let big = vec![7u8; MAX_PAYLOAD * 2 + 3];
        let mut bytes = Vec::new();
        encode_data(&big, &mut bytes);
        let mut d = Decoder::default();
        d.feed(&bytes);
        let mut got = Vec::new();
        while let Some(Frame::Data(chunk)) = d.next_frame().unwrap() {
            assert!(chunk.len() <= MAX_PAYLOAD);
            got.extend(chunk);
        }
        assert_eq!(got, big);

        let mut d = Decoder::default();
        d.feed(&[DATA, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(d.next_frame(), Err(FrameError::TooLong(u32::MAX as usize)));
        let mut d = Decoder::default();
        d.feed(&[99, 0, 0, 0, 0]);
        assert_eq!(d.next_frame(), Err(FrameError::UnknownType(99)));
        let mut d = Decoder::default();
        d.feed(&[HELLO, 0, 0, 0, 1, 1]);
        assert_eq!(d.next_frame(), Err(FrameError::Malformed("HELLO")));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap deterministic fuzz: every byte pattern of a small
        // generator fed in odd chunks either decodes or errors.
        let mut x: u32 = 12345;
        for _ in 0..2000 {
            let mut d = Decoder::default();
            let mut bytes = Vec::new();
            for _ in 0..(x % 64) {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                bytes.push((x >> 16) as u8 % 8);
            }
            for chunk in bytes.chunks(3) {
                d.feed(chunk);
                while let Ok(Some(_)) = d.next_frame() {}
            }
            x = x.wrapping_add(7);
        }
    }
}
