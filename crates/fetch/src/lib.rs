//! Phobos fetcher: the URIs of a launch (Mesos `CommandInfo.URI`, `phobos
//! run --fetch`) fetched into the sandbox in the FETCHING state, before the
//! command starts (Mesos's `mesos-fetcher`).
//!
//! - `http://`/`https://` with `ureq` (rustls with the system's roots, the
//!   NSS-free resolver of `phobos_core::resolve`, shared with the image
//!   puller), redirects followed, a stall timeout on every read
//!   (`fetcher_stall_timeout`, like Mesos's 1 B/s `LOW_SPEED_LIMIT`);
//! - `file://` and plain paths, read as the task's user would be allowed
//!   to (MESOS-5845), regular files only;
//! - a URI with `cache` goes through the fetcher cache ([`cache`]): one
//!   download per URI and user, shared by concurrent launches, LRU by size;
//! - the file is written beneath the sandbox's directory descriptor
//!   (`phobos_core::safe_fs`), never through a symlink, owned by the task's
//!   user, as an unnamed `O_TMPFILE` linked into place only when complete
//!   (a failed or cancelled download leaves no file); `executable` sets
//!   0755 (MESOS-1313) and skips extraction;
//! - `.tar`, `.tgz`/`.tar.gz`, `.tbz2`/`.tar.bz2`, `.txz`/`.tar.xz` and
//!   `.zip` are extracted into the sandbox (confined and bounded, see
//!   [`extract`]) and `.gz` is gunzipped beside itself (MESOS-3407);
//!   `extract=false` keeps the archive as downloaded (MESOS-1241).
//!
//! URIs are fetched in order; the first failure stops the fetch and names
//! the URI and the cause. [`fetch_all_until`] fetches in a worker thread
//! and gives up as soon as its caller says so (a destroy during FETCHING).
//! A [`Progress`] in the [`Settings`] sees each download start, its bytes
//! as they arrive and its end (`phobos run` draws it on a terminal).

pub mod cache;
mod extract;
mod spec;

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use phobos_core::SafeDir;

pub use cache::{CacheError, CacheSettings, DEFAULT_CACHE_SIZE};
pub use extract::{ExtractError, Extracted, Limits, extract_tar};
pub use spec::{Scheme, SpecError, Uri, UriExt, parse_spec, scheme};

/// Mesos's `--fetcher_stall_timeout` default.
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// How to fetch.
#[derive(Clone, Debug)]
pub struct Settings {
    /// A download with no byte for this long fails.
    pub stall_timeout: Duration,
    /// The task's user: owner of everything fetched, and whose read
    /// permission a local path needs.
    pub owner: Option<(u32, u32)>,
    /// The fetcher cache, for URIs that ask for it; `None`: every URI is
    /// fetched directly.
    pub cache: Option<CacheSettings>,
    /// Bounds on what one archive may extract to.
    pub limits: Limits,
    /// Who is told how the downloads go; `None`: nobody.
    pub progress: Option<ProgressSink>,
}

/// What a fetch reports while it runs, per URI, from the thread that
/// fetches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// The source is open: `length` is what it announced (an HTTP
    /// `Content-Length`, a local file's size), if anything.
    Start {
        uri: &'a str,
        length: Option<u64>,
        cache_hit: bool,
    },
    /// `got` bytes of it so far (after every chunk read).
    Bytes { uri: &'a str, got: u64 },
    /// All of it is in the sandbox (not yet extracted).
    Done { uri: &'a str, bytes: u64 },
}

/// Receives [`Event`]s.
pub trait Progress: Send + Sync {
    fn event(&self, event: Event<'_>);
}

/// A shared [`Progress`], as [`Settings`] holds it.
#[derive(Clone)]
pub struct ProgressSink(pub Arc<dyn Progress>);

impl std::fmt::Debug for ProgressSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressSink")
    }
}

impl Settings {
    fn report(&self, event: Event<'_>) {
        if let Some(p) = &self.progress {
            p.0.event(event);
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            stall_timeout: DEFAULT_STALL_TIMEOUT,
            owner: None,
            cache: None,
            limits: Limits::default(),
            progress: None,
        }
    }
}

impl Settings {
    /// The settings a container's config asks for (`fetcher_stall_timeout`,
    /// the fetcher cache), fetching as `owner`.
    pub fn for_container(config: &phobos_core::ContainerConfig, owner: Option<(u32, u32)>) -> Self {
        Settings {
            stall_timeout: config
                .fetcher_stall_timeout_secs
                .map_or(DEFAULT_STALL_TIMEOUT, Duration::from_secs),
            owner,
            cache: config.fetcher_cache.as_ref().map(|c| CacheSettings {
                dir: c.dir.clone(),
                max_bytes: c.max_bytes,
            }),
            limits: Limits::default(),
            progress: None,
        }
    }
}

