//! Checks of launch input besides IDs and resources: a container's
//! hostname and its environment variables. Pure functions, so every face
//! (CLI, ECP) refuses the same values before anything is created, instead
//! of failing late inside the container with a FAILED record left behind.

/// The kernel's limit on a UTS hostname (`__NEW_UTS_LEN`): sethostname(2)
/// fails with EINVAL beyond it.
pub const MAX_HOSTNAME_LENGTH: usize = 64;

/// Why a hostname is refused. The message names the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidHostname {
    #[error("invalid hostname '': it must not be empty")]
    Empty,
    #[error(
        "invalid hostname '{value}': {len} bytes is longer than the kernel's {MAX_HOSTNAME_LENGTH}"
    )]
    TooLong { value: String, len: usize },
    #[error(
        "invalid hostname '{value}': {problem} (RFC 1123: dot-separated labels of letters, digits and '-', not starting or ending with '-')"
    )]
    Syntax { value: String, problem: String },
}

/// Validates `name` as a hostname: at most 64 bytes (the kernel), and RFC
/// 1123 syntax (labels of 1-63 ASCII letters, digits and hyphens, neither
/// starting nor ending with a hyphen, separated by single dots), which also
/// rules out spaces, newlines and every other control character.
pub fn validate_hostname(name: &str) -> Result<(), InvalidHostname> {
    if name.is_empty() {
        return Err(InvalidHostname::Empty);
    }
    let shown = || name.escape_debug().to_string();
    if name.len() > MAX_HOSTNAME_LENGTH {
        return Err(InvalidHostname::TooLong {
            value: shown(),
            len: name.len(),
        });
    }
    let syntax = |problem: String| InvalidHostname::Syntax {
        value: shown(),
        problem,
    };
    for label in name.split('.') {
        if label.is_empty() {
            return Err(syntax("empty label".to_owned()));
        }
        if label.len() > 63 {
            return Err(syntax(format!(
                "label of {} bytes (at most 63)",
                label.len()
            )));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !c.is_ascii_alphanumeric() && *c != '-')
        {
            return Err(syntax(format!("character {:?}", c)));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(syntax(format!("label '{label}' starts or ends with '-'")));
        }
    }
    Ok(())
}

/// Why an environment variable is refused. The message names the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidEnv {
    #[error("invalid environment variable '{0}': expected KEY=VALUE or KEY")]
    EmptyKey(String),
    #[error(
        "invalid environment variable '{0}': the name must not contain control characters such as a newline"
    )]
    ControlInKey(String),
    #[error("invalid environment variable '{0}': it must not contain a NUL byte")]
    Nul(String),
    #[error("invalid environment variable '{0}': the name must not contain '='")]
    EqualsInKey(String),
}

/// One `--env` argument, as Docker reads `-e`: `KEY=VALUE` sets KEY (the
/// value may hold anything but NUL, `=` included); a bare `KEY` passes the
/// caller's own value through, as `lookup` gives it, and is left out when
/// the caller has none (`Ok(None)`). The name must be non-empty and free of
/// control characters (a newline in it would forge a second variable in
/// every `KEY=VALUE` listing, `/proc/PID/environ` readers included).
pub fn parse_env_arg(
    arg: &str,
    lookup: impl FnOnce(&str) -> Option<String>,
) -> Result<Option<(String, String)>, InvalidEnv> {
    let shown = || arg.escape_debug().to_string();
    if arg.contains('\0') {
        return Err(InvalidEnv::Nul(shown()));
    }
    let (key, value) = match arg.split_once('=') {
        Some((key, value)) => (key, Some(value.to_owned())),
        None => (arg, None),
    };
    check_key(key, shown)?;
    let value = match value {
        Some(value) => value,
        None => match lookup(key) {
            Some(value) if !value.contains('\0') => value,
            Some(_) => return Err(InvalidEnv::Nul(shown())),
            None => return Ok(None),
        },
    };
    Ok(Some((key.to_owned(), value)))
}

