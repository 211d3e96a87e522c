//! Phobos fetcher: the URIs of a launch (Mesos `CommandInfo.URI`, `phobos
//! run --fetch`) fetched into the sandbox in the FETCHING state, before the
//! command starts (Mesos's `mesos-fetcher`, without its cache).
//!
//! - `http://`/`https://` with `ureq` (rustls with the system's roots, the
//!   NSS-free resolver of `phobos_core::resolve`, shared with the image
//!   puller), redirects followed, a stall timeout on every read
//!   (`fetcher_stall_timeout`, like Mesos's 1 B/s `LOW_SPEED_LIMIT`);
//! - `file://` and plain paths, read as the task's user would be allowed
//!   to (MESOS-5845), regular files only;
//! - the file is written beneath the sandbox's directory descriptor
//!   (`phobos_core::safe_fs`), never through a symlink, owned by the task's
//!   user; `executable` sets 0755 (MESOS-1313) and skips extraction;
//! - `.tar`, `.tgz`/`.tar.gz` are extracted into the sandbox (confined, see
//!   [`extract`]) and `.gz` is gunzipped beside itself (MESOS-3407);
//!   `extract=false` keeps the archive as downloaded (MESOS-1241).
//!   `.tbz2`/`.tar.bz2`, `.txz`/`.tar.xz` and `.zip` are kept as
//!   downloaded with a warning (no decoder in the build yet), as Mesos
//!   does for an unknown extension.
//!
//! URIs are fetched in order; the first failure stops the fetch and names
//! the URI and the cause.

mod extract;
mod spec;

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use phobos_core::SafeDir;

pub use extract::{ExtractError, Extracted, extract_tar};
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
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            stall_timeout: DEFAULT_STALL_TIMEOUT,
            owner: None,
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
    pub extracted: Option<Extracted>,
    pub warnings: Vec<String>,
}

/// Fetches every URI into the sandbox, in order; the first failure stops.
pub fn fetch_all(
    uris: &[Uri],
    sandbox: &Path,
    settings: &Settings,
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
    let agent = agent(settings);
    uris.iter()
        .map(|uri| fetch_one(uri, &root, &agent, settings).map_err(|c| fail(uri, c)))
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

fn fetch_one(
    uri: &Uri,
    root: &SafeDir,
    agent: &ureq::Agent,
    settings: &Settings,
) -> Result<Fetched, Cause> {
    let name = uri.name()?;
    let mut source: Box<dyn Read> = match uri.check()? {
        Scheme::Http | Scheme::Https => open_http(agent, uri.value.trim_start(), settings)?,
        Scheme::Local => Box::new(open_local(&spec::local_path(&uri.value)?, settings)?),
    };
    let path = Path::new(&name);
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
    // A fresh file: one already there (or a symlink planted in its place)
    // is replaced, never written through.
    let _ = parent.remove_all(file_name);
    let mut file = parent.create_file(file_name, mode)?;
    if let Some((uid, gid)) = settings.owner {
        std::os::unix::fs::fchown(&file, Some(uid), Some(gid)).map_err(|e| Cause::Write {
            name: name.clone(),
            source: e,
        })?;
    }
    let copied = copy(&mut source, &mut file, settings.stall_timeout);
    let bytes = match copied {
        Ok(n) => n,
        Err(e) => {
            let _ = parent.remove_all(file_name);
            return Err(e.map_write(&name));
        }
    };
    drop(file);
    let mut fetched = Fetched {
        uri: uri.value.clone(),
        name: name.clone(),
        bytes,
        extracted: None,
        warnings: Vec::new(),
    };
    if uri.executable || !uri.extract {
        return Ok(fetched);
    }
    let lower = name.to_ascii_lowercase();
    let read = || parent.read_file(file_name);
    if [".tar", ".tgz", ".tar.gz"]
        .iter()
        .any(|s| lower.ends_with(s))
    {
        let file = read()?;
        let extracted = if lower.ends_with(".tar") {
            extract_tar(io::BufReader::new(file), root, settings.owner)?
        } else {
            extract_tar(
                flate2::read::GzDecoder::new(io::BufReader::new(file)),
                root,
                settings.owner,
            )?
        };
        fetched.warnings.extend(
            extracted
                .skipped
                .iter()
                .map(|m| format!("{}: skipped special file {m:?}", uri.value)),
        );
        fetched.extracted = Some(extracted);
    } else if let Some(stem) = name.strip_suffix(".gz").filter(|s| !s.ends_with('/')) {
        let stem_name = Path::new(stem).file_name().unwrap_or_default();
        let mut gz = flate2::read::GzDecoder::new(io::BufReader::new(read()?));
        let _ = parent.remove_all(stem_name);
        let mut out = parent.create_file(stem_name, 0o644)?;
        if let Some((uid, gid)) = settings.owner {
            std::os::unix::fs::fchown(&out, Some(uid), Some(gid)).map_err(|e| Cause::Write {
                name: stem.to_owned(),
                source: e,
            })?;
        }
        let n = io::copy(&mut gz, &mut out).map_err(|e| {
            let _ = parent.remove_all(stem_name);
            Cause::Extract(ExtractError::Corrupt(e))
        })?;
        fetched.extracted = Some(Extracted {
            entries: 1,
            bytes: n,
            skipped: Vec::new(),
        });
    } else if [".tbz2", ".tar.bz2", ".txz", ".tar.xz", ".zip"]
        .iter()
        .any(|s| lower.ends_with(s))
    {
        fetched.warnings.push(format!(
            "{}: kept {name:?} as downloaded: extracting this archive type is not supported yet",
            uri.value
        ));
    }
    Ok(fetched)
}

fn open_http(agent: &ureq::Agent, url: &str, settings: &Settings) -> Result<Box<dyn Read>, Cause> {
    match agent.get(url).call() {
        Ok(response) if (200..300).contains(&response.status()) => {
            Ok(Box::new(response.into_reader()))
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

enum CopyError {
    Read(io::Error, Duration),
    Write(io::Error),
}

impl CopyError {
    fn map_write(self, name: &str) -> Cause {
        match self {
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

fn copy(source: &mut dyn Read, out: &mut File, stall: Duration) -> Result<u64, CopyError> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = match source.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e, stall)),
        };
        out.write_all(&buf[..n]).map_err(CopyError::Write)?;
        total += n as u64;
    }
}
