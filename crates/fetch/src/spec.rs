//! The `--fetch URI[,executable][,extract=false][,cache][,output_file=NAME]`
//! spec (Mesos `CommandInfo.URI`) and which scheme a URI uses.

use std::path::{Component, Path};

/// One URI to fetch (the type every crate shares, from `phobos_core`).
pub use phobos_core::FetchUri as Uri;

/// How a URI is fetched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
    /// `file://` or a plain path.
    Local,
}

/// A spec or URI refused before anything is fetched.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpecError {
    #[error("--fetch spec {0:?}: empty URI")]
    EmptyUri(String),
    #[error(
        "--fetch spec {spec:?}: unknown option {option:?} (known: executable, extract=false, cache, output_file=NAME)"
    )]
    UnknownOption { spec: String, option: String },
    #[error("URI {uri:?}: scheme {scheme:?} is not supported (http, https, file:// and paths are)")]
    UnsupportedScheme { uri: String, scheme: String },
    #[error("URI {0:?}: contains a NUL byte")]
    Nul(String),
    #[error("URI {0:?}: no host")]
    NoHost(String),
    #[error("URI {0:?}: a file:// URI names a local absolute path (file:///path)")]
    BadFileUri(String),
    #[error("output_file {0:?}: must be a relative path without '..' inside the sandbox")]
    BadOutputFile(String),
    #[error("URI {0:?}: no file name in it; give output_file=NAME")]
    NoName(String),
}

/// Parses a `--fetch URI[,executable][,extract=false][,cache][,output_file=NAME]`
/// spec and checks the URI (see [`UriExt::check`]).
pub fn parse_spec(spec: &str) -> Result<Uri, SpecError> {
    let mut parts = spec.split(',');
    // Leading whitespace is trimmed (MESOS-2862).
    let value = parts.next().unwrap_or("").trim_start();
    if value.is_empty() {
        return Err(SpecError::EmptyUri(spec.to_owned()));
    }
    let mut uri = Uri::new(value);
    for option in parts {
        match option {
            "executable" | "executable=true" => uri.executable = true,
            "extract=false" => uri.extract = false,
            "extract" | "extract=true" => uri.extract = true,
            "cache" | "cache=true" => uri.cache = true,
            "cache=false" => uri.cache = false,
            o if o.starts_with("output_file=") => {
                uri.output_file = Some(o["output_file=".len()..].to_owned());
            }
            o => {
                return Err(SpecError::UnknownOption {
                    spec: spec.to_owned(),
                    option: o.to_owned(),
                });
            }
        }
    }
    uri.check()?;
    Ok(uri)
}

/// Checking a URI and naming its file.
pub trait UriExt {
    /// Checks the URI's scheme and the file name it gives, without
    /// fetching (what the ECP's `CommandInfo.uris` also goes through).
    fn check(&self) -> Result<Scheme, SpecError>;
    /// The path of the fetched file relative to the sandbox: `output_file`,
    /// or the URI path's last component (query and fragment dropped, unlike
    /// Mesos's MESOS-1686).
    fn name(&self) -> Result<String, SpecError>;
}

impl UriExt for Uri {
    /// Checks the URI's scheme and the file name it gives, without
    /// fetching (what the ECP's `CommandInfo.uris` also goes through).
    fn check(&self) -> Result<Scheme, SpecError> {
        if self.value.trim_start().is_empty() {
            return Err(SpecError::EmptyUri(self.value.clone()));
        }
        let scheme = scheme(&self.value)?;
        self.name()?;
        Ok(scheme)
    }

    /// The path of the fetched file relative to the sandbox: `output_file`,
    /// or the URI path's last component (query and fragment dropped, unlike
    /// Mesos's MESOS-1686).
    fn name(&self) -> Result<String, SpecError> {
        if let Some(out) = &self.output_file {
            if !relative_inside(Path::new(out)) || out.contains('\0') {
                return Err(SpecError::BadOutputFile(out.clone()));
            }
            return Ok(out.clone());
        }
        let value = self.value.trim_start();
        let path = match scheme(value)? {
            Scheme::Local => local_path(value)?,
            Scheme::Http | Scheme::Https => {
                let rest = value.split_once("://").map_or("", |(_, r)| r);
                let rest = rest.split(['?', '#']).next().unwrap_or("");
                rest.split_once('/').map_or("", |(_, p)| p).to_owned()
            }
        };
        let base = path.rsplit('/').next().unwrap_or("");
        if base.is_empty() || base == "." || base == ".." {
            return Err(SpecError::NoName(self.value.clone()));
        }
        Ok(base.to_owned())
    }
}