/// Checks a variable already split into name and value (what a launch
/// request carries, from any face): the rules of [`parse_env_arg`], and
/// no `=` in the name.
pub fn validate_env(key: &str, value: &str) -> Result<(), InvalidEnv> {
    let shown = || format!("{key}={value}").escape_debug().to_string();
    if key.contains('\0') || value.contains('\0') {
        return Err(InvalidEnv::Nul(shown()));
    }
    if key.contains('=') {
        return Err(InvalidEnv::EqualsInKey(shown()));
    }
    check_key(key, shown)
}

fn check_key(key: &str, shown: impl Fn() -> String) -> Result<(), InvalidEnv> {
    if key.is_empty() {
        return Err(InvalidEnv::EmptyKey(shown()));
    }
    if key.chars().any(char::is_control) {
        return Err(InvalidEnv::ControlInKey(shown()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames_follow_the_kernel_and_rfc_1123() {
        for good in ["web", "web-1", "a.b.c", "x".repeat(63).as_str(), "1abc"] {
            assert_eq!(validate_hostname(good), Ok(()), "{good}");
        }
        let long = format!("{}.{}", "a".repeat(40), "b".repeat(30));
        for bad in [
            "", "a b", "a\nb", "-web", "web-", "a..b", ".a", "a.", "wéb", "a_b", &long,
        ] {
            let err = validate_hostname(bad).unwrap_err();
            assert!(err.to_string().starts_with("invalid hostname '"), "{err}");
        }
        assert!(
            validate_hostname("a\nb")
                .unwrap_err()
                .to_string()
                .contains("a\\nb")
        );
        assert!(matches!(
            validate_hostname(&"a".repeat(65)),
            Err(InvalidHostname::TooLong { len: 65, .. })
        ));
        assert!(matches!(
            validate_hostname(&"a".repeat(64)),
            Err(InvalidHostname::Syntax { .. })
        ));
    }

    #[test]
    fn env_args_are_docker_like() {
        let none = |_: &str| None;
        assert_eq!(
            parse_env_arg("A=1", none),
            Ok(Some(("A".into(), "1".into())))
        );
        assert_eq!(
            parse_env_arg("A=b=c\nd", none),
            Ok(Some(("A".into(), "b=c\nd".into())))
        );
        assert_eq!(parse_env_arg("A=", none), Ok(Some(("A".into(), "".into()))));
        // A bare key passes the caller's value, or nothing.
        let caller = |k: &str| (k == "HOME").then(|| "/root".to_owned());
        assert_eq!(
            parse_env_arg("HOME", caller),
            Ok(Some(("HOME".into(), "/root".into())))
        );
        assert_eq!(parse_env_arg("UNSET_HERE", caller), Ok(None));
        assert!(matches!(
            parse_env_arg("=1", none),
            Err(InvalidEnv::EmptyKey(_))
        ));
        assert!(matches!(
            parse_env_arg("", none),
            Err(InvalidEnv::EmptyKey(_))
        ));
        let err = parse_env_arg("A\nB=1", none).unwrap_err();
        assert_eq!(err, InvalidEnv::ControlInKey("A\\nB=1".into()));
        assert!(err.to_string().contains("'A\\nB=1'"), "{err}");
        assert!(matches!(
            parse_env_arg("A=\0", none),
            Err(InvalidEnv::Nul(_))
        ));
    }

    #[test]
    fn split_variables_follow_the_same_rules() {
        assert_eq!(validate_env("A", "b=c\nd"), Ok(()));
        assert!(matches!(
            validate_env("", "1"),
            Err(InvalidEnv::EmptyKey(_))
        ));
        assert!(matches!(
            validate_env("A=B", "1"),
            Err(InvalidEnv::EqualsInKey(_))
        ));
        assert!(matches!(
            validate_env("A\nB", "1"),
            Err(InvalidEnv::ControlInKey(_))
        ));
        assert!(matches!(validate_env("A", "\0"), Err(InvalidEnv::Nul(_))));
    }
}
