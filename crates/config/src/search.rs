//! Where the configuration file is looked for, and the host facts that shape
//! the defaults. Everything is read from an [`Environment`] value so tests
//! never depend on the machine they run on.
//!
//! Search order, first existing file wins:
//! 1. the explicit path (`--config`), which must exist;
//! 2. `$PHOBOS_CONFIG`, which must exist when set (and non-empty);
//! 3. `/etc/phobos/phobos.toml`;
//! 4. `~/.config/phobos/phobos.toml`, for non-root users only.
//!
//! No file at all means the built-in defaults.

use std::path::{Path, PathBuf};

use crate::ConfigError;

/// The system-wide configuration file.
pub const SYSTEM_CONFIG: &str = "/etc/phobos/phobos.toml";

/// Host facts used for the search path and the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    /// Effective user id; 0 selects the root defaults.
    pub uid: u32,
    /// `$HOME`.
    pub home: Option<PathBuf>,
    /// `$XDG_RUNTIME_DIR`.
    pub xdg_runtime_dir: Option<PathBuf>,
    /// `$PHOBOS_CONFIG`.
    pub phobos_config: Option<PathBuf>,
    /// The system-wide file, normally [`SYSTEM_CONFIG`].
    pub system_config: PathBuf,
}

impl Environment {
    /// The facts of the current process.
    pub fn from_process() -> Self {
        let var = |name| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        Self {
            uid: nix::unistd::geteuid().as_raw(),
            home: var("HOME"),
            xdg_runtime_dir: var("XDG_RUNTIME_DIR"),
            phobos_config: var("PHOBOS_CONFIG"),
            system_config: PathBuf::from(SYSTEM_CONFIG),
        }
    }

    /// Whether the root defaults apply.
    pub fn is_root(&self) -> bool {
        self.uid == 0
    }

    /// `~/.config/phobos/phobos.toml`, if there is a home directory.
    pub fn user_config(&self) -> Option<PathBuf> {
        self.home
            .as_ref()
            .map(|home| home.join(".config/phobos/phobos.toml"))
    }
}

/// Why a file is a candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CandidateKind {
    /// Given on the command line (`--config`); must exist.
    Explicit,
    /// From `$PHOBOS_CONFIG`; must exist.
    EnvVar,
    /// The system-wide file; skipped when absent.
    System,
    /// The per-user file (non-root only); skipped when absent.
    User,
}

/// The files that would be tried, in order.
pub fn candidates(explicit: Option<&Path>, env: &Environment) -> Vec<(PathBuf, CandidateKind)> {
    let mut out = Vec::new();
    if let Some(path) = explicit {
        out.push((path.to_path_buf(), CandidateKind::Explicit));
    }
    if let Some(path) = &env.phobos_config {
        out.push((path.clone(), CandidateKind::EnvVar));
    }
    out.push((env.system_config.clone(), CandidateKind::System));
    if !env.is_root()
        && let Some(path) = env.user_config()
    {
        out.push((path, CandidateKind::User));
    }
    out
}

/// The configuration file to use, or `None` for the defaults.
///
/// An explicit path or `$PHOBOS_CONFIG` that does not exist is an error, not
/// a fall-through: the user asked for that file.
pub fn find_config_file(
    explicit: Option<&Path>,
    env: &Environment,
) -> Result<Option<PathBuf>, ConfigError> {
    for (path, kind) in candidates(explicit, env) {
        match std::fs::metadata(&path) {
            Ok(_) => return Ok(Some(path)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match kind {
                CandidateKind::Explicit | CandidateKind::EnvVar => {
                    return Err(ConfigError::Missing {
                        path,
                        origin: if kind == CandidateKind::Explicit {
                            "--config"
                        } else {
                            "$PHOBOS_CONFIG"
                        },
                    });
                }
                CandidateKind::System | CandidateKind::User => {}
            },
            Err(source) => return Err(ConfigError::Read { path, source }),
        }
    }
    Ok(None)
}