/// The one-line cause of a failed fetch.
#[derive(Debug, thiserror::Error)]
pub enum Cause {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("HTTP {0}")]
    Status(u16, String),
    #[error("{0}")]
    Transport(String),
    #[error("download stalled for {0:?}")]
    Stalled(Duration),
    #[error("download ended after {got} of the {expected} bytes announced")]
    Truncated { got: u64, expected: u64 },
    #[error("{path}: {source}")]
    Local {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Sandbox(#[from] phobos_core::SafeFsError),
    #[error("writing {name}: {source}")]
    Write {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Extract(#[from] ExtractError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error("fetching was cancelled (the container is being destroyed)")]
    Cancelled,
}

/// A URI that could not be fetched, and why.
#[derive(Debug, thiserror::Error)]
#[error("failed to fetch {uri:?}: {cause}")]
pub struct FetchError {
    pub uri: String,
    pub cause: Cause,
}

/// What one URI gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub uri: String,
    /// The file's path relative to the sandbox.
    pub name: String,
    pub bytes: u64,
    /// Served from the fetcher cache (no download).
    pub cache_hit: bool,
    pub extracted: Option<Extracted>,
    pub warnings: Vec<String>,
}

/// Tells a fetch to stop: set by whoever cancels, read between chunks and
/// archive members; `gate` orders a cancel against a file being linked
/// into the sandbox, so none appears after the cancel returned.
#[derive(Default)]
struct Stop {
    stop: AtomicBool,
    gate: Mutex<()>,
}

impl Stop {
    fn check(&self) -> Result<(), Cause> {
        if self.stop.load(Ordering::Relaxed) {
            Err(Cause::Cancelled)
        } else {
            Ok(())
        }
    }

    /// Runs `f` unless stopped; a cancel waits for it to finish.
    fn gated<T>(&self, f: impl FnOnce() -> Result<T, Cause>) -> Result<T, Cause> {
        let _gate = self.gate.lock().unwrap_or_else(|e| e.into_inner());
        self.check()?;
        f()
    }
}

/// Fetches every URI into the sandbox, in order; the first failure stops.
pub fn fetch_all(
    uris: &[Uri],
    sandbox: &Path,
    settings: &Settings,
) -> Result<Vec<Fetched>, FetchError> {
    fetch_with(uris, sandbox, settings, &Stop::default(), &Mutex::new(None))
}

/// As [`fetch_all`], in a worker thread, asking `cancelled` about every
/// `poll`: once it says yes, the fetch stops with [`Cause::Cancelled`] at
/// once, even while a read is blocked (the worker is left to notice at its
/// next chunk or timeout, and links nothing more into the sandbox).
pub fn fetch_all_until(
    uris: &[Uri],
    sandbox: &Path,
    settings: &Settings,
    poll: Duration,
    cancelled: &dyn Fn() -> bool,
) -> Result<Vec<Fetched>, FetchError> {
    if uris.is_empty() {
        return Ok(Vec::new());
    }
    let stop = Arc::new(Stop::default());
    let current = Arc::new(Mutex::new(None::<String>));
    let (tx, rx) = std::sync::mpsc::channel();
    let worker = {
        let (uris, sandbox, settings) = (uris.to_vec(), sandbox.to_owned(), settings.clone());
        let (stop, current) = (Arc::clone(&stop), Arc::clone(&current));
        std::thread::Builder::new()
            .name("phobos-fetch".into())
            .spawn(move || {
                let _ = tx.send(fetch_with(&uris, &sandbox, &settings, &stop, &current));
            })
    };
    if let Err(e) = worker {
        return Err(FetchError {
            uri: uris[0].value.clone(),
            cause: Cause::Transport(format!("cannot start the fetch thread: {e}")),
        });
    }
    loop {
        match rx.recv_timeout(poll) {
            Ok(result) => return result,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return Err(FetchError {
                    uri: uris[0].value.clone(),
                    cause: Cause::Transport("the fetch thread panicked".into()),
                });
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if cancelled() {
                    stop.stop.store(true, Ordering::Relaxed);
                    drop(stop.gate.lock());
                    let uri = current
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .clone()
                        .unwrap_or_else(|| uris[0].value.clone());
                    return Err(FetchError {
                        uri,
                        cause: Cause::Cancelled,
                    });
                }
            }
        }
    }
}

fn fetch_with(
    uris: &[Uri],
    sandbox: &Path,
    settings: &Settings,
    stop: &Stop,
    current: &Mutex<Option<String>>,
) -> Result<Vec<Fetched>, FetchError> {
    let fail = |uri: &Uri, cause: Cause| FetchError {
        uri: uri.value.clone(),
        cause,
    };
    // Every URI is checked before anything is fetched.
    for uri in uris {
        uri.check().map_err(|e| fail(uri, e.into()))?;
    }
    let Some(first) = uris.first() else {
        return Ok(Vec::new());
    };
    let root = SafeDir::open_trusted(sandbox).map_err(|e| fail(first, e.into()))?;
    let cache = match (&settings.cache, uris.iter().find(|u| u.cache)) {
        (Some(c), Some(uri)) => Some(cache::Cache::open(c).map_err(|e| fail(uri, e.into()))?),
        _ => None,
    };
    let agent = agent(settings);
    let job = Job {
        root: &root,
        agent: &agent,
        settings,
        cache: cache.as_ref(),
        stop,
    };
    uris.iter()
        .map(|uri| {
            *current.lock().unwrap_or_else(|e| e.into_inner()) = Some(uri.value.clone());
            job.fetch_one(uri).map_err(|c| fail(uri, c))
        })
        .collect()
}

fn agent(settings: &Settings) -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(settings.stall_timeout)
        .timeout_read(settings.stall_timeout)
        .timeout_write(settings.stall_timeout)
        .redirects(10)
        .user_agent(concat!("phobos-fetcher/", env!("CARGO_PKG_VERSION")))
        .resolver(phobos_core::resolve::resolve)
        .build()
}

