//! Image references, parsed and normalized as Docker does
//! (`distribution/reference`): `busybox` is
//! `docker.io/library/busybox:latest`, a first component with a `.` or a
//! `:`, or `localhost`, or an upper-case letter is a registry, and a digest
//! (`@sha256:…`) wins over a tag for fetching.

use std::fmt;

use crate::digest::Digest;
use crate::error::{Error, Result};

/// Docker Hub's canonical domain.
pub const DOCKER_HUB: &str = "docker.io";

/// A normalized image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    domain: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

fn invalid(value: &str, reason: impl Into<String>) -> Error {
    Error::InvalidReference {
        value: value.to_string(),
        reason: reason.into(),
    }
}

impl Reference {
    /// Parses and normalizes `value`. A reference without a tag or digest
    /// gets the tag `latest`.
    pub fn parse(value: &str) -> Result<Self> {
        if value.is_empty() {
            return Err(invalid(value, "empty"));
        }
        let (rest, digest) = match value.split_once('@') {
            Some((rest, digest)) => {
                let digest = Digest::parse(digest).map_err(|e| invalid(value, e))?;
                (rest, Some(digest))
            }
            None => (value, None),
        };
        // A tag is what follows the last ':' when no '/' follows it.
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i + 1..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
            _ => (rest, None),
        };
        if name.is_empty() {
            return Err(invalid(value, "no repository name"));
        }
        if name.len() > 255 {
            return Err(invalid(value, "name longer than 255 characters"));
        }
        if let Some(tag) = tag {
            check_tag(tag).map_err(|e| invalid(value, e))?;
        }
        let (domain, path) = match name.split_once('/') {
            Some((first, path))
                if first.contains(['.', ':'])
                    || first == "localhost"
                    || first.chars().any(|c| c.is_ascii_uppercase()) =>
            {
                check_domain(first).map_err(|e| invalid(value, e))?;
                (first.to_string(), path.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        let domain = if domain == "index.docker.io" {
            DOCKER_HUB.to_string()
        } else {
            domain
        };
        for component in path.split('/') {
            check_component(component).map_err(|e| invalid(value, e))?;
        }
        let repository = if domain == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        let tag = match (tag, &digest) {
            (Some(tag), _) => Some(tag.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some("latest".to_string()),
        };
        Ok(Reference {
            domain,
            repository,
            tag,
            digest,
        })
    }

    /// The registry's domain (`docker.io`, `127.0.0.1:5000`).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path (`library/busybox`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, when the reference has one.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, when the reference has one.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// What to ask the registry's manifest endpoint for: the digest when
    /// there is one, else the tag.
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(tag)) => tag.clone(),
            (None, None) => "latest".to_string(),
        }
    }

    /// `domain/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.repository)
    }

    /// The same image pinned to `digest` (the tag kept).
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            digest: Some(digest),
            ..self.clone()
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.domain, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Reference {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Reference::parse(s)
    }
}

fn check_tag(tag: &str) -> Result<(), String> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && tag
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!("invalid tag {tag:?}"))
    }
}

/// `[a-z0-9]+ (separator [a-z0-9]+)*` with separators `.`, `_`, `__`, `-+`.
fn check_component(component: &str) -> Result<(), String> {
    let bad = || Err(format!("invalid repository name component {component:?}"));
    if component.is_empty() {
        return bad();
    }
    if component.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(format!("repository name {component:?} must be lowercase"));
    }
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return bad();
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &component[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.chars().all(|c| c == '-');
        if !ok {
            return bad();
        }
    }
    Ok(())
}

/// `host[:port]`, the host a DNS name or a bracketed IPv6 address.
fn check_domain(domain: &str) -> Result<(), String> {
    let bad = || Err(format!("invalid registry {domain:?}"));
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        let Some((addr, after)) = rest.split_once(']') else {
            return bad();
        };
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return bad();
        }
        match after {
            "" => ("", None),
            p => match p.strip_prefix(':') {
                Some(port) => ("", Some(port)),
                None => return bad(),
            },
        }
    } else {
        match domain.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (domain, None),
        }
    };
    if let Some(port) = port
        && (port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return bad();
    }
    if !host.is_empty() || !domain.starts_with('[') {
        for label in host.split('.') {
            let b = label.as_bytes();
            let ok = !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-');
            if !ok {
                return bad();
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        Reference::parse(s).unwrap().to_string()
    }

    #[test]
    fn normalizes_as_docker_does() {
        assert_eq!(norm("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(norm("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(
            norm("docker.io/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            norm("index.docker.io/library/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(norm("org/app"), "docker.io/org/app:latest");
        assert_eq!(norm("localhost/app"), "localhost/app:latest");
        assert_eq!(norm("127.0.0.1:5000/a/b:v1"), "127.0.0.1:5000/a/b:v1");
        assert_eq!(norm("[::1]:5000/a"), "[::1]:5000/a:latest");
        assert_eq!(norm("Registry/app"), "Registry/app:latest");
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            norm(&format!("busybox@{d}")),
            format!("docker.io/library/busybox@{d}")
        );
        assert_eq!(
            norm(&format!("quay.io/o/a:t@{d}")),
            format!("quay.io/o/a:t@{d}")
        );
        let r = Reference::parse(&format!("busybox:t@{d}")).unwrap();
        assert_eq!(r.manifest_reference(), d);
        assert_eq!(
            Reference::parse("a/b_c__d-e--f.g").unwrap().repository(),
            "a/b_c__d-e--f.g"
        );
    }

    #[test]
    fn refuses_invalid_syntax() {
        for bad in [
            "",
            "Busybox",
            "busybox:",
            "busybox:-x",
            "busybox@sha256:abc",
            "busybox@md5:0000",
            "a//b",
            "-a",
            "a-",
            "a..b",
            "a___b",
            "host:port/x",
            "a/b@c@d",
            ":tag",
            "a b",
            "[::1/x",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} accepted");
            assert!(Reference::parse(bad).unwrap_err().is_usage());
        }
    }
}
