//! Resolving a user (`--user`, or an image's `USER`) inside a container's
//! root filesystem, as Docker does and Mesos does not (Mesos ignores
//! `USER` and resolves names on the host, reference images §2.4): the
//! image's own `/etc/passwd` and `/etc/group` decide, read beneath the
//! root filesystem (openat2(2) `RESOLVE_IN_ROOT`, so a symlinked
//! `/etc/passwd` cannot make the host's be read).
//!
//! Forms (runc's `GetExecUser`): `user`, `uid`, `user:group`, `uid:gid`
//! and the mixed ones. A name must exist in the image; a number need not
//! (then the gid is 0 unless given). Without an explicit group the
//! primary group comes from the passwd entry and the supplementary groups
//! from every group listing the user; with one, that group alone.

use std::io::Read;
use std::path::Path;

use crate::launch_info::ResolvedUser;
use crate::user::{entry_fields, parse_id, primary_first_unique};

/// A user resolved in an image, with its home directory (`HOME` for the
/// command when the environment has none, as Docker sets it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageUser {
    pub user: ResolvedUser,
    pub home: String,
}

/// The passwd and group files of an image are read up to this size.
const ID_FILE_LIMIT: u64 = 16 << 20;

/// Reads `/etc/passwd` and `/etc/group` of the root filesystem at `root`
/// and resolves `spec` there. Missing files count as empty.
pub fn resolve_in_rootfs(root: &Path, spec: &str) -> Result<ImageUser, String> {
    let fd = nix::fcntl::open(
        root,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| format!("failed to open the root filesystem {}: {e}", root.display()))?;
    let in_root = crate::rootfs::InRoot::new(fd);
    let read = |name: &str| -> Result<String, String> {
        let file = match in_root.read(Path::new(name)) {
            Ok(file) => file,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(String::new()),
            Err(e) => return Err(format!("failed to open {name} in {}: {e}", root.display())),
        };
        let mut bytes = Vec::new();
        file.take(ID_FILE_LIMIT)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("failed to read {name} in {}: {e}", root.display()))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    resolve(spec, &read("/etc/passwd")?, &read("/etc/group")?)
}

/// The pure part: `spec` against the contents of passwd and group files.
pub fn resolve(spec: &str, passwd: &str, group: &str) -> Result<ImageUser, String> {
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if user_part.is_empty() || group_part == Some("") {
        return Err(format!("invalid user '{spec}': expected USER[:GROUP]"));
    }
    let numeric = user_part.parse::<u32>().ok().filter(|&id| id != u32::MAX);
    let entry = passwd
        .lines()
        .filter_map(passwd_entry)
        .find(|e| e.name == user_part || Some(e.uid) == numeric);
    let (name, uid, mut gid, home) = match (entry, numeric) {
        (Some(e), _) => (e.name.to_owned(), e.uid, e.gid, e.home.to_owned()),
        (None, Some(uid)) => (uid.to_string(), uid, 0, "/".to_owned()),
        (None, None) => {
            return Err(format!(
                "unknown user '{user_part}' in the image's /etc/passwd"
            ));
        }
    };
    let groups = match group_part {
        Some(g) => {
            let numeric = g.parse::<u32>().ok().filter(|&id| id != u32::MAX);
            gid = group
                .lines()
                .filter_map(group_entry)
                .find(|e| e.name == g || Some(e.gid) == numeric)
                .map(|e| e.gid)
                .or(numeric)
                .ok_or_else(|| format!("unknown group '{g}' in the image's /etc/group"))?;
            vec![gid]
        }
        None => {
            let member_of = group
                .lines()
                .filter_map(group_entry)
                .filter(|e| e.members.split(',').any(|m| m.trim() == name))
                .map(|e| e.gid);
            primary_first_unique(gid, member_of)
        }
    };
    Ok(ImageUser {
        user: ResolvedUser {
            name,
            uid,
            gid,
            groups,
        },
        home: if home.is_empty() { "/".into() } else { home },
    })
}

struct PasswdLine<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

fn passwd_entry(line: &str) -> Option<PasswdLine<'_>> {
    let mut fields = entry_fields(line)?;
    let name = fields.next()?;
    let _password = fields.next()?;
    let uid = parse_id(fields.next()?)?;
    let gid = parse_id(fields.next()?)?;
    let _gecos = fields.next();
    let home = fields.next().unwrap_or("");
    Some(PasswdLine {
        name,
        uid,
        gid,
        home,
    })
}

struct GroupLine<'a> {
    name: &'a str,
    gid: u32,
    members: &'a str,
}

fn group_entry(line: &str) -> Option<GroupLine<'_>> {
    let mut fields = entry_fields(line)?;
    let name = fields.next()?;
    let _password = fields.next()?;
    let gid = parse_id(fields.next()?)?;
    Some(GroupLine {
        name,
        gid,
        members: fields.next().unwrap_or(""),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "\
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
www:x:33:33:www:/var/www:/bin/sh
nohome:x:40:41::
";
    const GROUP: &str = "\
root:x:0:
daemon:x:1:
www:x:33:
staff:x:50:www,daemon
audio:x:29: www
";

    fn user(spec: &str) -> Result<(String, u32, u32, Vec<u32>, String), String> {
        resolve(spec, PASSWD, GROUP)
            .map(|u| (u.user.name, u.user.uid, u.user.gid, u.user.groups, u.home))
    }

    #[test]
    fn names_and_uids_resolve_with_supplementary_groups() {
        assert_eq!(
            user("www").unwrap(),
            ("www".into(), 33, 33, vec![33, 50, 29], "/var/www".into())
        );
        assert_eq!(
            user("33").unwrap(),
            ("www".into(), 33, 33, vec![33, 50, 29], "/var/www".into())
        );
        assert_eq!(
            user("root").unwrap(),
            ("root".into(), 0, 0, vec![0], "/root".into())
        );
        assert_eq!(user("nohome").unwrap().4, "/");
    }

    #[test]
    fn uids_not_in_the_image_run_with_gid_0() {
        assert_eq!(
            user("4242").unwrap(),
            ("4242".into(), 4242, 0, vec![0], "/".into())
        );
        assert_eq!(
            user("4242:4343").unwrap().1..=user("4242:4343").unwrap().2,
            4242..=4343
        );
    }

    #[test]
    fn an_explicit_group_replaces_primary_and_supplementary_groups() {
        assert_eq!(
            user("www:staff").unwrap(),
            ("www".into(), 33, 50, vec![50], "/var/www".into())
        );
        assert_eq!(user("daemon:0").unwrap().3, vec![0]);
        assert_eq!(user("daemon:777").unwrap().2, 777);
    }

    #[test]
    fn unknown_names_and_bad_forms_are_one_line_errors() {
        assert_eq!(
            user("nobody").unwrap_err(),
            "unknown user 'nobody' in the image's /etc/passwd"
        );
        assert_eq!(
            user("www:wheel").unwrap_err(),
            "unknown group 'wheel' in the image's /etc/group"
        );
        for bad in ["", ":", "www:", ":staff"] {
            assert!(
                user(bad).unwrap_err().contains("expected USER[:GROUP]"),
                "{bad}"
            );
        }
        // No passwd file at all: numbers still work, names do not.
        assert_eq!(resolve("0", "", "").unwrap().user.uid, 0);
        assert!(resolve("root", "", "").is_err());
    }
}
