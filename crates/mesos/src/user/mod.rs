//! Resolving `--user` (a name or a numeric uid) to uid, gid and
//! supplementary groups, before anything is forked.
//!
//! The release binary is statically linked against glibc, and a static
//! glibc program must never call NSS in-process (getpwnam(3),
//! getgrouplist(3), ...): NSS dlopens modules such as libnss_systemd.so
//! into the process, and in a static binary that crashes. So, as runc's
//! libcontainer/user does, /etc/passwd and /etc/group are read and parsed
//! directly. Users and groups that live only in other sources (LDAP,
//! sssd, systemd, ...) are reached through glibc's `getent`, which runs
//! NSS in its own dynamically linked process; /etc/nsswitch.conf tells
//! whether such sources exist at all, so a files-only host never spawns
//! anything. /etc/passwd is always consulted first, so a user found there
//! costs no `getent passwd` even when other sources are configured;
//! supplementary groups come from `getent initgroups` (about 1.5 ms a
//! launch) whenever the group database names a source besides `files`,
//! except `systemd` for a user of /etc/passwd: nss-systemd only knows the
//! memberships of its own (userdb and dynamic) users, and it is configured
//! by default on Debian and Ubuntu, where it would tax every launch.
//!
//! Everything that interprets text is a pure function over `&str`; the
//! `Host` trait is the only part that touches the system.

mod entries;
#[cfg(test)]
mod fixtures;
mod getent;
mod nsswitch;

use std::io;

use crate::launch_info::ResolvedUser;

use entries::{
    PasswdEntry, UserSpec, find_passwd_entry, first_passwd_entry, groups_from_group_file,
    is_plausible_user_name, parse_group_line, parse_initgroups,
};
pub(crate) use entries::{entry_fields, parse_id, primary_first_unique};
use getent::{Getent, Host, System};
use nsswitch::NssSources;

const PASSWD_PATH: &str = "/etc/passwd";
const GROUP_PATH: &str = "/etc/group";
const NSSWITCH_PATH: &str = "/etc/nsswitch.conf";

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("unknown user '{0}'")]
    Unknown(String),
    #[error("unknown group '{group}' in user '{spec}'")]
    UnknownGroup { spec: String, group: String },
    #[error("invalid user '{0}': expected USER, UID, USER:GROUP or UID:GID")]
    Invalid(String),
    #[error("failed to look up user '{user}': {source}")]
    Lookup {
        user: String,
        #[source]
        source: io::Error,
    },
}

pub fn resolve(spec: &str) -> Result<ResolvedUser, UserError> {
    resolve_on(&System, spec)
}

/// `--user` as Docker reads it: `USER` or `UID`, optionally `:GROUP` or
/// `:GID`. A uid that no database knows is taken as it is, with gid 0 and
/// no other groups, as Docker does (give `UID:GID` for another group); a
/// group replaces the user's primary group and keeps its memberships.
fn resolve_on(host: &impl Host, spec: &str) -> Result<ResolvedUser, UserError> {
    let (user_part, group_part) = match spec.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (spec, None),
    };
    if user_part.is_empty() || group_part.is_some_and(|g| g.is_empty() || g.contains(':')) {
        return Err(UserError::Invalid(spec.to_owned()));
    }
    let lookup_failed = |source| UserError::Lookup {
        user: spec.to_owned(),
        source,
    };
    let nsswitch = host.read(NSSWITCH_PATH).map_err(lookup_failed)?;
    let sources = NssSources::from_config(nsswitch.as_deref());
    let user_spec = UserSpec::parse(user_part);
    let found = find_user(host, sources, user_spec).map_err(lookup_failed)?;
    let (user, groups) = match (found, user_spec) {
        (Some((user, origin)), _) => {
            let groups =
                supplementary_groups(host, sources, &user, origin).map_err(lookup_failed)?;
            (user, groups)
        }
        (None, UserSpec::Uid(uid)) if uid != u32::MAX => {
            let user = PasswdEntry {
                name: uid.to_string(),
                uid,
                gid: 0,
            };
            (user, vec![0])
        }
        (None, _) => return Err(UserError::Unknown(user_part.to_owned())),
    };
    let (gid, groups) = match group_part {
        None => (user.gid, groups),
        Some(group) => {
            let gid = find_group(host, sources, group)
                .map_err(lookup_failed)?
                .ok_or_else(|| UserError::UnknownGroup {
                    spec: spec.to_owned(),
                    group: group.to_owned(),
                })?;
            // The named group first, then the memberships (the passwd
            // entry's own primary group is no longer one of them).
            let memberships = groups.into_iter().filter(|g| *g != user.gid);
            (gid, primary_first_unique(gid, memberships))
        }
    };
    Ok(ResolvedUser {
        name: user.name,
        uid: user.uid,
        gid,
        groups,
    })
}

