//! Test images written by the tests themselves: layers as tar streams, OCI
//! layouts, `docker save` archives.
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;

use sha2_free::sha256_hex;

/// One member of a test layer.
pub enum E<'a> {
    Dir(&'a str, u32),
    File(&'a str, u32, &'a [u8]),
    /// A file with owner uid/gid and PAX xattrs.
    FileOwned(&'a str, u32, u32, u32, &'a [u8], Vec<(&'a str, &'a [u8])>),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    Char(&'a str, u32, u32),
    Fifo(&'a str),
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h
}

/// A plain tar of the members, names written as given (no checks, so
/// hostile names go in verbatim).
pub fn layer(entries: &[E<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        match e {
            E::Dir(name, mode) => {
                let mut h = header(tar::EntryType::Directory, *mode, 0);
                raw_name(&mut h, name);
                h.set_cksum();
                b.append(&h, &[][..]).unwrap();
            }
            E::File(name, mode, data) => {
                let mut h = header(tar::EntryType::Regular, *mode, data.len() as u64);
                raw_name(&mut h, name);
                h.set_cksum();
                b.append(&h, *data).unwrap();
            }
            E::FileOwned(name, mode, uid, gid, data, xattrs) => {
                if !xattrs.is_empty() {
                    let pax: Vec<(String, &[u8])> = xattrs
                        .iter()
                        .map(|(k, v)| (format!("SCHILY.xattr.{k}"), *v))
                        .collect();
                    b.append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), *v)))
                        .unwrap();
                }
                let mut h = header(tar::EntryType::Regular, *mode, data.len() as u64);
                h.set_uid(*uid as u64);
                h.set_gid(*gid as u64);
                raw_name(&mut h, name);
                h.set_cksum();
                b.append(&h, *data).unwrap();
            }
            E::Symlink(name, target) | E::Hardlink(name, target) => {
                let kind = if matches!(e, E::Symlink(..)) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                };
                let mut h = header(kind, 0o777, 0);
                raw_name(&mut h, name);
                let old = h.as_old_mut();
                old.linkname = [0; 100];
                old.linkname[..target.len()].copy_from_slice(target.as_bytes());
                h.set_cksum();
                b.append(&h, &[][..]).unwrap();
            }
            E::Char(name, major, minor) => {
                let mut h = header(tar::EntryType::Char, 0o666, 0);
                h.set_device_major(*major).unwrap();
                h.set_device_minor(*minor).unwrap();
                raw_name(&mut h, name);
                h.set_cksum();
                b.append(&h, &[][..]).unwrap();
            }
            E::Fifo(name) => {
                let mut h = header(tar::EntryType::Fifo, 0o644, 0);
                raw_name(&mut h, name);
                h.set_cksum();
                b.append(&h, &[][..]).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

fn raw_name(h: &mut tar::Header, name: &str) {
    let old = h.as_old_mut();
    old.name = [0; 100];
    old.name[..name.len()].copy_from_slice(name.as_bytes());
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn digest(data: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(data))
}

/// An image config with the given diff IDs and runtime config.
pub fn config(diff_ids: &[String], runtime: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": runtime,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap()
}

/// Writes an OCI image layout into `dir` (gzip layers) and returns the
/// manifest's digest. `tar_layers` are uncompressed layer tars.
pub fn oci_layout(
    dir: &Path,
    tar_layers: &[Vec<u8>],
    runtime: serde_json::Value,
    ref_name: &str,
) -> String {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |data: &[u8]| {
        let d = digest(data);
        std::fs::write(blobs.join(&d[7..]), data).unwrap();
        d
    };
    let diff_ids: Vec<String> = tar_layers.iter().map(|l| digest(l)).collect();
    let mut layers = Vec::new();
    for l in tar_layers {
        let gz = gzip(l);
        let d = put(&gz);
        layers.push(serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": gz.len()}));
    }
    let cfg = config(&diff_ids, runtime);
    let cfg_d = put(&cfg);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg_d, "size": cfg.len()},
        "layers": layers,
    }))
    .unwrap();
    let m_d = put(&manifest);
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": m_d, "size": manifest.len(),
                       "annotations": {"org.opencontainers.image.ref.name": ref_name}}],
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    m_d
}

