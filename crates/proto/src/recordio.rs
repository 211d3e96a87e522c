//! RecordIO framing of the Mesos v1 HTTP APIs (`docs/recordio.md`).
//!
//! A stream is a sequence of records, each `<decimal length>\n<bytes>`, with
//! no delimiter after the bytes. The same refusal rules as [`crate::ecp`]
//! apply: a length over [`MAX_RECORD_LEN`] is refused before allocating, a
//! header longer than a `u64` can be is refused, and truncation anywhere
//! is an error distinct from a clean end of stream between records.

use std::io::{self, BufRead, Write};

/// The largest record we read or write: 64 MiB.
pub const MAX_RECORD_LEN: usize = 64 * 1024 * 1024;

/// Most digits a `u64` length can have.
const MAX_HEADER_DIGITS: usize = 20;

/// Errors reading or writing RecordIO records.
#[derive(Debug, thiserror::Error)]
pub enum RecordIoError {
    /// The stream ended inside a length header.
    #[error("truncated record header after {got:?}")]
    ShortHeader {
        /// The header bytes that were read, lossily decoded.
        got: String,
    },
    /// The header has something other than ASCII digits before the newline.
    #[error("invalid record header {header:?}: expected a decimal length and a newline")]
    BadHeader {
        /// The offending header, lossily decoded (at most 21 bytes).
        header: String,
    },
    /// The record is longer than [`MAX_RECORD_LEN`].
    #[error("record length {len} exceeds the 64 MiB limit")]
    TooLong {
        /// The announced (or, when writing, the actual) length.
        len: u64,
    },
    /// The record is longer than the reader's own limit
    /// ([`Decoder::new`]'s `max`).
    #[error("record length {len} exceeds the {max}-byte limit")]
    OverLimit {
        /// The announced length.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// The stream ended before the announced number of bytes.
    #[error("truncated record: got {got} of {expected} bytes")]
    ShortRecord {
        /// Bytes announced by the header.
        expected: usize,
        /// Bytes actually read.
        got: usize,
    },
    /// Reading or writing the underlying stream failed.
    #[error("i/o error while {action}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The underlying error.
        source: io::Error,
    },
}

/// Writes one record: the decimal length, a newline and `data`.
pub fn write_record(w: &mut impl Write, data: &[u8]) -> Result<(), RecordIoError> {
    if data.len() > MAX_RECORD_LEN {
        return Err(RecordIoError::TooLong {
            len: data.len() as u64,
        });
    }
    let io = |source| RecordIoError::Io {
        action: "writing a record",
        source,
    };
    writeln!(w, "{}", data.len()).map_err(io)?;
    w.write_all(data).map_err(io)
}

/// Encodes one record into a new buffer.
pub fn encode_record(data: &[u8]) -> Result<Vec<u8>, RecordIoError> {
    let mut out = Vec::with_capacity(data.len() + MAX_HEADER_DIGITS + 1);
    write_record(&mut out, data)?;
    Ok(out)
}

/// Reads the next record from `r`; `Ok(None)` at a clean end of stream (no
/// byte of a new record was read).
pub fn read_record(r: &mut impl BufRead) -> Result<Option<Vec<u8>>, RecordIoError> {
    let Some(len) = read_header(r)? else {
        return Ok(None);
    };
    let mut data = Vec::with_capacity(len.min(64 * 1024));
    io::Read::read_to_end(&mut io::Read::take(&mut *r, len as u64), &mut data).map_err(
        |source| RecordIoError::Io {
            action: "reading a record",
            source,
        },
    )?;
    if data.len() < len {
        return Err(RecordIoError::ShortRecord {
            expected: len,
            got: data.len(),
        });
    }
    Ok(Some(data))
}

/// An iterator over the records of a stream; it stops after the first error.
#[derive(Debug)]
pub struct Records<R> {
    reader: R,
    failed: bool,
}

impl<R: BufRead> Records<R> {
    /// Wraps a buffered reader.
    pub fn new(reader: R) -> Self {
        Self {
            reader,
            failed: false,
        }
    }
}

