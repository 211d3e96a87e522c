//! A client of a switchboard: attach, send input and resizes, read output.
//!
//! Blocking by default; [`Client::read_available`] serves an owner that
//! polls the stream itself (the terminal bridge). [`Client::input`] gives a
//! second handle that only writes, for an owner that reads and writes from
//! different threads (the agent's two ATTACH calls).

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use phobos_core::WindowSize;

use crate::frame::{self, Decoder, Frame, Hello};

/// What a client attaches to.
pub type Attach = Hello;

#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error("failed to connect to the terminal's switchboard {path}: {source}")]
    Connect {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The switchboard said no: the input is taken (the agent's 409), or
    /// it has too many clients.
    #[error("{0}")]
    Refused(String),
    #[error("the switchboard broke the protocol: {0}")]
    Protocol(String),
    #[error("talking to the switchboard failed: {0}")]
    Io(#[from] io::Error),
}

impl AttachError {
    /// Whether another client holds the input (Mesos answers 409).
    pub fn is_input_busy(&self) -> bool {
        matches!(self, Self::Refused(r) if r == crate::server::INPUT_BUSY)
    }
}

/// An attached client.
#[derive(Debug)]
pub struct Client {
    stream: UnixStream,
    decoder: Decoder,
    /// Output decoded ahead of the caller: `Data` and `ErrData` frames.
    ahead: Vec<Frame>,
    ended: bool,
}

/// A write-only handle on a client's stream.
#[derive(Debug)]
pub struct Input {
    stream: UnixStream,
}

impl Client {
    /// Connects to the switchboard listening at `path` and attaches.
    pub fn connect(path: &Path, attach: Attach) -> Result<Self, AttachError> {
        let stream =
            via_dir(path, |p| UnixStream::connect(p)).map_err(|source| AttachError::Connect {
                path: path.to_owned(),
                source,
            })?;
        Self::over(stream, attach)
    }

    /// Attaches over a stream already connected to a switchboard.
    pub fn over(stream: UnixStream, attach: Attach) -> Result<Self, AttachError> {
        let mut bytes = Vec::new();
        Frame::Hello(attach).encode(&mut bytes);
        (&stream).write_all(&bytes)?;
        let mut client = Self {
            stream,
            decoder: Decoder::default(),
            ahead: Vec::new(),
            ended: false,
        };
        let mut buf = [0u8; 4096];
        loop {
            match client.decoder.next_frame() {
                Ok(Some(Frame::Accepted)) => break,
                Ok(Some(Frame::Refused(reason))) => return Err(AttachError::Refused(reason)),
                Ok(Some(other)) => {
                    return Err(AttachError::Protocol(format!(
                        "expected ACCEPTED, got {other:?}"
                    )));
                }
                Ok(None) => {}
                Err(e) => return Err(AttachError::Protocol(e.to_string())),
            }
            let n = (&client.stream).read(&mut buf)?;
            if n == 0 {
                return Err(AttachError::Protocol(
                    "the switchboard closed the connection before answering".into(),
                ));
            }
            client.decoder.feed(&buf[..n]);
        }
        // Output that came in the same read as the answer.
        client.decode_pending()?;
        Ok(client)
    }

    /// The attached stream, its decoder (bytes after the answer) and the
    /// output already decoded (`Data` and `ErrData` frames), for an owner
    /// with its own event loop (the agent's async streams).
    pub fn into_parts(self) -> (UnixStream, Decoder, Vec<Frame>) {
        (self.stream, self.decoder, self.ahead)
    }

    /// A handle that sends input on this client's stream.
    pub fn input(&self) -> io::Result<Input> {
        Ok(Input {
            stream: self.stream.try_clone()?,
        })
    }

    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        send(&self.stream, bytes)
    }

    pub fn resize(&mut self, size: WindowSize) -> io::Result<()> {
        send_frame(&self.stream, &Frame::Resize(size))
    }

    /// Ends the input (the terminal gets its EOF character).
    pub fn close_input(&mut self) -> io::Result<()> {
        send_frame(&self.stream, &Frame::Eof)
    }

    /// The next piece of output, blocking; `None` once the output ended.
    pub fn recv(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            if !self.ahead.is_empty() {
                return Ok(Some(bytes_of(self.ahead.remove(0))));
            }
            if self.ended {
                return Ok(None);
            }
            self.stream.set_nonblocking(false)?;
            self.read_once()?;
        }
    }

    /// Output already received (it can come in with the answer to the
    /// attach), for an owner that polls: write it before the first poll.
    pub fn take_pending(&mut self) -> Vec<Vec<u8>> {
        self.ahead.drain(..).map(bytes_of).collect()
    }

    /// For an owner that polls [`Client::as_fd`]: reads what the stream
    /// has and passes each piece of output to `sink`; false once the
    /// output ended.
    pub fn read_available(
        &mut self,
        mut sink: impl FnMut(&[u8]) -> io::Result<()>,
    ) -> io::Result<bool> {
        self.read_once()?;
        for chunk in self.ahead.drain(..).map(bytes_of) {
            sink(&chunk)?;
        }
        Ok(!self.ended)
    }

    fn read_once(&mut self) -> io::Result<()> {
        let mut buf = vec![0u8; frame::MAX_PAYLOAD + frame::HEADER_LEN];
        let n = loop {
            match (&self.stream).read(&mut buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break 0,
                Err(e) => return Err(e),
            }
        };
        if n == 0 {
            self.ended = true;
            return Ok(());
        }
        self.decoder.feed(&buf[..n]);
        self.decode_pending()
    }

    /// Moves every whole frame the decoder holds into `ahead`.
    fn decode_pending(&mut self) -> io::Result<()> {
        loop {
            match self.decoder.next_frame() {
                Ok(Some(f @ (Frame::Data(_) | Frame::ErrData(_)))) => self.ahead.push(f),
                Ok(Some(other)) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("unexpected frame from the switchboard: {other:?}"),
                    ));
                }
                Ok(None) => return Ok(()),
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            }
        }
    }
}