/// What every URI of one fetch shares.
struct Job<'a> {
    root: &'a SafeDir,
    agent: &'a ureq::Agent,
    settings: &'a Settings,
    cache: Option<&'a cache::Cache>,
    stop: &'a Stop,
}

/// A source to read, and the length it announced.
struct Source {
    reader: Reader,
    length: Option<u64>,
}

/// What a source is read from: a stream, or a local regular file (a path,
/// a cache entry), which is copied by the kernel (`copy_file_range(2)`:
/// no copy through this process, a reflink where the filesystem can).
enum Reader {
    Stream(Box<dyn Read>),
    File(File),
}

impl Job<'_> {
    fn open_source(&self, uri: &Uri) -> Result<Source, Cause> {
        Ok(match uri.check()? {
            Scheme::Http | Scheme::Https => {
                open_http(self.agent, uri.value.trim_start(), self.settings)?
            }
            Scheme::Local => {
                let file = open_local(&spec::local_path(&uri.value)?, self.settings)?;
                let length = file.metadata().ok().map(|m| m.len());
                Source {
                    reader: Reader::File(file),
                    length,
                }
            }
        })
    }

    /// The source of `uri` through the cache: the entry (downloaded first
    /// if missing), or the URI itself if it cannot be cached.
    fn cached_source<'c>(
        &self,
        uri: &Uri,
        locked: &cache::Locked<'c>,
    ) -> Result<(Source, bool), Cause> {
        if let Some(entry) = locked.open_entry()? {
            let length = entry.metadata().ok().map(|m| m.len());
            return Ok((
                Source {
                    reader: Reader::File(entry),
                    length,
                },
                true,
            ));
        }
        let mut source = self.open_source(uri)?;
        let fits = match source.length {
            Some(n) if n <= locked.cache().max_bytes() => {
                locked.cache().make_room(n, locked.name())?
            }
            _ => false,
        };
        if !fits {
            // Size unknown or too large: fetched directly (Mesos's fallback).
            return Ok((source, false));
        }
        let mut part = locked.create_part()?;
        let shown = uri.value.trim_start();
        let settings = self.settings;
        settings.report(Event::Start {
            uri: shown,
            length: source.length,
            cache_hit: false,
        });
        let copied = copy(
            &mut source.reader,
            &mut part,
            settings.stall_timeout,
            self.stop,
            &|got| settings.report(Event::Bytes { uri: shown, got }),
        );
        let bytes = match copied {
            Ok(n) => n,
            Err(e) => {
                locked.discard_part();
                return Err(e.into_cause(&cache::entry_path(locked).display().to_string()));
            }
        };
        if Some(bytes) != source.length {
            locked.discard_part();
            return Err(Cause::Truncated {
                got: bytes,
                expected: source.length.unwrap_or(0),
            });
        }
        locked.commit(&part)?;
        let entry = locked.open_entry()?.ok_or_else(|| {
            Cause::Cache(CacheError::Io {
                path: cache::entry_path(locked),
                source: io::Error::other("the entry vanished after it was written"),
            })
        })?;
        Ok((
            Source {
                reader: Reader::File(entry),
                length: Some(bytes),
            },
            false,
        ))
    }

    fn fetch_one(&self, uri: &Uri) -> Result<Fetched, Cause> {
        let name = uri.name()?;
        let settings = self.settings;
        let locked = match self.cache.filter(|_| uri.cache) {
            Some(cache) => Some(cache.lock(&cache::entry_name(
                uri.value.trim_start(),
                settings.owner.map(|(uid, _)| uid),
            ))?),
            None => None,
        };
        self.stop.check()?;
        let (mut source, cache_hit) = match &locked {
            Some(locked) => self.cached_source(uri, locked)?,
            None => (self.open_source(uri)?, false),
        };
        let path = Path::new(&name);
        let root = self.root;
        let (parent, file_name) = match path.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(p) => {
                let dir = root.create_dir_all(p, 0o755)?;
                if let Some((uid, gid)) = settings.owner {
                    dir.chown(uid, gid)?;
                }
                (dir, Path::new(path.file_name().unwrap_or_default()))
            }
            None => (root.try_clone()?, path),
        };
        let mode = if uri.executable { 0o755 } else { 0o644 };
        let write_err = |e| Cause::Write {
            name: name.clone(),
            source: e,
        };
        // An unnamed file, linked into place once complete: a failed or
        // cancelled download leaves nothing behind.
        let mut file = parent.open_file(".", libc::O_TMPFILE | libc::O_WRONLY, mode)?;
        file.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(write_err)?;
        if let Some((uid, gid)) = settings.owner {
            std::os::unix::fs::fchown(&file, Some(uid), Some(gid)).map_err(write_err)?;
        }
        let shown = uri.value.trim_start();
        settings.report(Event::Start {
            uri: shown,
            length: source.length,
            cache_hit,
        });
        let bytes = copy(
            &mut source.reader,
            &mut file,
            settings.stall_timeout,
            self.stop,
            &|got| settings.report(Event::Bytes { uri: shown, got }),
        )
        .map_err(|e| e.into_cause(&name))?;
        settings.report(Event::Done { uri: shown, bytes });
        if let Some(expected) = source.length.filter(|n| *n != bytes) {
            return Err(Cause::Truncated {
                got: bytes,
                expected,
            });
        }
        drop(locked);
        self.stop.gated(|| {
            // A fresh file: one already there (or a symlink planted in its
            // place) is replaced, never written through.
            parent.remove_all(file_name)?;
            link_tmpfile(&file, &parent, file_name).map_err(write_err)
        })?;
        drop(file);
        let mut fetched = Fetched {
            uri: uri.value.clone(),
            name: name.clone(),
            bytes,
            cache_hit,
            extracted: None,
            warnings: Vec::new(),
        };
        if uri.executable || !uri.extract {
            return Ok(fetched);
        }
        let Some(kind) = extract::Kind::of(&name) else {
            return Ok(fetched);
        };
        let archive = parent.read_file(file_name)?;
        let extracted = self.stop.gated(|| {
            let ex = extract::Extractor::new(
                root,
                &parent,
                settings.owner,
                settings.limits,
                &self.stop.stop,
            );
            Ok(ex.extract(kind, archive, file_name)?)
        })?;
        fetched.warnings.extend(
            extracted
                .skipped
                .iter()
                .map(|m| format!("{}: skipped {m:?}", uri.value)),
        );
        fetched.extracted = Some(extracted);
        Ok(fetched)
    }
}

