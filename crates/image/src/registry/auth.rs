//! Registry credentials (a Docker client `config.json`) and the
//! `WWW-Authenticate` challenge grammar (RFC 7235 auth-params).

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Deserialize;

use crate::error::{Error, Result};

/// Credentials by registry, from a Docker client `config.json`
/// (`{"auths": {"host[:port]": {"auth": base64("user:password")}}}`, or
/// `username`/`password` fields; the legacy `.dockercfg` map without
/// `auths` too). `credsStore` and `credHelpers` run programs and are not
/// used.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    entries: Vec<(String, String)>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// The `host[:port]` of a config key such as `https://index.docker.io/v1/`.
fn key_host(key: &str) -> String {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    rest.split('/').next().unwrap_or("").to_ascii_lowercase()
}

fn is_docker_hub(host: &str) -> bool {
    host == "docker.io" || host.ends_with(".docker.io")
}

impl Credentials {
    /// No credentials.
    pub fn none() -> Self {
        Credentials::default()
    }

    /// From the JSON text of a Docker client config; `origin` names it in
    /// errors.
    pub fn from_json(text: &str, origin: &str) -> Result<Self> {
        let what = || format!("docker config {origin}");
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| Error::malformed(what(), e))?;
        let map = match value.get("auths") {
            Some(auths) => auths.clone(),
            None => {
                let mut legacy = value.clone();
                if let Some(obj) = legacy.as_object_mut() {
                    obj.retain(|_, v| v.is_object());
                }
                legacy
            }
        };
        let auths: BTreeMap<String, Entry> =
            serde_json::from_value(map).map_err(|e| Error::malformed(what(), e))?;
        let mut entries = Vec::new();
        for (key, entry) in auths {
            let auth = match (entry.auth, entry.username, entry.password) {
                (Some(auth), _, _) if !auth.is_empty() => auth,
                (_, Some(user), Some(password)) => {
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
                }
                _ => continue,
            };
            entries.push((key_host(&key), auth));
        }
        Ok(Credentials { entries })
    }

    /// From `docker_config`: a path, or the JSON itself when it starts with `{`.
    pub fn from_setting(setting: &str) -> Result<Self> {
        if setting.trim_start().starts_with('{') {
            return Credentials::from_json(setting, "(inline)");
        }
        let text = std::fs::read_to_string(setting).map_err(|e| Error::io("read", setting, e))?;
        Credentials::from_json(&text, setting)
    }

    /// The base64 `user:password` for a registry `host[:port]`; Docker
    /// Hub's keys match any Docker Hub host.
    pub fn for_registry(&self, host: &str) -> Option<&str> {
        let host = host.to_ascii_lowercase();
        self.entries
            .iter()
            .find(|(k, _)| *k == host)
            .or_else(|| {
                is_docker_hub(&host)
                    .then(|| self.entries.iter().find(|(k, _)| is_docker_hub(k)))
                    .flatten()
            })
            .map(|(_, auth)| auth.as_str())
    }
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `bearer` or `basic` (lower case).
    pub scheme: String,
    /// The auth-params (keys lower case).
    pub params: BTreeMap<String, String>,
}

/// Parses `Bearer realm="…",service="…",scope="…"`.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let mut params = BTreeMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String =
            std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ',')).collect();
        if key.is_empty() {
            break;
        }
        if chars.next() != Some('=') {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ','))
                .collect::<String>()
                .trim()
                .to_string();
        }
        params.insert(key.trim().to_ascii_lowercase(), value);
    }
    Some(Challenge {
        scheme: scheme.to_ascii_lowercase(),
        params,
    })
}

/// Percent-encodes a query value.
pub fn encode_query(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull,push""#,
        )
        .unwrap();
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.params["realm"], "https://auth.docker.io/token");
        assert_eq!(c.params["scope"], "repository:a/b:pull,push");
        let c = parse_challenge(r#"Basic realm="Registry Realm""#).unwrap();
        assert_eq!(
            (c.scheme.as_str(), c.params["realm"].as_str()),
            ("basic", "Registry Realm")
        );
        assert_eq!(
            encode_query("repository:a/b:pull"),
            "repository%3Aa%2Fb%3Apull"
        );
    }

    #[test]
    fn reads_docker_config() {
        let c = Credentials::from_json(
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dTpw"},"127.0.0.1:5000":{"username":"u","password":"p"},"x":{}},"credsStore":"desktop"}"#,
            "t",
        )
        .unwrap();
        assert_eq!(c.for_registry("registry-1.docker.io"), Some("dTpw"));
        assert_eq!(c.for_registry("127.0.0.1:5000"), Some("dTpw"));
        assert_eq!(c.for_registry("127.0.0.1:5001"), None);
        let legacy = Credentials::from_json(r#"{"reg.lan":{"auth":"eA=="}}"#, "t").unwrap();
        assert_eq!(legacy.for_registry("reg.lan"), Some("eA=="));
        assert!(Credentials::from_json("{", "t").is_err());
    }
}