impl AsFd for Client {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }
}

impl Input {
    pub fn send(&self, bytes: &[u8]) -> io::Result<()> {
        send(&self.stream, bytes)
    }

    pub fn resize(&self, size: WindowSize) -> io::Result<()> {
        send_frame(&self.stream, &Frame::Resize(size))
    }

    pub fn close_input(&self) -> io::Result<()> {
        send_frame(&self.stream, &Frame::Eof)
    }
}

fn send(stream: &UnixStream, bytes: &[u8]) -> io::Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    let mut out = Vec::with_capacity(bytes.len() + frame::HEADER_LEN);
    frame::encode_data(bytes, &mut out);
    write_blocking(stream, &out)
}

fn send_frame(stream: &UnixStream, f: &Frame) -> io::Result<()> {
    let mut out = Vec::new();
    f.encode(&mut out);
    write_blocking(stream, &out)
}

/// Writes all of `bytes` even when the stream is non-blocking (waits for
/// room with poll).
fn write_blocking(stream: &UnixStream, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match (&*stream).write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let mut fds = [nix::poll::PollFd::new(
                    stream.as_fd(),
                    nix::poll::PollFlags::POLLOUT,
                )];
                let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::NONE);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Longest socket path used as is (`sun_path` holds 108 bytes with NUL).
const SUN_PATH_MAX: usize = 100;

/// Calls `f` with `path`, or, when it is too long for a socket address,
/// with `/proc/self/fd/N/NAME` for a descriptor N of its directory.
pub(crate) fn via_dir<T>(path: &Path, f: impl FnOnce(&Path) -> io::Result<T>) -> io::Result<T> {
    if path.as_os_str().len() <= SUN_PATH_MAX {
        return f(path);
    }
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::ErrorKind::InvalidInput.into());
    };
    let dir = nix::fcntl::open(
        dir,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    let short = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd())).join(name);
    f(&short)
}

/// An output frame's bytes (stdout and stderr merged, as on a terminal).
fn bytes_of(frame: Frame) -> Vec<u8> {
    match frame {
        Frame::Data(d) | Frame::ErrData(d) => d,
        _ => Vec::new(),
    }
}
