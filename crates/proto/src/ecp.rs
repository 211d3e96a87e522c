//! Framing of the Mesos external containerizer protocol (ECP).
//!
//! The agent runs `<containerizer_path> <subcommand>` and exchanges at most
//! one protobuf message in each direction over the child's stdin and stdout.
//! Each message is a 4-byte unsigned length in host byte order (little-endian
//! on x86, what stout's `protobuf::write` and Python's `struct.pack('I')`
//! produce) followed by exactly that many bytes of serialized protobuf. There
//! is no delimiter or terminator; this is *not* the HTTP RecordIO of
//! [`crate::recordio`].
//!
//! Reading is defensive: a length above [`MAX_MESSAGE_LEN`] is refused before
//! anything is allocated, the body is read incrementally, and like Mesos we
//! refuse a message whose proto2 `required` fields are missing (prost does
//! not check them, see [`crate::reflect`]).

use std::io::{self, Read, Write};

use prost::{Message, Name};
use prost_reflect::DynamicMessage;

use crate::reflect;

/// The largest message body we read or write: 64 MiB.
pub const MAX_MESSAGE_LEN: usize = 64 * 1024 * 1024;

/// Size of the length prefix.
const PREFIX_LEN: usize = 4;

/// Errors reading or writing one framed ECP message.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The input ended before any byte of the length prefix.
    #[error("no message: the input ended before the 4-byte length prefix")]
    MissingPrefix,
    /// The input ended inside the length prefix.
    #[error("truncated length prefix: got {got} of 4 bytes")]
    ShortPrefix {
        /// Bytes of the prefix that were read.
        got: usize,
    },
    /// The length prefix announces more than [`MAX_MESSAGE_LEN`] bytes.
    #[error("message length {len} exceeds the 64 MiB limit")]
    TooLong {
        /// The announced (or, when writing, the encoded) length.
        len: u64,
    },
    /// The input ended before the announced number of body bytes.
    #[error("truncated message body: got {got} of {expected} bytes")]
    ShortBody {
        /// Bytes announced by the prefix.
        expected: usize,
        /// Bytes actually read.
        got: usize,
    },
    /// The body is not a valid encoding of the expected message.
    #[error("cannot decode {len} bytes as {message}: {source}")]
    Decode {
        /// Full protobuf name of the expected message.
        message: String,
        /// Length of the body.
        len: usize,
        /// What prost found wrong.
        source: prost::DecodeError,
    },
    /// The body decoded, but a proto2 `required` field is absent.
    #[error("{message} is missing required field {field}")]
    MissingRequired {
        /// Full protobuf name of the message.
        message: String,
        /// Dotted path of the missing field, e.g. `container_id.value`.
        field: String,
    },
    /// The message type is not in our descriptor set (a build defect).
    #[error("message type {message} is not in the phobos descriptor set")]
    UnknownType {
        /// Full protobuf name of the message.
        message: String,
    },
    /// Reading or writing the underlying stream failed.
    #[error("i/o error while {action}: {source}")]
    Io {
        /// What was being done, e.g. "reading the message body".
        action: &'static str,
        /// The underlying error.
        source: io::Error,
    },
}

/// Reads one length-prefixed message of type `M` from `r`.
///
/// Reads exactly 4 + length bytes; anything after them is left unread.
pub fn read_message<M>(r: &mut impl Read) -> Result<M, FrameError>
where
    M: Message + Default + Name,
{
    let len = read_prefix(r)?;
    let body = read_body(r, len)?;
    decode_body(&body)
}

/// Writes `msg` to `w` as a 4-byte native-endian length and its encoding,
/// then flushes.
pub fn write_message<M: Message>(w: &mut impl Write, msg: &M) -> Result<(), FrameError> {
    let frame = encode_frame(msg)?;
    w.write_all(&frame).map_err(|source| FrameError::Io {
        action: "writing the message",
        source,
    })?;
    w.flush().map_err(|source| FrameError::Io {
        action: "flushing the message",
        source,
    })
}

/// Encodes `msg` as one complete frame (prefix and body).
pub fn encode_frame<M: Message>(msg: &M) -> Result<Vec<u8>, FrameError> {
    let len = msg.encoded_len();
    if len > MAX_MESSAGE_LEN {
        return Err(FrameError::TooLong { len: len as u64 });
    }
    let prefix = u32::try_from(len).map_err(|_| FrameError::TooLong { len: len as u64 })?;
    let mut frame = Vec::with_capacity(PREFIX_LEN + len);
    frame.extend_from_slice(&prefix.to_ne_bytes());
    msg.encode_raw(&mut frame);
    Ok(frame)
}

/// Decodes a message body (without prefix) and checks its required fields.
pub fn decode_body<M>(body: &[u8]) -> Result<M, FrameError>
where
    M: Message + Default + Name,
{
    let name = M::full_name();
    let msg = M::decode(body).map_err(|source| FrameError::Decode {
        message: name.clone(),
        len: body.len(),
        source,
    })?;
    check_required::<M>(body)?;
    Ok(msg)
}

/// Fails with [`FrameError::MissingRequired`] if the encoded message `body`
/// of type `M` lacks a required field at any depth.
pub fn check_required<M: Name>(body: &[u8]) -> Result<(), FrameError> {
    let name = M::full_name();
    let Some(desc) = reflect::descriptor(&name) else {
        return Err(FrameError::UnknownType { message: name });
    };
    let dynamic = DynamicMessage::decode(desc, body).map_err(|source| FrameError::Decode {
        message: name.clone(),
        len: body.len(),
        source,
    })?;
    match reflect::first_missing_required(&dynamic) {
        Some(field) => Err(FrameError::MissingRequired {
            message: name,
            field,
        }),
        None => Ok(()),
    }
}

fn read_prefix(r: &mut impl Read) -> Result<usize, FrameError> {
    let mut prefix = [0u8; PREFIX_LEN];
    let got = read_full(r, &mut prefix, "reading the length prefix")?;
    match got {
        0 => return Err(FrameError::MissingPrefix),
        PREFIX_LEN => {}
        got => return Err(FrameError::ShortPrefix { got }),
    }
    let len = u32::from_ne_bytes(prefix);
    match usize::try_from(len) {
        Ok(len) if len <= MAX_MESSAGE_LEN => Ok(len),
        _ => Err(FrameError::TooLong { len: len.into() }),
    }
}

/// Reads exactly `len` bytes (already checked against the limit), growing
/// the buffer only as data arrives.
fn read_body(r: &mut impl Read, len: usize) -> Result<Vec<u8>, FrameError> {
    let mut body = Vec::with_capacity(len.min(64 * 1024));
    r.take(len as u64)
        .read_to_end(&mut body)
        .map_err(|source| FrameError::Io {
            action: "reading the message body",
            source,
        })?;
    if body.len() < len {
        return Err(FrameError::ShortBody {
            expected: len,
            got: body.len(),
        });
    }
    Ok(body)
}

/// Fills `buf` unless the input ends first; returns how many bytes were read.
fn read_full(r: &mut impl Read, buf: &mut [u8], action: &'static str) -> Result<usize, FrameError> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => return Err(FrameError::Io { action, source }),
        }
    }
    Ok(got)
}
