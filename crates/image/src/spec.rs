//! The JSON documents of the OCI image spec and Docker's image formats:
//! manifests (Docker schema 2, OCI), indexes and manifest lists, image
//! configs, `docker save`'s `manifest.json`.

use std::collections::BTreeMap;
use std::io::Read;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{Error, Result};

/// Docker schema 2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker schema 1 media types (refused).
pub const SCHEMA1: &[&str] = &[
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
];

/// Largest manifest or index accepted (distribution's own limit is 4 MiB).
pub const MAX_MANIFEST: u64 = 4 << 20;
/// Largest image config accepted.
pub const MAX_CONFIG: u64 = 16 << 20;

/// A content descriptor.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// The media type.
    #[serde(default)]
    pub media_type: String,
    /// The content's digest.
    pub digest: Digest,
    /// The content's size in bytes.
    #[serde(default)]
    pub size: u64,
    /// For index entries.
    #[serde(default)]
    pub platform: Option<Platform>,
    /// Annotations (the OCI layout's `org.opencontainers.image.ref.name`).
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// An index entry's platform.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Platform {
    /// `amd64`, `arm64`, ...
    pub architecture: String,
    /// `linux`.
    pub os: String,
    /// `v8`, ...
    #[serde(default)]
    pub variant: Option<String>,
}

/// A manifest, an index or a manifest list: whichever fields are there.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnyManifest {
    /// 1 or 2.
    #[serde(default)]
    pub schema_version: Option<u32>,
    /// The media type, when the document names it.
    #[serde(default)]
    pub media_type: Option<String>,
    /// Manifests: the config.
    #[serde(default)]
    pub config: Option<Descriptor>,
    /// Manifests: the layers, lowest first.
    #[serde(default)]
    pub layers: Option<Vec<Descriptor>>,
    /// Indexes: the manifests.
    #[serde(default)]
    pub manifests: Option<Vec<Descriptor>>,
    /// Schema 1's layer list.
    #[serde(default, rename = "fsLayers")]
    pub fs_layers: Option<serde_json::Value>,
}

/// A parsed manifest or index.
#[derive(Debug, Clone)]
pub enum Parsed {
    /// An image manifest: config and layers.
    Manifest {
        /// The config blob.
        config: Descriptor,
        /// The layers, lowest first.
        layers: Vec<Descriptor>,
    },
    /// An index or manifest list.
    Index(Vec<Descriptor>),
}

/// Parses a manifest or index; `content_type` is the HTTP Content-Type or
/// the descriptor's media type, when known.
pub fn parse_manifest(bytes: &[u8], content_type: Option<&str>, what: &str) -> Result<Parsed> {
    let ct = content_type.map(|c| c.split(';').next().unwrap_or("").trim());
    if let Some(ct) = ct
        && SCHEMA1.contains(&ct)
    {
        return Err(Error::Unsupported {
            what: format!("{what}: Docker schema 1 manifest ({ct})"),
        });
    }
    let m: AnyManifest = serde_json::from_slice(bytes).map_err(|e| Error::malformed(what, e))?;
    if m.schema_version == Some(1) || m.fs_layers.is_some() {
        return Err(Error::Unsupported {
            what: format!("{what}: Docker schema 1 manifest"),
        });
    }
    if m.schema_version != Some(2) {
        return Err(Error::malformed(what, "schemaVersion is not 2"));
    }
    let media = m.media_type.as_deref().or(ct).unwrap_or("");
    if let Some(manifests) = m.manifests {
        if media == DOCKER_MANIFEST || media == OCI_MANIFEST {
            return Err(Error::malformed(
                what,
                format!("{media} with a manifests list"),
            ));
        }
        return Ok(Parsed::Index(manifests));
    }
    match (m.config, m.layers) {
        (Some(config), Some(layers)) => {
            if media == DOCKER_LIST || media == OCI_INDEX {
                return Err(Error::malformed(what, format!("{media} without manifests")));
            }
            Ok(Parsed::Manifest { config, layers })
        }
        _ => Err(Error::malformed(
            what,
            "neither config and layers nor manifests",
        )),
    }
}

/// Picks linux/amd64 (or the host's architecture) from an index.
pub fn pick_platform<'a>(manifests: &'a [Descriptor], what: &str) -> Result<&'a Descriptor> {
    let arch = host_architecture();
    let platforms = || {
        manifests
            .iter()
            .filter_map(|d| d.platform.as_ref())
            .map(|p| format!("{}/{}", p.os, p.architecture))
            .collect::<Vec<_>>()
            .join(", ")
    };
    manifests
        .iter()
        .find(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| p.os == "linux" && p.architecture == arch)
        })
        .or_else(|| {
            // An OCI layout's index often has one manifest without a platform.
            (manifests.len() == 1 && manifests[0].platform.is_none()).then(|| &manifests[0])
        })
        .ok_or_else(|| Error::Unsupported {
            what: format!("{what}: no linux/{arch} image among [{}]", platforms()),
        })
}