/// Gives the `O_TMPFILE` `file` the name `name` in `dir` (`linkat(2)`
/// through `/proc/self/fd`, which needs no capability).
fn link_tmpfile(file: &File, dir: &SafeDir, name: &Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let from = std::ffi::CString::new(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .map_err(io::Error::other)?;
    let to = std::ffi::CString::new(name.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: NUL-terminated strings that live across the call, an open
    // directory descriptor; AT_SYMLINK_FOLLOW resolves only the magic
    // link of our own descriptor, the new name is created, never followed.
    let rc = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            from.as_ptr(),
            dir.as_file().as_raw_fd(),
            to.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn open_http(agent: &ureq::Agent, url: &str, settings: &Settings) -> Result<Source, Cause> {
    match agent.get(url).call() {
        Ok(response) if (200..300).contains(&response.status()) => {
            let length = response
                .header("Content-Length")
                .and_then(|v| v.trim().parse::<u64>().ok());
            Ok(Source {
                reader: Reader::Stream(Box::new(response.into_reader())),
                length,
            })
        }
        Ok(response) => Err(Cause::Status(
            response.status(),
            response.status_text().to_owned(),
        )),
        Err(ureq::Error::Status(code, response)) => {
            Err(Cause::Status(code, response.status_text().to_owned()))
        }
        Err(ureq::Error::Transport(t)) => Err(transport(t, settings.stall_timeout)),
    }
}

fn transport(t: ureq::Transport, stall: Duration) -> Cause {
    let timed_out = std::error::Error::source(&t)
        .and_then(|s| s.downcast_ref::<io::Error>())
        .is_some_and(|e| {
            matches!(
                e.kind(),
                io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
            )
        });
    if timed_out {
        Cause::Stalled(stall)
    } else {
        Cause::Transport(t.to_string().replace('\n', " "))
    }
}

/// Opens a local file, which must be a regular file the task's user
/// could read.
fn open_local(path: &str, settings: &Settings) -> Result<File, Cause> {
    let local = |source| Cause::Local {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(local)?;
    let meta = file.metadata().map_err(local)?;
    if !meta.is_file() {
        return Err(local(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        )));
    }
    if let Some((uid, gid)) = settings.owner {
        let mode = meta.permissions().mode();
        let readable = uid == 0
            || (meta.uid() == uid && mode & 0o400 != 0)
            || (meta.gid() == gid && mode & 0o040 != 0)
            || mode & 0o004 != 0;
        if !readable {
            return Err(local(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("not readable by uid {uid}"),
            )));
        }
    }
    Ok(file)
}

/// Copies `file` to `out` with `copy_file_range(2)` in 8 MiB steps (a
/// cancel is seen between them); `Ok(false)` when the kernel cannot do it
/// for these two files (before anything was copied): read and write then.
fn copy_in_kernel(
    file: &File,
    out: &File,
    stop: &Stop,
    progress: &dyn Fn(u64),
    total: &mut u64,
) -> Result<bool, CopyError> {
    const STEP: usize = 8 << 20;
    loop {
        if stop.check().is_err() {
            return Err(CopyError::Cancelled);
        }
        // SAFETY: two open descriptors; null offsets use and advance the
        // files' own offsets; no memory of ours is passed.
        let n = unsafe {
            libc::copy_file_range(
                file.as_raw_fd(),
                std::ptr::null_mut(),
                out.as_raw_fd(),
                std::ptr::null_mut(),
                STEP,
                0,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(
                    libc::EXDEV | libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP | libc::EPERM,
                ) if *total == 0 => Ok(false),
                Some(libc::ENOSPC | libc::EDQUOT | libc::EFBIG) => Err(CopyError::Write(e)),
                _ => Err(CopyError::Read(e, Duration::ZERO)),
            };
        }
        if n == 0 {
            return Ok(true);
        }
        *total += n as u64;
        progress(*total);
    }
}

enum CopyError {
    Cancelled,
    Read(io::Error, Duration),
    Write(io::Error),
}

impl CopyError {
    fn into_cause(self, name: &str) -> Cause {
        match self {
            CopyError::Cancelled => Cause::Cancelled,
            CopyError::Read(e, stall)
                if matches!(
                    e.kind(),
                    io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
                ) =>
            {
                Cause::Stalled(stall)
            }
            CopyError::Read(e, _) => Cause::Transport(e.to_string()),
            CopyError::Write(e) => Cause::Write {
                name: name.to_owned(),
                source: e,
            },
        }
    }
}

fn copy(
    source: &mut Reader,
    out: &mut File,
    stall: Duration,
    stop: &Stop,
    progress: &dyn Fn(u64),
) -> Result<u64, CopyError> {
    let mut total = 0u64;
    let source: &mut dyn Read = match source {
        Reader::File(file) => {
            if copy_in_kernel(file, out, stop, progress, &mut total)? {
                return Ok(total);
            }
            file
        }
        Reader::Stream(stream) => stream.as_mut(),
    };
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        if stop.check().is_err() {
            return Err(CopyError::Cancelled);
        }
        let n = match source.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e, stall)),
        };
        out.write_all(&buf[..n]).map_err(CopyError::Write)?;
        total += n as u64;
        progress(total);
    }
}
