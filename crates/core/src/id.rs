//! Container IDs, validated exactly as Mesos validates a `ContainerID.value`
//! (`src/common/validation.cpp`): non-empty, at most 242 bytes, not `.` or
//! `..`, no control characters, no `/`, `\`, `.` or space.
//!
//! A nested container's ID (Mesos's `ContainerID` with a `parent`) is the
//! path from its top-level ancestor, each component a valid ID, joined
//! with `.` as Mesos prints it: `parent.child.grandchild`. No top-level ID
//! can contain a `.`, so the two never collide.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Mesos's `MAX_CONTAINER_ID_LENGTH`: keeps `<runtime_dir>/containers/<id>`
/// and cgroup paths below `NAME_MAX` even with prefixes.
pub const MAX_CONTAINER_ID_LENGTH: usize = 242;

/// The longest full nested ID (`parent.child…`) accepted: keeps the
/// nested runtime and sandbox paths (`…/containers/<a>/containers/<b>`)
/// well below `PATH_MAX`.
pub const MAX_NESTED_ID_LENGTH: usize = 1024;

/// A validated container ID: a top-level one, or a nested one's full path
/// (`parent.child`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ContainerId(String);

/// Why a string is not a valid container ID. The message names the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidContainerId {
    #[error("invalid container id '': it must not be empty")]
    Empty,
    #[error("invalid container id '{0}': it must not be '.' or '..'")]
    Dots(String),
    #[error("invalid container id '{shown}': {len} bytes is longer than {MAX_CONTAINER_ID_LENGTH}")]
    TooLong { shown: String, len: usize },
    #[error("invalid container id '{value}': it must not contain {what}")]
    BadCharacter { value: String, what: &'static str },
    #[error(
        "invalid nested container id '{shown}': {len} bytes is longer than {MAX_NESTED_ID_LENGTH}"
    )]
    NestedTooLong { shown: String, len: usize },
}

impl ContainerId {
    /// Validates `value` as a top-level container ID (no `.`).
    pub fn new(value: impl Into<String>) -> Result<Self, InvalidContainerId> {
        let value = value.into();
        validate(&value)?;
        Ok(Self(value))
    }

    /// Validates `value` as a full ID: a top-level ID or a nested one's
    /// path `parent.child…`, every component a valid ID.
    pub fn parse_path(value: impl Into<String>) -> Result<Self, InvalidContainerId> {
        let value = value.into();
        if value.len() > MAX_NESTED_ID_LENGTH {
            let shown: String = value.chars().take(24).chain("…".chars()).collect();
            return Err(InvalidContainerId::NestedTooLong {
                shown,
                len: value.len(),
            });
        }
        if !value.contains('.') {
            validate(&value)?;
        }
        for component in value.split('.') {
            // A bad part is named with the whole ID it is in.
            validate(component).map_err(|e| {
                let what = match e {
                    InvalidContainerId::Empty | InvalidContainerId::Dots(_) => "an empty component",
                    InvalidContainerId::BadCharacter { what, .. } => what,
                    other => return other,
                };
                InvalidContainerId::BadCharacter {
                    value: value.escape_debug().to_string(),
                    what,
                }
            })?;
        }
        Ok(Self(value))
    }

    /// The ID of `child` nested in this container.
    pub fn child(&self, child: &ContainerId) -> Result<Self, InvalidContainerId> {
        Self::parse_path(format!("{}.{}", self.0, child.0))
    }

    /// The parent of a nested container; `None` for a top-level one.
    pub fn parent(&self) -> Option<Self> {
        self.0
            .rsplit_once('.')
            .map(|(parent, _)| Self(parent.to_owned()))
    }

    /// Whether this is a nested container's ID.
    pub fn is_nested(&self) -> bool {
        self.0.contains('.')
    }

    /// The last component (the ID a nested container has under its parent).
    pub fn leaf(&self) -> &str {
        self.0.rsplit('.').next().unwrap_or(&self.0)
    }

    /// The top-level ancestor (itself for a top-level container).
    pub fn root(&self) -> Self {
        Self(self.0.split('.').next().unwrap_or(&self.0).to_owned())
    }

    /// How many ancestors it has (0 for a top-level container).
    pub fn depth(&self) -> usize {
        self.0.matches('.').count()
    }

    /// The relative path of this container in a tree where each nested
    /// container lives in `<parent>/<sep>/<child>` (Mesos's runtime and
    /// sandbox layout with `containers`, its cgroups with `mesos`): one
    /// directory name per component, so no name exceeds `NAME_MAX`.
    pub fn nested_path(&self, sep: &str) -> std::path::PathBuf {
        let mut path = std::path::PathBuf::new();
        for (i, component) in self.0.split('.').enumerate() {
            if i > 0 {
                path.push(sep);
            }
            path.push(component);
        }
        path
    }

