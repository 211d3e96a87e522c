//! The copy of a Docker container's output from the engine's log into
//! `<sandbox>/stdout|stderr`, through the `logrotate` logger's rotating
//! writer (`phobos_core::logrotate`; the `sandbox` logger is the same
//! writer without a bound), resumable without a line lost or repeated.
//!
//! Every reader of the engine's log asks for timestamps: each message
//! comes as `<RFC 3339 nanoseconds> <bytes>`, and a message of one stream
//! is named by its timestamp and its rank among that stream's messages
//! with the same timestamp ([`Reader`]). The record's `log_copy` file
//! checkpoints, per stream, the last message copied and the bytes copied
//! through it, and which inode the live sandbox file is and where in the
//! stream it starts. A writer ([`Session`]) holds `log_copy.lock`
//! (flock(2)) while it writes: it skips every message up to the
//! checkpoint, and of the next ones the bytes the files already hold (a
//! writer killed between a write and its checkpoint), so a follower, a
//! `logs` refresh and the end of the container may each copy in turn.
//! A replay asks the engine only for messages `since` a second before
//! the checkpoint (the engine's `since` is whole seconds).
//!
//! A rotation is checkpointed on both sides: before it, that the next
//! live file starts where the full one ends; after it, the new inode.
//! So a writer killed at any point leaves a checkpoint that says how many
//! bytes the files hold past it.
//!
//! Limits: the engine stamps each stream's lines in order, from the
//! wall clock; a clock stepped back while a container writes can make a
//! replay skip lines stamped before the step. Output the engine's own
//! bounded log dropped before it was copied is gone.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use phobos_core::logrotate::{Limit, LogRotation, RotatingFile};
use phobos_core::{ContainerDir, SafeDir};
use serde::{Deserialize, Serialize};

use super::{ContainerizerError, Result};

/// The record's checkpoint of the copy.
pub const LOG_COPY_FILE: &str = "log_copy";
/// The record's lock file held by a writer of the copy.
pub const LOG_COPY_LOCK_FILE: &str = "log_copy.lock";

/// The two streams, in [`Checkpoint::streams`] order.
pub const STREAMS: [&str; 2] = ["stdout", "stderr"];

/// Where one stream's copy stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    /// The last message copied: its timestamp (ns since the epoch; 0:
    /// none yet) and rank among the stream's messages of that timestamp.
    pub ts: u64,
    pub rank: u32,
    /// Bytes of the stream copied through that message.
    pub total: u64,
    /// The live sandbox file: device and inode (0, 0: none checkpointed)
    /// and where in the stream it starts.
    pub dev: u64,
    pub ino: u64,
    pub live_start: u64,
    /// Set just before a rotation: where the next live file starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_start: Option<u64>,
}

/// The `log_copy` file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub streams: [Mark; 2],
}

impl Checkpoint {
    /// The `since` (whole seconds) a replay asks the engine for: a second
    /// before the older stream's last copied message (a stream with none
    /// yet: the other's, or everything).
    pub fn since(&self) -> i32 {
        let oldest = match [self.streams[0].ts, self.streams[1].ts] {
            [0, 0] => return 0,
            [0, ts] | [ts, 0] => ts,
            [a, b] => a.min(b),
        };
        let secs = (oldest / 1_000_000_000).saturating_sub(1);
        i32::try_from(secs).unwrap_or(0)
    }
}

/// The name a reader gives each message: (timestamp, rank).
pub type Ident = (u64, u32);

/// Names the messages of one pass over the engine's log.
#[derive(Debug, Default)]
pub struct Reader {
    last: [Ident; 2],
}

impl Reader {
    /// Splits a timestamped message of stream `index` into its name and
    /// bytes; `None` when it carries no timestamp.
    pub fn next<'a>(&mut self, index: usize, message: &'a [u8]) -> Option<(Ident, &'a [u8])> {
        let space = message.iter().take(40).position(|b| *b == b' ')?;
        let stamp = std::str::from_utf8(&message[..space]).ok()?;
        let ts = phobos_core::time::parse_rfc3339_nanos(stamp)?;
        let last = &mut self.last[index];
        *last = if last.0 == ts {
            (ts, last.1.saturating_add(1))
        } else {
            (ts, 1)
        };
        Some((*last, &message[space + 1..]))
    }
}

/// One writer's turn at the sandbox files, holding the copy lock.
pub struct Session<'a> {
    record: &'a ContainerDir,
    sandbox: &'a Path,
    mark: Checkpoint,
    files: [RotatingFile; 2],
    /// Per stream: how far the files reach into the stream (bytes).
    disk: [u64; 2],
    _lock: File,
}

