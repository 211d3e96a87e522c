//! Container IDs, validated exactly as Mesos validates a `ContainerID.value`
//! (`src/common/validation.cpp`): non-empty, at most 242 bytes, not `.` or
//! `..`, no control characters, no `/`, `\`, `.` or space.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Mesos's `MAX_CONTAINER_ID_LENGTH`: keeps `<runtime_dir>/containers/<id>`
/// and cgroup paths below `NAME_MAX` even with prefixes.
pub const MAX_CONTAINER_ID_LENGTH: usize = 242;

/// A validated top-level container ID.
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
}

impl ContainerId {
    /// Validates `value` as a container ID.
    pub fn new(value: impl Into<String>) -> Result<Self, InvalidContainerId> {
        let value = value.into();
        validate(&value)?;
        Ok(Self(value))
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

impl FromStr for ContainerId {
    type Err = InvalidContainerId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl TryFrom<String> for ContainerId {
    type Error = InvalidContainerId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
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