/// The host's architecture in Go's names.
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

/// What the container runs with, from the image config (Docker's names in
/// the blob, `config.{Entrypoint,Cmd,Env,WorkingDir,User}`): the one
/// struct the merge with a launch's command reads.
pub use phobos_core::ImageConfig;

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

/// The image config blob, the parts Phobos reads.
#[derive(Debug, Clone, Deserialize)]
pub struct ConfigBlob {
    /// The runtime config.
    #[serde(default)]
    pub config: Option<ImageConfig>,
    /// The layers' diff IDs.
    pub rootfs: RootFs,
}

/// `rootfs` of an image config.
#[derive(Debug, Clone, Deserialize)]
pub struct RootFs {
    /// Digests of the uncompressed layer tars, lowest first.
    pub diff_ids: Vec<Digest>,
}

/// Parses an image config and checks it against the manifest's layers.
pub fn parse_config(bytes: &[u8], layers: usize, what: &str) -> Result<ConfigBlob> {
    let c: ConfigBlob = serde_json::from_slice(bytes).map_err(|e| Error::malformed(what, e))?;
    if c.rootfs.diff_ids.len() != layers {
        return Err(Error::malformed(
            what,
            format!("{} diff_ids for {layers} layers", c.rootfs.diff_ids.len()),
        ));
    }
    Ok(c)
}

/// One entry of `docker save`'s `manifest.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct SaveEntry {
    /// Path of the config in the archive.
    #[serde(rename = "Config")]
    pub config: String,
    /// The image's names.
    #[serde(rename = "RepoTags", default, deserialize_with = "null_as_empty")]
    pub repo_tags: Vec<String>,
    /// Paths of the layer tars, lowest first.
    #[serde(rename = "Layers")]
    pub layers: Vec<String>,
}

/// Reads at most `limit` bytes, failing beyond it.
pub fn read_limited(reader: impl Read, limit: u64, what: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    reader
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| Error::malformed(what, e))?;
    if out.len() as u64 > limit {
        return Err(Error::malformed(what, format!("larger than {limit} bytes")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_manifests_and_refuses_schema1() {
        let d = Digest::of(b"x");
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"c","digest":"{d}","size":1}},"layers":[{{"mediaType":"l","digest":"{d}","size":1}}]}}"#
        );
        assert!(
            matches!(parse_manifest(m.as_bytes(), None, "m").unwrap(), Parsed::Manifest { layers, .. } if layers.len() == 1)
        );
        let i = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{d}","size":1,"platform":{{"architecture":"arm64","os":"linux"}}}},{{"digest":"{d}","size":1,"platform":{{"architecture":"{}","os":"linux"}}}}]}}"#,
            host_architecture()
        );
        let Parsed::Index(list) = parse_manifest(i.as_bytes(), Some(OCI_INDEX), "i").unwrap()
        else {
            panic!("not an index")
        };
        assert_eq!(
            pick_platform(&list, "i")
                .unwrap()
                .platform
                .as_ref()
                .unwrap()
                .architecture,
            host_architecture()
        );
        let e = parse_manifest(br#"{"schemaVersion":1,"fsLayers":[]}"#, None, "old").unwrap_err();
        assert!(e.to_string().contains("schema 1"), "{e}");
        assert!(parse_manifest(b"{", None, "m").is_err());
        assert!(parse_manifest(b"{\"schemaVersion\":2}", None, "m").is_err());
    }

    #[test]
    fn reads_runtime_config_with_nulls() {
        let d = Digest::of(b"x");
        let c = format!(
            r#"{{"config":{{"Entrypoint":null,"Cmd":["sh"],"Env":null,"WorkingDir":"/w","User":null}},"rootfs":{{"type":"layers","diff_ids":["{d}"]}}}}"#
        );
        let c = parse_config(c.as_bytes(), 1, "c").unwrap();
        let cfg = c.config.unwrap();
        assert_eq!(cfg.cmd, Some(vec!["sh".to_string()]));
        assert_eq!(cfg.working_dir.as_deref(), Some("/w"));
        assert!(cfg.env.is_none() && cfg.user.is_none() && cfg.entrypoint.is_none());
        assert!(parse_config(c_bad().as_bytes(), 2, "c").is_err());
    }

    fn c_bad() -> String {
        r#"{"rootfs":{"diff_ids":[]}}"#.to_string()
    }
}