impl<'a> Session<'a> {
    /// Waits for the copy lock, then opens the sandbox files (beneath the
    /// sandbox, following no symlink) where the checkpoint says they are.
    pub fn open(
        record: &'a ContainerDir,
        sandbox: &'a Path,
        rotation: Option<&LogRotation>,
    ) -> Result<Self> {
        let lock_path = record.file(LOG_COPY_LOCK_FILE);
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(&lock_path)
            .and_then(|f| f.lock().map(|()| f))
            .map_err(|source| ContainerizerError::Sandbox {
                op: "lock",
                path: lock_path,
                source,
            })?;
        let mut mark = record
            .read_json::<Checkpoint>(LOG_COPY_FILE)?
            .unwrap_or_default();
        let sandbox_err = |name: &str| {
            let path = sandbox.join(name);
            move |source: io::Error| ContainerizerError::Sandbox {
                op: "open",
                path,
                source,
            }
        };
        let mut disk = [0; 2];
        let mut open = |i: usize| -> Result<RotatingFile> {
            let name = STREAMS[i];
            let limit = match rotation {
                Some(r) => r.limit(name),
                // The `sandbox` logger: the same writer, never rotating.
                None => Limit {
                    max_size: u64::MAX,
                    max_files: 1,
                },
            };
            let dir = SafeDir::open_trusted(sandbox).map_err(|e| sandbox_err(name)(e.into()))?;
            let file = RotatingFile::open(dir, name, limit).map_err(sandbox_err(name))?;
            let meta = file.file().metadata().map_err(sandbox_err(name))?;
            let m = &mut mark.streams[i];
            let size = file.len();
            m.live_start = if (m.dev, m.ino) == (meta.dev(), meta.ino()) {
                m.live_start
            } else if let Some(start) = m.next_start {
                // Killed during a rotation: this file came after it.
                start
            } else if (m.dev, m.ino) == (0, 0) {
                // Nothing checkpointed: the file holds the stream from
                // its start (a copy made before checkpoints, or none).
                0
            } else {
                // Replaced by someone else: go on after the checkpoint.
                m.total.saturating_sub(size)
            };
            (m.dev, m.ino, m.next_start) = (meta.dev(), meta.ino(), None);
            disk[i] = m.live_start + size;
            Ok(file)
        };
        let files = [open(0)?, open(1)?];
        Ok(Self {
            record,
            sandbox,
            mark,
            files,
            disk,
            _lock: lock,
        })
    }

    /// The checkpoint as this session found (and has advanced) it.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.mark
    }

    /// Copies message `ident` of stream `index` unless it was copied
    /// already (wholly, or in part by a writer killed before its
    /// checkpoint).
    pub fn apply(&mut self, index: usize, ident: Ident, bytes: &[u8]) -> Result<()> {
        let m = self.mark.streams[index];
        if ident <= (m.ts, m.rank) {
            return Ok(());
        }
        let start = m.total;
        let on_disk = usize::try_from(self.disk[index].saturating_sub(start))
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        self.write(index, &bytes[on_disk..])?;
        let m = &mut self.mark.streams[index];
        (m.ts, m.rank) = ident;
        m.total = start + bytes.len() as u64;
        Ok(())
    }

    fn write(&mut self, index: usize, mut bytes: &[u8]) -> Result<()> {
        let name = STREAMS[index];
        let err = |op: &'static str, sandbox: &Path| {
            let path = sandbox.join(name);
            move |source: io::Error| ContainerizerError::Sandbox { op, path, source }
        };
        while !bytes.is_empty() {
            if self.files[index].room() == 0 {
                let next = self.mark.streams[index].live_start + self.files[index].len();
                self.mark.streams[index].next_start = Some(next);
                self.save()?;
                self.files[index]
                    .rotate()
                    .map_err(err("rotate", self.sandbox))?;
                let meta = self.files[index]
                    .file()
                    .metadata()
                    .map_err(err("rotate", self.sandbox))?;
                let m = &mut self.mark.streams[index];
                (m.dev, m.ino, m.live_start, m.next_start) = (meta.dev(), meta.ino(), next, None);
                self.save()?;
            }
            let room = usize::try_from(self.files[index].room()).unwrap_or(usize::MAX);
            let n = bytes.len().min(room);
            self.files[index]
                .write_all(&bytes[..n])
                .map_err(err("write", self.sandbox))?;
            bytes = &bytes[n..];
        }
        Ok(())
    }

    fn save(&self) -> Result<()> {
        Ok(self.record.write_json(LOG_COPY_FILE, &self.mark)?)
    }

    /// Checkpoints and lets the next writer in.
    pub fn close(self) -> Result<()> {
        self.save()
    }
}