/// Tars a directory tree (as an archive file at `out`).
pub fn tar_dir(dir: &Path, out: &Path) {
    let mut b = tar::Builder::new(std::fs::File::create(out).unwrap());
    b.follow_symlinks(false);
    b.append_dir_all(".", dir).unwrap();
    b.finish().unwrap();
}

/// A classic `docker save` archive of one image with uncompressed layers.
pub fn docker_archive(
    out: &Path,
    tar_layers: &[Vec<u8>],
    runtime: serde_json::Value,
    tags: &[&str],
) {
    let mut b = tar::Builder::new(std::fs::File::create(out).unwrap());
    let diff_ids: Vec<String> = tar_layers.iter().map(|l| digest(l)).collect();
    let cfg = config(&diff_ids, runtime);
    let cfg_name = format!("{}.json", &digest(&cfg)[7..]);
    let mut add = |name: &str, data: &[u8]| {
        let mut h = header(tar::EntryType::Regular, 0o644, data.len() as u64);
        h.set_path(name).unwrap();
        h.set_cksum();
        b.append(&h, data).unwrap();
    };
    add(&cfg_name, &cfg);
    let mut names = Vec::new();
    for (i, l) in tar_layers.iter().enumerate() {
        let name = format!("layer{i}/layer.tar");
        add(&name, l);
        names.push(name);
    }
    let manifest = serde_json::json!([{"Config": cfg_name, "RepoTags": tags, "Layers": names}]);
    add("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    b.finish().unwrap();
}

mod sha2_free {
    /// sha256 through the library's own Digest type.
    pub fn sha256_hex(data: &[u8]) -> String {
        phobos_image::Digest::of(data).hex().to_string()
    }
}

/// security.capability v2 for cap_net_raw (bit 13), permitted + effective.
pub const CAP_NET_RAW: &[u8] = &[
    0, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

/// The test image: a deleted dir, an opaque dir, a hard link, a replaced
/// file, a symlink, a setuid file, a file capability, a device node.
pub fn test_layers() -> Vec<Vec<u8>> {
    let l0 = layer(&[
        E::Dir("bin", 0o755),
        E::File("bin/tool", 0o755, b"#!/bin/sh\necho tool\n"),
        E::Hardlink("bin/tool-link", "bin/tool"),
        E::FileOwned("bin/su", 0o4755, 0, 0, b"setuid", vec![]),
        E::FileOwned(
            "bin/ping",
            0o755,
            0,
            0,
            b"ping",
            vec![("security.capability", CAP_NET_RAW)],
        ),
        E::FileOwned(
            "home/user/file",
            0o640,
            1000,
            1000,
            b"mine",
            vec![("user.note", b"kept")],
        ),
        E::Dir("gone", 0o755),
        E::File("gone/x", 0o644, b"x"),
        E::Dir("opq", 0o755),
        E::File("opq/a", 0o644, b"a"),
        E::File("opq/b", 0o644, b"b"),
        E::File("replaced", 0o644, b"old"),
        E::Symlink("sh-link", "/bin/tool"),
        E::Char("dev/null", 1, 3),
        E::Fifo("fifo"),
    ]);
    let l1 = layer(&[
        E::File(".wh.gone", 0o644, b""),
        E::File("opq/c", 0o644, b"c"),
        E::File("opq/.wh..wh..opq", 0o644, b""),
        E::File("replaced", 0o600, b"new"),
        E::File("bin/.wh.tool-link", 0o644, b""),
    ]);
    vec![l0, l1]
}

#[path = "../../../../tests/support/refusing_port.rs"]
pub mod refusing_port;