/// A group by name or gid: /etc/group first, then (when other sources
/// are configured) `getent group`; a gid no database knows is taken as
/// it is. `Ok(None)` when no source knows the name.
fn find_group(host: &impl Host, sources: NssSources, spec: &str) -> io::Result<Option<u32>> {
    if let Some(gid) = parse_id(spec).filter(|_| spec.bytes().all(|b| b.is_ascii_digit())) {
        return Ok(Some(gid));
    }
    if !is_plausible_user_name(spec) {
        return Ok(None);
    }
    let group = host.read(GROUP_PATH)?.unwrap_or_default();
    if let Some(entry) = group
        .lines()
        .filter_map(parse_group_line)
        .find(|g| g.name == spec)
    {
        return Ok(Some(entry.gid));
    }
    if sources.groups_files_only {
        return Ok(None);
    }
    match host.getent("group", spec) {
        Getent::Found(output) => Ok(output
            .lines()
            .filter_map(parse_group_line)
            .map(|g| g.gid)
            .next()),
        Getent::NotFound => Ok(None),
        Getent::Failed(error) => Err(error),
    }
}

/// Where a user was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    PasswdFile,
    Getent,
}

/// The user in /etc/passwd, else (when other sources are configured) as
/// getent reports it. `Ok(None)` means no source knows the user.
fn find_user(
    host: &impl Host,
    sources: NssSources,
    spec: UserSpec<'_>,
) -> io::Result<Option<(PasswdEntry, Origin)>> {
    let passwd = host.read(PASSWD_PATH)?.unwrap_or_default();
    if let Some(entry) = find_passwd_entry(&passwd, spec) {
        return Ok(Some((entry, Origin::PasswdFile)));
    }
    if sources.passwd_files_only {
        return Ok(None);
    }
    let Some(key) = spec.getent_key() else {
        return Ok(None);
    };
    match host.getent("passwd", &key) {
        Getent::Found(output) => first_passwd_entry(&output)
            .map(|entry| Some((entry, Origin::Getent)))
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    "getent passwd printed no usable entry",
                )
            }),
        Getent::NotFound => Ok(None),
        Getent::Failed(error) => Err(error),
    }
}