    /// A fresh random ID (a UUID, as the Mesos agent uses for executors).
    pub fn random() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn validate(value: &str) -> Result<(), InvalidContainerId> {
    if value.is_empty() {
        return Err(InvalidContainerId::Empty);
    }
    if value == "." || value == ".." {
        return Err(InvalidContainerId::Dots(value.to_owned()));
    }
    if value.len() > MAX_CONTAINER_ID_LENGTH {
        let shown: String = value.chars().take(24).chain("…".chars()).collect();
        return Err(InvalidContainerId::TooLong {
            shown,
            len: value.len(),
        });
    }
    let bad = |what| {
        Err(InvalidContainerId::BadCharacter {
            value: value.escape_debug().to_string(),
            what,
        })
    };
    for c in value.chars() {
        match c {
            c if c.is_control() => return bad("control characters"),
            '/' => return bad("'/'"),
            '\\' => return bad("'\\'"),
            '.' => return bad("'.'"),
            ' ' => return bad("spaces"),
            _ => {}
        }
    }
    Ok(())
}

/// Parses a full ID (nested ones included); [`ContainerId::new`] for a
/// top-level one only.
impl FromStr for ContainerId {
    type Err = InvalidContainerId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_path(s)
    }
}

/// Records hold full IDs (nested ones included).
impl TryFrom<String> for ContainerId {
    type Error = InvalidContainerId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse_path(value)
    }
}

impl From<ContainerId> for String {
    fn from(id: ContainerId) -> Self {
        id.0
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContainerId({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_mesos_style_ids() {
        for ok in [
            "a",
            "web-1",
            "5f3c1b2e-8d4a-4f7e-9a61-0c2b7e9d1f00",
            "A_b-C",
            "é",
        ] {
            assert_eq!(ContainerId::new(ok).unwrap().as_str(), ok);
        }
        assert!(ContainerId::new("x".repeat(242)).is_ok());
    }

    #[test]
    fn rejects_what_mesos_rejects() {
        assert_eq!(ContainerId::new(""), Err(InvalidContainerId::Empty));
        assert!(matches!(
            ContainerId::new(".."),
            Err(InvalidContainerId::Dots(_))
        ));
        assert!(matches!(
            ContainerId::new("."),
            Err(InvalidContainerId::Dots(_))
        ));
        assert!(matches!(
            ContainerId::new("x".repeat(243)),
            Err(InvalidContainerId::TooLong { len: 243, .. })
        ));
        for bad in ["a/b", "a.b", "a b", "a\\b", "a\nb", "a\u{7f}"] {
            assert!(
                matches!(
                    ContainerId::new(bad),
                    Err(InvalidContainerId::BadCharacter { .. })
                ),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn error_names_the_value() {
        let err = ContainerId::new("a/b").unwrap_err().to_string();
        assert_eq!(err, "invalid container id 'a/b': it must not contain '/'");
        let err = ContainerId::new("x".repeat(300)).unwrap_err().to_string();
        assert!(err.contains("300 bytes"), "{err}");
    }

    #[test]
    fn random_ids_are_valid_and_distinct() {
        let a = ContainerId::random();
        let b = ContainerId::random();
        assert_ne!(a, b);
        assert!(ContainerId::new(a.as_str()).is_ok());
    }

    #[test]
    fn nested_ids_are_paths_of_valid_ids() {
        let id: ContainerId = "p.c.g".parse().unwrap();
        assert!(id.is_nested());
        assert_eq!(id.depth(), 2);
        assert_eq!(id.leaf(), "g");
        assert_eq!(id.parent().unwrap().as_str(), "p.c");
        assert_eq!(id.root().as_str(), "p");
        assert_eq!(
            id.nested_path("containers"),
            std::path::Path::new("p/containers/c/containers/g")
        );
        let p = ContainerId::new("p").unwrap();
        assert!(p.parent().is_none() && !p.is_nested() && p.depth() == 0);
        assert_eq!(
            p.child(&ContainerId::new("c").unwrap()).unwrap().as_str(),
            "p.c"
        );
        // Each component is checked; the message names the whole ID.
        for bad in ["p..c", ".c", "p.", "p.c/d", "p.c d"] {
            let err = ContainerId::parse_path(bad).unwrap_err().to_string();
            assert!(err.contains(&bad.escape_debug().to_string()), "{err}");
        }
        // Components up to 242 bytes each, the whole up to the limit.
        let long = ["x".repeat(242), "y".repeat(242)].join(".");
        assert!(ContainerId::parse_path(long).is_ok());
        let too_long = vec!["z".repeat(200); 6].join(".");
        assert!(matches!(
            ContainerId::parse_path(too_long),
            Err(InvalidContainerId::NestedTooLong { .. })
        ));
        assert!(ContainerId::new("p.c").is_err());
    }

    proptest! {
        #[test]
        fn valid_ids_are_safe_path_components(s in "\\PC{0,300}") {
            if let Ok(id) = ContainerId::new(s) {
                let s = id.as_str();
                prop_assert!(!s.contains('/') && !s.contains('.') && !s.is_empty());
                prop_assert!(s.len() <= MAX_CONTAINER_ID_LENGTH);
            }
        }
    }
}