/// True for a non-empty relative path with no `..` (nor root) component.
pub(crate) fn relative_inside(path: &Path) -> bool {
    path.components().next().is_some()
        && path
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        && path.components().any(|c| matches!(c, Component::Normal(_)))
}

/// The scheme of `value` (leading whitespace ignored).
pub fn scheme(value: &str) -> Result<Scheme, SpecError> {
    let value = value.trim_start();
    if value.contains('\0') {
        return Err(SpecError::Nul(value.to_owned()));
    }
    let Some((scheme, rest)) = value.split_once("://") else {
        return Ok(Scheme::Local);
    };
    let is_scheme = !scheme.is_empty()
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !is_scheme {
        return Ok(Scheme::Local);
    }
    match scheme.to_ascii_lowercase().as_str() {
        "http" | "https" => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            if host.is_empty() {
                return Err(SpecError::NoHost(value.to_owned()));
            }
            Ok(if scheme.eq_ignore_ascii_case("https") {
                Scheme::Https
            } else {
                Scheme::Http
            })
        }
        "file" => local_path(value).map(|_| Scheme::Local),
        _ => Err(SpecError::UnsupportedScheme {
            uri: value.to_owned(),
            scheme: scheme.to_owned(),
        }),
    }
}

/// The local path a `file://` URI or a plain path names.
pub(crate) fn local_path(value: &str) -> Result<String, SpecError> {
    let value = value.trim_start();
    let Some(rest) = value
        .strip_prefix("file://")
        .or_else(|| value.strip_prefix("FILE://"))
    else {
        return Ok(value.to_owned());
    };
    // `file:///abs` or `file://localhost/abs` (the host is stripped).
    let rest = rest.strip_prefix("localhost").unwrap_or(rest);
    if !rest.starts_with('/') {
        return Err(SpecError::BadFileUri(value.to_owned()));
    }
    Ok(rest.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_options() {
        let u = parse_spec("http://h/a.tgz,executable,extract=false,output_file=bin/x").unwrap();
        assert_eq!(u.value, "http://h/a.tgz");
        assert!(u.executable && !u.extract);
        assert_eq!(u.name().unwrap(), "bin/x");
        assert_eq!(parse_spec("  /tmp/f").unwrap().value, "/tmp/f");
    }

    #[test]
    fn refuses_bad_specs() {
        assert_eq!(parse_spec(""), Err(SpecError::EmptyUri(String::new())));
        assert_eq!(
            parse_spec(",executable"),
            Err(SpecError::EmptyUri(",executable".into()))
        );
        assert!(matches!(
            parse_spec("/x,exec"),
            Err(SpecError::UnknownOption { option, .. }) if option == "exec"
        ));
        for bad in ["hdfs://nn/x", "s3://b/k", "ftp://h/f"] {
            let e = parse_spec(bad).unwrap_err();
            assert!(
                matches!(e, SpecError::UnsupportedScheme { .. }),
                "{bad}: {e}"
            );
            assert_eq!(e.to_string().lines().count(), 1);
        }
        assert!(matches!(parse_spec("http:///x"), Err(SpecError::NoHost(_))));
        assert!(matches!(
            parse_spec("file://host/x"),
            Err(SpecError::BadFileUri(_))
        ));
        for out in ["../x", "/etc/x", "a/../../x", ""] {
            let spec = format!("/f,output_file={out}");
            assert!(
                matches!(parse_spec(&spec), Err(SpecError::BadOutputFile(_))),
                "{spec}"
            );
        }
        assert!(matches!(parse_spec("http://h/"), Err(SpecError::NoName(_))));
    }

    #[test]
    fn names_drop_query_and_host() {
        assert_eq!(
            Uri::new("http://h:1/d/a.tgz?x=1#f").name().unwrap(),
            "a.tgz"
        );
        assert_eq!(Uri::new("file:///tmp/b.tar").name().unwrap(), "b.tar");
        assert_eq!(Uri::new("file://localhost/tmp/c").name().unwrap(), "c");
        assert_eq!(Uri::new("rel/d.gz").name().unwrap(), "d.gz");
        assert_eq!(scheme("HTTPS://h/x").unwrap(), Scheme::Https);
    }
}