/// What getgrouplist(3) gives: the primary gid first, then every group
/// the user is a member of, each once.
fn supplementary_groups(
    host: &impl Host,
    sources: NssSources,
    user: &PasswdEntry,
    origin: Origin,
) -> io::Result<Vec<u32>> {
    let group_file_suffices = sources.groups_files_only
        || (origin == Origin::PasswdFile && sources.groups_files_or_systemd);
    if !group_file_suffices {
        // getent failing must not stop a launch: /etc/group still gives
        // the local memberships.
        match host.getent("initgroups", &user.name) {
            Getent::Found(output) => match parse_initgroups(&output, &user.name) {
                Some(gids) => return Ok(primary_first_unique(user.gid, gids)),
                None => tracing::warn!(
                    user = %user.name,
                    "unexpected `getent initgroups` output; using /etc/group only"
                ),
            },
            Getent::NotFound => {}
            Getent::Failed(error) => tracing::warn!(
                user = %user.name,
                %error,
                "`getent initgroups` failed; using /etc/group only"
            ),
        }
    }
    let group = host.read(GROUP_PATH)?.unwrap_or_default();
    Ok(groups_from_group_file(&group, &user.name, user.gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::cell::RefCell;
    use std::collections::HashMap;

    use super::fixtures::{GROUP, PASSWD};

    #[test]
    fn resolves_root_by_name_and_uid() {
        let by_name = resolve("root").unwrap();
        assert_eq!((by_name.uid, by_name.gid), (0, 0));
        assert_eq!(resolve("0").unwrap().name, "root");
        let err = resolve("no-such-user-phobos").unwrap_err();
        assert_eq!(err.to_string(), "unknown user 'no-such-user-phobos'");
    }

    proptest::proptest! {
        #[test]
        fn resolution_never_panics_on_any_spec(spec in "\\PC{0,24}") {
            let _ = resolve_on(&FakeHost::new(WITH_SYSTEMD), &spec);
        }
    }

    /// Fixture files and scripted getent answers; records getent calls.
    #[derive(Default)]
    struct FakeHost {
        files: HashMap<&'static str, &'static str>,
        unreadable: Option<&'static str>,
        getent: HashMap<String, fn() -> Getent>,
        calls: RefCell<Vec<String>>,
    }

    impl FakeHost {
        fn new(nsswitch: Option<&'static str>) -> Self {
            let mut host = Self::default();
            host.files.insert(PASSWD_PATH, PASSWD);
            host.files.insert(GROUP_PATH, GROUP);
            if let Some(config) = nsswitch {
                host.files.insert(NSSWITCH_PATH, config);
            }
            host
        }

        fn answer(mut self, call: &str, answer: fn() -> Getent) -> Self {
            self.getent.insert(call.to_owned(), answer);
            self
        }

        fn calls(&self) -> Vec<String> {
            self.calls.borrow().clone()
        }
    }

    impl Host for FakeHost {
        fn read(&self, path: &str) -> io::Result<Option<String>> {
            if self.unreadable == Some(path) {
                return Err(io::Error::from(io::ErrorKind::PermissionDenied));
            }
            Ok(self.files.get(path).map(|c| (*c).to_owned()))
        }

        fn getent(&self, database: &str, key: &str) -> Getent {
            let call = format!("{database} {key}");
            self.calls.borrow_mut().push(call.clone());
            self.getent.get(&call).map_or(
                Getent::Failed(io::Error::from(io::ErrorKind::NotFound)),
                |answer| answer(),
            )
        }
    }

    const WITH_SYSTEMD: Option<&str> = Some("passwd: files systemd\ngroup: files systemd\n");
    const WITH_SSS: Option<&str> = Some("passwd: files sss\ngroup: files sss\n");

    fn user(name: &str, uid: u32, gid: u32, groups: &[u32]) -> ResolvedUser {
        ResolvedUser {
            name: name.to_owned(),
            uid,
            gid,
            groups: groups.to_vec(),
        }
    }

    #[test]
    fn unknown_uids_and_groups_are_taken_as_docker_takes_them() {
        let host = FakeHost::new(Some("passwd: files\ngroup: files\n"));
        // A uid no database knows: as given, gid 0, no other groups.
        assert_eq!(
            resolve_on(&host, "12345").unwrap(),
            user("12345", 12345, 0, &[0])
        );
        // USER:GROUP and UID:GID, by name or number, known or not.
        assert_eq!(
            resolve_on(&host, "alice:users").unwrap(),
            user("alice", 1000, 100, &[100, 10])
        );
        assert_eq!(
            resolve_on(&host, "alice:4242").unwrap(),
            user("alice", 1000, 4242, &[4242, 10, 100])
        );
        assert_eq!(
            resolve_on(&host, "12345:wheel").unwrap(),
            user("12345", 12345, 10, &[10])
        );
        assert_eq!(resolve_on(&host, "1000:7").unwrap().gid, 7);
        let err = resolve_on(&host, "alice:nogroup-phobos").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown group 'nogroup-phobos' in user 'alice:nogroup-phobos'"
        );
        for bad in [":", "alice:", ":users", "a:b:c", ""] {
            assert!(
                matches!(resolve_on(&host, bad), Err(UserError::Invalid(_))),
                "{bad:?}"
            );
        }
        // (uid_t)-1 is never a uid, even unlisted.
        assert!(matches!(
            resolve_on(&host, "4294967295"),
            Err(UserError::Unknown(_))
        ));
        assert!(host.calls().is_empty());
        // A group only another source knows comes from getent.
        let host = FakeHost::new(WITH_SSS)
            .answer("group ldapers", || {
                Getent::Found("ldapers:*:70100:\n".into())
            })
            .answer("initgroups alice", || Getent::Found("alice 10\n".into()));
        assert_eq!(resolve_on(&host, "alice:ldapers").unwrap().gid, 70100);
    }

    #[test]
    fn files_only_host_never_runs_getent() {
        let host = FakeHost::new(Some("passwd: files\ngroup: files\n"));
        let alice = resolve_on(&host, "alice").unwrap();
        assert_eq!(alice, user("alice", 1000, 1000, &[1000, 10, 100]));
        let err = resolve_on(&host, "dave").unwrap_err();
        assert_eq!(err.to_string(), "unknown user 'dave'");
        assert!(host.calls().is_empty());
    }

    #[test]
    fn missing_nsswitch_means_files_only() {
        let host = FakeHost::new(None);
        assert!(matches!(
            resolve_on(&host, "dave"),
            Err(UserError::Unknown(_))
        ));
        assert_eq!(resolve_on(&host, "1000").unwrap().name, "alice");
        assert!(host.calls().is_empty());
    }

    #[test]
    fn user_only_in_another_source_comes_from_getent() {
        let host = FakeHost::new(WITH_SYSTEMD)
            .answer("passwd dave", || {
                Getent::Found("dave:x:70001:70001::/home/dave:/bin/sh\n".into())
            })
            .answer("initgroups dave", || {
                Getent::Found("dave 100 70010\n".into())
            });
        let dave = resolve_on(&host, "dave").unwrap();
        assert_eq!(dave, user("dave", 70001, 70001, &[70001, 100, 70010]));
        assert_eq!(host.calls(), ["passwd dave", "initgroups dave"]);
    }

    #[test]
    fn uid_only_in_another_source_is_asked_for_by_number() {
        let host = FakeHost::new(WITH_SYSTEMD)
            .answer("passwd 70001", || {
                Getent::Found("dave:x:70001:70001::/home/dave:/bin/sh\n".into())
            })
            .answer("initgroups dave", || Getent::Found("dave\n".into()));
        let dave = resolve_on(&host, "70001").unwrap();
        assert_eq!(dave, user("dave", 70001, 70001, &[70001]));
    }

    #[test]
    fn a_user_in_the_file_costs_no_passwd_getent() {
        let host = FakeHost::new(WITH_SSS).answer("initgroups alice", || {
            Getent::Found("alice 10 100 70010\n".into())
        });
        let alice = resolve_on(&host, "alice").unwrap();
        assert_eq!(alice, user("alice", 1000, 1000, &[1000, 10, 100, 70010]));
        assert_eq!(host.calls(), ["initgroups alice"]);
    }

    #[test]
    fn systemd_adds_no_memberships_for_a_user_of_the_passwd_file() {
        let host = FakeHost::new(WITH_SYSTEMD);
        let alice = resolve_on(&host, "alice").unwrap();
        assert_eq!(alice, user("alice", 1000, 1000, &[1000, 10, 100]));
        assert!(host.calls().is_empty(), "{:?}", host.calls());
    }

    #[test]
    fn getent_not_found_is_an_unknown_user() {
        let host = FakeHost::new(WITH_SYSTEMD).answer("passwd dave", || Getent::NotFound);
        let err = resolve_on(&host, "dave").unwrap_err();
        assert_eq!(err.to_string(), "unknown user 'dave'");
    }

    #[test]
    fn implausible_names_never_reach_getent() {
        let host = FakeHost::new(WITH_SYSTEMD);
        for spec in ["--help", " 5", "99999999999"] {
            assert!(matches!(
                resolve_on(&host, spec),
                Err(UserError::Unknown(_))
            ));
        }
        assert!(matches!(resolve_on(&host, ""), Err(UserError::Invalid(_))));
        assert!(host.calls().is_empty());
    }

    #[test]
    fn getent_passwd_failure_is_a_lookup_error() {
        let host = FakeHost::new(WITH_SYSTEMD).answer("passwd dave", || {
            Getent::Failed(io::Error::other(
                "getent passwd dave exited with exit status: 1",
            ))
        });
        let err = resolve_on(&host, "dave").unwrap_err();
        assert!(matches!(err, UserError::Lookup { ref user, .. } if user == "dave"));
        assert_eq!(
            err.to_string(),
            "failed to look up user 'dave': getent passwd dave exited with exit status: 1"
        );
    }

    #[test]
    fn unusable_getent_passwd_output_is_a_lookup_error() {
        let host =
            FakeHost::new(WITH_SYSTEMD).answer("passwd dave", || Getent::Found("junk\n".into()));
        assert!(matches!(
            resolve_on(&host, "dave"),
            Err(UserError::Lookup { .. })
        ));
    }

    #[test]
    fn failing_getent_initgroups_falls_back_to_the_group_file() {
        // No scripted answer: the fake reports getent as missing.
        let host = FakeHost::new(WITH_SSS);
        let alice = resolve_on(&host, "alice").unwrap();
        assert_eq!(alice.groups, [1000, 10, 100]);
        let host = FakeHost::new(WITH_SSS).answer("initgroups alice", || {
            Getent::Found("someone-else 5\n".into())
        });
        assert_eq!(resolve_on(&host, "alice").unwrap().groups, [1000, 10, 100]);
    }

    #[test]
    fn unreadable_files_are_lookup_errors_and_missing_ones_are_empty() {
        let mut host = FakeHost::new(None);
        host.unreadable = Some(PASSWD_PATH);
        let err = resolve_on(&host, "alice").unwrap_err();
        assert!(matches!(err, UserError::Lookup { .. }), "{err}");

        let mut host = FakeHost::new(None);
        host.files.remove(GROUP_PATH);
        assert_eq!(resolve_on(&host, "alice").unwrap().groups, [1000]);
        host.files.remove(PASSWD_PATH);
        assert!(matches!(
            resolve_on(&host, "alice"),
            Err(UserError::Unknown(_))
        ));
    }
}
