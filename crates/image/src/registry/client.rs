//! One pull's HTTP session with a registry: `ureq` (blocking, rustls
//! with the system's roots, no redirects followed by itself, connect and
//! per-read timeouts, names resolved without NSS), the
//! `WWW-Authenticate` flow (Bearer tokens, anonymous or with credentials,
//! and Basic), blob redirects followed without credentials to other hosts.

use std::io::Read;
use std::sync::Mutex;
use std::time::Duration;

use super::auth::{self, Credentials};
use crate::error::{Error, Result};
use phobos_core::resolve;

/// Where a registry is and how to speak to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `http://127.0.0.1:5000` or `https://registry-1.docker.io`.
    pub base: String,
    /// `host[:port]` (credential lookup, messages).
    pub host: String,
}

/// A registry session for one repository.
pub struct Session {
    agent: ureq::Agent,
    endpoint: Endpoint,
    repository: String,
    basic: Option<String>,
    authorization: Mutex<Option<String>>,
}

/// Accept header for manifests: every format Phobos reads, and schema 1
/// so that the registry says so instead of answering 404.
const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.v1+prettyjws;q=0.1";

/// The body of a registry error (`{"errors":[{"code","message"}]}`).
fn error_text(response: ureq::Response) -> String {
    let status = response.status();
    let mut body = Vec::new();
    let _ = response
        .into_reader()
        .take(64 * 1024)
        .read_to_end(&mut body);
    let message = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            let e = v.get("errors")?.get(0)?;
            Some(format!(
                "{}: {}",
                e.get("code")?.as_str().unwrap_or(""),
                e.get("message").and_then(|m| m.as_str()).unwrap_or("")
            ))
        })
        .unwrap_or_else(|| {
            String::from_utf8_lossy(&body)
                .chars()
                .take(200)
                .collect::<String>()
        });
    let message = message.split_whitespace().collect::<Vec<_>>().join(" ");
    format!(
        "status {status}{}",
        if message.is_empty() {
            String::new()
        } else {
            format!(" ({message})")
        }
    )
}

/// A fetched manifest: body, Content-Type, Docker-Content-Digest.
pub type Manifest = (Vec<u8>, String, Option<String>);

/// A response that is not a success: its status and message.
pub enum Failure {
    /// 404.
    NotFound(String),
    /// Anything else, already an error.
    Other(Error),
}

impl Session {
    /// A session with `timeout` for connecting and for every read.
    pub fn new(
        endpoint: Endpoint,
        repository: &str,
        credentials: &Credentials,
        timeout: Duration,
    ) -> Self {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(timeout)
            .timeout_read(timeout)
            .timeout_write(timeout)
            .redirects(0)
            .user_agent(concat!("phobos/", env!("CARGO_PKG_VERSION")))
            .resolver(resolve::resolve)
            .build();
        Session {
            agent,
            basic: credentials.for_registry(&endpoint.host).map(str::to_string),
            endpoint,
            repository: repository.to_string(),
            authorization: Mutex::new(None),
        }
    }

    /// The registry's `host[:port]`.
    pub fn host(&self) -> &str {
        &self.endpoint.host
    }

    fn registry_error(&self, message: String) -> Error {
        Error::Registry {
            registry: self.endpoint.host.clone(),
            message,
        }
    }

    /// GETs `url` (the registry's own, so credentials go along), answering
    /// a 401 once with the challenge's flow. 3xx responses are returned.
    fn get(&self, url: &str, accept: Option<&str>) -> Result<ureq::Response, Failure> {
        let mut challenged = false;
        loop {
            let mut request = self.agent.get(url);
            if let Some(accept) = accept {
                request = request.set("Accept", accept);
            }
            let current = self.authorization.lock().map(|a| a.clone()).unwrap_or(None);
            if let Some(value) = &current {
                request = request.set("Authorization", value);
            }
            match request.call() {
                Ok(response) => return Ok(response),
                Err(ureq::Error::Status(401, response)) if !challenged => {
                    challenged = true;
                    let header = response
                        .header("www-authenticate")
                        .unwrap_or("")
                        .to_string();
                    let value = self.answer(&header, url).map_err(Failure::Other)?;
                    if let Ok(mut a) = self.authorization.lock() {
                        *a = Some(value);
                    }
                }
                Err(ureq::Error::Status(404, response)) => {
                    return Err(Failure::NotFound(error_text(response)));
                }
                Err(ureq::Error::Status(_, response)) => {
                    return Err(Failure::Other(
                        self.registry_error(format!("GET {url}: {}", error_text(response))),
                    ));
                }
                Err(ureq::Error::Transport(t)) => {
                    return Err(Failure::Other(self.registry_error(transport(url, &t))));
                }
            }
        }
    }

    /// The `Authorization` value answering a challenge.
    fn answer(&self, header: &str, url: &str) -> Result<String> {
        let challenge = auth::parse_challenge(header).ok_or_else(|| {
            self.registry_error(format!(
                "GET {url}: 401 without a WWW-Authenticate challenge"
            ))
        })?;
        match challenge.scheme.as_str() {
            "basic" => match &self.basic {
                Some(b) => Ok(format!("Basic {b}")),
                None => Err(self.registry_error(format!(
                    "authentication required for {url}, and docker_config has no credentials for {}",
                    self.endpoint.host
                ))),
            },
            "bearer" => self.token(&challenge),
            other => Err(self.registry_error(format!("GET {url}: unsupported authentication scheme {other:?}"))),
        }
    }

