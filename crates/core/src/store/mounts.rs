//! Which mounts lie beneath a directory, read from
//! `/proc/self/mountinfo`, so that removal never deletes through one.

use std::fs;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use super::{StoreError, io_err};

/// Mount points at or beneath `path`, from `/proc/self/mountinfo`.
pub(super) fn mounts_beneath(path: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let info = Path::new("/proc/self/mountinfo");
    let text = fs::read_to_string(info).map_err(io_err("read", info))?;
    Ok(mount_points(&text)
        .filter(|m| m.starts_with(path))
        .collect())
}

/// The mount points (field 5) of a mountinfo text, with the kernel's octal
/// escapes (`\040` for a space, ...) undone.
pub(super) fn mount_points(mountinfo: &str) -> impl Iterator<Item = PathBuf> + '_ {
    mountinfo.lines().filter_map(|line| {
        let field = line.split(' ').nth(4)?;
        let raw = field.as_bytes();
        let mut out = Vec::with_capacity(raw.len());
        let mut i = 0;
        while i < raw.len() {
            let octal = raw.get(i + 1..i + 4).filter(|d| {
                raw[i] == b'\\'
                    && (b'0'..=b'3').contains(&d[0])
                    && d[1..].iter().all(|b| (b'0'..=b'7').contains(b))
            });
            match octal {
                Some(d) => {
                    out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                    i += 4;
                }
                None => {
                    out.push(raw[i]);
                    i += 1;
                }
            }
        }
        Some(PathBuf::from(std::ffi::OsString::from_vec(out)))
    })
}