impl<R: BufRead> Iterator for Records<R> {
    type Item = Result<Vec<u8>, RecordIoError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match read_record(&mut self.reader) {
            Ok(Some(record)) => Some(Ok(record)),
            Ok(None) => None,
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// An incremental decoder for a stream that arrives in pieces of any size
/// (an HTTP request body): it holds at most one length header (21 bytes)
/// and one record, whose buffer grows with the bytes that arrived and never
/// beyond the record's length, which is checked against `max` before
/// anything is kept. The same header rules as [`read_record`].
#[derive(Debug)]
pub struct Decoder {
    max: usize,
    header: Vec<u8>,
    /// The record being read: its length and the bytes so far.
    record: Option<(usize, Vec<u8>)>,
    failed: bool,
}

impl Decoder {
    /// A decoder of records of at most `max` bytes (and at most
    /// [`MAX_RECORD_LEN`]).
    pub fn new(max: usize) -> Self {
        Self {
            max: max.min(MAX_RECORD_LEN),
            header: Vec::with_capacity(MAX_HEADER_DIGITS + 1),
            record: None,
            failed: false,
        }
    }

    /// Decodes `bytes`, appending each completed record to `out`. After an
    /// error the decoder refuses everything (the stream is unusable).
    pub fn feed(&mut self, mut bytes: &[u8], out: &mut Vec<Vec<u8>>) -> Result<(), RecordIoError> {
        if self.failed {
            return Err(RecordIoError::BadHeader {
                header: "(after an earlier error)".to_owned(),
            });
        }
        let result = self.feed_inner(&mut bytes, out);
        if result.is_err() {
            self.failed = true;
            self.record = None;
        }
        result
    }

    fn feed_inner(
        &mut self,
        bytes: &mut &[u8],
        out: &mut Vec<Vec<u8>>,
    ) -> Result<(), RecordIoError> {
        while !bytes.is_empty() {
            match &mut self.record {
                Some((len, data)) => {
                    let take = (*len - data.len()).min(bytes.len());
                    data.extend_from_slice(&bytes[..take]);
                    *bytes = &bytes[take..];
                    if data.len() == *len {
                        let (_, data) = self.record.take().unwrap_or_default();
                        out.push(data);
                    }
                }
                None => {
                    let byte = bytes[0];
                    *bytes = &bytes[1..];
                    if byte != b'\n' {
                        self.header.push(byte);
                        if !byte.is_ascii_digit() || self.header.len() > MAX_HEADER_DIGITS {
                            return Err(self.bad_header());
                        }
                        continue;
                    }
                    let text = std::str::from_utf8(&self.header).map_err(|_| self.bad_header())?;
                    let len: u64 = text.parse().map_err(|_| self.bad_header())?;
                    self.header.clear();
                    let len = match usize::try_from(len) {
                        Ok(n) if n <= self.max => n,
                        _ => {
                            return Err(RecordIoError::OverLimit { len, max: self.max });
                        }
                    };
                    if len == 0 {
                        out.push(Vec::new());
                    } else {
                        self.record = Some((len, Vec::with_capacity(len.min(64 * 1024))));
                    }
                }
            }
        }
        Ok(())
    }

    fn bad_header(&self) -> RecordIoError {
        RecordIoError::BadHeader {
            header: String::from_utf8_lossy(&self.header).into_owned(),
        }
    }

    /// At the end of the stream: `Ok` between records, an error inside one.
    pub fn finish(&self) -> Result<(), RecordIoError> {
        match &self.record {
            Some((len, data)) => Err(RecordIoError::ShortRecord {
                expected: *len,
                got: data.len(),
            }),
            None if !self.header.is_empty() => Err(RecordIoError::ShortHeader {
                got: String::from_utf8_lossy(&self.header).into_owned(),
            }),
            None => Ok(()),
        }
    }
}

/// Reads `<digits>\n` one byte at a time (never more than 21 bytes).
fn read_header(r: &mut impl BufRead) -> Result<Option<usize>, RecordIoError> {
    let mut header = Vec::with_capacity(MAX_HEADER_DIGITS + 1);
    loop {
        let byte = match next_byte(r)? {
            Some(byte) => byte,
            None if header.is_empty() => return Ok(None),
            None => {
                return Err(RecordIoError::ShortHeader {
                    got: String::from_utf8_lossy(&header).into_owned(),
                });
            }
        };
        if byte == b'\n' {
            break;
        }
        header.push(byte);
        if !byte.is_ascii_digit() || header.len() > MAX_HEADER_DIGITS {
            return Err(RecordIoError::BadHeader {
                header: String::from_utf8_lossy(&header).into_owned(),
            });
        }
    }
    let bad = || RecordIoError::BadHeader {
        header: String::from_utf8_lossy(&header).into_owned(),
    };
    // Digits only, so the text is ASCII; an empty header or a value above
    // u64::MAX fails to parse.
    let text = std::str::from_utf8(&header).map_err(|_| bad())?;
    let len: u64 = text.parse().map_err(|_| bad())?;
    match usize::try_from(len) {
        Ok(len) if len <= MAX_RECORD_LEN => Ok(Some(len)),
        _ => Err(RecordIoError::TooLong { len }),
    }
}

fn next_byte(r: &mut impl BufRead) -> Result<Option<u8>, RecordIoError> {
    loop {
        match r.fill_buf() {
            Ok([]) => return Ok(None),
            Ok(buf) => {
                let byte = buf[0];
                r.consume(1);
                return Ok(Some(byte));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(RecordIoError::Io {
                    action: "reading a record header",
                    source,
                });
            }
        }
    }
}