    /// A Bearer token from the challenge's realm (distribution `token.md`).
    fn token(&self, challenge: &auth::Challenge) -> Result<String> {
        let realm = challenge
            .params
            .get("realm")
            .ok_or_else(|| self.registry_error("Bearer challenge without a realm".into()))?;
        if !realm.starts_with("https://") && !realm.starts_with("http://") {
            return Err(
                self.registry_error(format!("Bearer realm {realm:?} is not an http(s) URL"))
            );
        }
        let scope = challenge
            .params
            .get("scope")
            .cloned()
            .unwrap_or_else(|| format!("repository:{}:pull", self.repository));
        let mut url = format!(
            "{realm}{}scope={}",
            if realm.contains('?') { '&' } else { '?' },
            auth::encode_query(&scope)
        );
        if let Some(service) = challenge.params.get("service") {
            url.push_str(&format!("&service={}", auth::encode_query(service)));
        }
        let mut request = self.agent.get(&url);
        if let Some(b) = &self.basic {
            request = request.set("Authorization", &format!("Basic {b}"));
        }
        let response = request.call().map_err(|e| match e {
            ureq::Error::Status(_, r) => {
                self.registry_error(format!("token from {realm}: {}", error_text(r)))
            }
            ureq::Error::Transport(t) => {
                self.registry_error(format!("token from {realm}: {}", transport(&url, &t)))
            }
        })?;
        let body = crate::spec::read_limited(
            response.into_reader(),
            1 << 20,
            &format!("token from {realm}"),
        )?;
        let value: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| Error::malformed(format!("token from {realm}"), e))?;
        let token = value
            .get("token")
            .or_else(|| value.get("access_token"))
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Error::malformed(format!("token from {realm}"), "no token in the answer")
            })?;
        Ok(format!("Bearer {token}"))
    }

    /// GETs a manifest by tag or digest: (body, content type,
    /// Docker-Content-Digest). `None` when the registry has no such image.
    pub fn manifest(&self, reference: &str) -> Result<Option<Manifest>> {
        let url = format!(
            "{}/v2/{}/manifests/{reference}",
            self.endpoint.base, self.repository
        );
        let response = match self.get(&url, Some(ACCEPT)) {
            Ok(r) => r,
            Err(Failure::NotFound(_)) => return Ok(None),
            Err(Failure::Other(e)) => return Err(e),
        };
        if response.status() != 200 {
            return Err(self.registry_error(format!(
                "GET {url}: unexpected status {}",
                response.status()
            )));
        }
        let content_type = response.content_type().to_string();
        let digest = response.header("docker-content-digest").map(str::to_string);
        let body = crate::spec::read_limited(
            response.into_reader(),
            crate::spec::MAX_MANIFEST,
            &format!("manifest {url}"),
        )?;
        Ok(Some((body, content_type, digest)))
    }

    /// Opens a blob's stream, following up to five redirects; credentials
    /// go only to the registry's own origin.
    pub fn blob(&self, digest: &crate::Digest) -> Result<Box<dyn Read + Send + Sync + 'static>> {
        let mut url = format!(
            "{}/v2/{}/blobs/{digest}",
            self.endpoint.base, self.repository
        );
        for _ in 0..6 {
            let own = url.starts_with(&format!("{}/", self.endpoint.base));
            let result = if own {
                self.get(&url, None)
            } else {
                match self.agent.get(&url).call() {
                    Ok(r) => Ok(r),
                    Err(ureq::Error::Status(_, r)) => Err(Failure::Other(
                        self.registry_error(format!("GET {url}: {}", error_text(r))),
                    )),
                    Err(ureq::Error::Transport(t)) => {
                        Err(Failure::Other(self.registry_error(transport(&url, &t))))
                    }
                }
            };
            let response = match result {
                Ok(r) => r,
                Err(Failure::NotFound(text)) => {
                    return Err(self.registry_error(format!("blob {digest} not found ({text})")));
                }
                Err(Failure::Other(e)) => return Err(e),
            };
            match response.status() {
                200 => return Ok(response.into_reader()),
                301 | 302 | 303 | 307 | 308 => {
                    let location = response.header("location").ok_or_else(|| {
                        self.registry_error(format!("GET {url}: redirect without a Location"))
                    })?;
                    url = absolute(&url, location);
                }
                other => {
                    return Err(
                        self.registry_error(format!("GET {url}: unexpected status {other}"))
                    );
                }
            }
        }
        Err(self.registry_error(format!("blob {digest}: too many redirects")))
    }
}

/// `location` made absolute against `url`.
fn absolute(url: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.to_string();
    }
    let scheme_end = url.find("://").map(|i| i + 3).unwrap_or(0);
    let origin_end = url[scheme_end..]
        .find('/')
        .map(|i| scheme_end + i)
        .unwrap_or(url.len());
    if location.starts_with('/') {
        format!("{}{location}", &url[..origin_end])
    } else {
        let dir_end = url
            .rfind('/')
            .filter(|i| *i >= origin_end)
            .unwrap_or(origin_end);
        format!("{}/{location}", &url[..dir_end])
    }
}

/// `GET url: what went wrong`, once (ureq's own text repeats the URL).
fn transport(url: &str, t: &ureq::Transport) -> String {
    let text = t.to_string();
    let text = text.strip_prefix(&format!("{url}: ")).unwrap_or(&text);
    format!("GET {url}: {}", one_line(text))
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_locations() {
        assert_eq!(
            absolute("http://a:1/v2/x/blobs/d", "https://cdn/b?s=1"),
            "https://cdn/b?s=1"
        );
        assert_eq!(
            absolute("http://a:1/v2/x/blobs/d", "/store/b"),
            "http://a:1/store/b"
        );
        assert_eq!(
            absolute("http://a:1/v2/x/blobs/d", "e"),
            "http://a:1/v2/x/blobs/e"
        );
    }
}
