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

use std::collections::HashSet;
use std::io::{self, Read};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::launch_info::ResolvedUser;

const PASSWD_PATH: &str = "/etc/passwd";
const GROUP_PATH: &str = "/etc/group";
const NSSWITCH_PATH: &str = "/etc/nsswitch.conf";

/// Where glibc installs getent; tried before `PATH` so a root process does
/// not run whatever `getent` its environment happens to point at.
const GETENT_PATHS: [&str; 2] = ["/usr/bin/getent", "/bin/getent"];

/// getent prints one passwd line, or a name and at most NGROUPS_MAX
/// (65536) gids; 1 MiB holds either with room to spare, and anything past
/// it is not output we asked for.
const GETENT_OUTPUT_LIMIT: u64 = 1 << 20;

/// getent's exit status for "key not found in the database".
const GETENT_NOT_FOUND: i32 = 2;

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

/// `--user` as given: a string that parses as u32 is a uid, anything else
/// a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UserSpec<'a> {
    Name(&'a str),
    Uid(u32),
}

impl<'a> UserSpec<'a> {
    fn parse(spec: &'a str) -> Self {
        match spec.parse() {
            Ok(uid) => Self::Uid(uid),
            Err(_) => Self::Name(spec),
        }
    }

    fn matches(self, entry: &PasswdEntry) -> bool {
        match self {
            Self::Name(name) => entry.name == name,
            Self::Uid(uid) => entry.uid == uid,
        }
    }

    /// The key to hand `getent passwd`, or None when no source could hold
    /// such a name. getent reads an all-digit key (after optional blanks
    /// and sign) as a uid, so such names must never reach it as names.
    fn getent_key(self) -> Option<String> {
        match self {
            Self::Uid(uid) => Some(uid.to_string()),
            Self::Name(name) if is_plausible_user_name(name) => Some(name.to_owned()),
            Self::Name(_) => None,
        }
    }
}

/// Rules out what cannot be a user name in any database: empty, a field
/// or line separator, blanks, a leading `+`/`-` (NIS syntax, or an option
/// to getent), or digits only (getent would look it up as a uid).
fn is_plausible_user_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(['+', '-'])
        && !name.bytes().all(|b| b.is_ascii_digit())
        && !name
            .chars()
            .any(|c| c == ':' || c.is_whitespace() || c.is_control())
}

/// The fields of a passwd line that resolution needs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
}

/// The first entry matching `spec`, as glibc's files source picks it.
fn find_passwd_entry(contents: &str, spec: UserSpec<'_>) -> Option<PasswdEntry> {
    contents
        .lines()
        .filter_map(parse_passwd_line)
        .find(|entry| spec.matches(entry))
}

/// getent prints the entry it found as one passwd line.
fn first_passwd_entry(output: &str) -> Option<PasswdEntry> {
    output.lines().find_map(parse_passwd_line)
}

/// `name:password:uid:gid:gecos:home:shell`; only the first four fields
/// are needed, so lines that stop after the gid are accepted as glibc
/// does. None for blank, comment, NIS and malformed lines.
fn parse_passwd_line(line: &str) -> Option<PasswdEntry> {
    let mut fields = entry_fields(line)?;
    let name = fields.next()?;
    let _password = fields.next()?;
    let uid = parse_id(fields.next()?)?;
    let gid = parse_id(fields.next()?)?;
    Some(PasswdEntry {
        name: name.to_owned(),
        uid,
        gid,
    })
}

/// The fields of a group line that membership needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: &'a str,
}

impl GroupEntry<'_> {
    fn has_member(&self, user: &str) -> bool {
        self.members.split(',').any(|member| member.trim() == user)
    }
}

/// `name:password:gid:member1,member2`; a missing member list means no
/// members. None for blank, comment, NIS and malformed lines.
fn parse_group_line(line: &str) -> Option<GroupEntry<'_>> {
    let mut fields = entry_fields(line)?;
    let name = fields.next()?;
    let _password = fields.next()?;
    let gid = parse_id(fields.next()?)?;
    let members = fields.next().unwrap_or("");
    Some(GroupEntry { name, gid, members })
}

/// The colon-separated fields of a passwd or group line, or None when the
/// line holds no entry: blank, a `#` comment, or a NIS `+`/`-` inclusion
/// (which only the compat source understands; that one is asked through
/// getent).
pub(crate) fn entry_fields(line: &str) -> Option<std::str::Split<'_, char>> {
    // glibc skips leading blanks before deciding what a line is.
    let line = line.trim_start();
    if line.is_empty() || line.starts_with(['#', '+', '-']) || line.starts_with(':') {
        return None;
    }
    Some(line.split(':'))
}

/// A uid or gid field. (uid_t)-1 is refused: to setuid(2) and setgroups(2)
/// it means "leave unchanged" or is invalid, never a real id.
pub(crate) fn parse_id(field: &str) -> Option<u32> {
    field.parse().ok().filter(|&id| id != u32::MAX)
}

/// The primary gid, then every /etc/group entry listing `user`.
fn groups_from_group_file(contents: &str, user: &str, primary_gid: u32) -> Vec<u32> {
    let member_of = contents
        .lines()
        .filter_map(parse_group_line)
        .filter(|group| group.has_member(user))
        .map(|group| group.gid);
    primary_first_unique(primary_gid, member_of)
}

/// `getent initgroups <user>` prints the user name and then the gids of
/// the groups it is a member of, whitespace separated; the primary gid is
/// not necessarily among them. None when the output is not that shape.
fn parse_initgroups(output: &str, user: &str) -> Option<Vec<u32>> {
    let line = output.lines().next()?;
    let gids = line.strip_prefix(user)?;
    // The name must end where the gids begin, not merely be a prefix.
    if !gids.is_empty() && !gids.starts_with(char::is_whitespace) {
        return None;
    }
    gids.split_whitespace().map(parse_id).collect()
}

/// `primary` followed by `others`, keeping only the first of duplicates.
pub(crate) fn primary_first_unique(
    primary: u32,
    others: impl IntoIterator<Item = u32>,
) -> Vec<u32> {
    let mut seen = HashSet::new();
    std::iter::once(primary)
        .chain(others)
        .filter(|gid| seen.insert(*gid))
        .collect()
}

/// Whether each database can only hold what its file holds, in which case
/// getent can add nothing and is never run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct NssSources {
    passwd_files_only: bool,
    groups_files_only: bool,
    /// Memberships come from `files` and at most `systemd`.
    groups_files_or_systemd: bool,
}

impl NssSources {
    /// From nsswitch.conf contents; a missing file, like a missing line,
    /// means glibc's built-in default, which is `files` for both.
    fn from_config(nsswitch: Option<&str>) -> Self {
        let config = nsswitch.unwrap_or("");
        // getgrouplist(3) consults `initgroups` when it is configured and
        // `group` otherwise; `getent initgroups` does the same.
        let membership = match nss_sources(config, "initgroups") {
            Some(_) => "initgroups",
            None => "group",
        };
        Self {
            passwd_files_only: database_is_files_only(config, "passwd"),
            groups_files_only: database_is_files_only(config, membership),
            groups_files_or_systemd: nss_sources(config, membership).is_none_or(|sources| {
                sources
                    .iter()
                    .all(|source| *source == "files" || *source == "systemd")
            }),
        }
    }
}

fn database_is_files_only(config: &str, database: &str) -> bool {
    nss_sources(config, database).is_none_or(|sources| is_files_only(&sources))
}

/// No source other than `files` is named (no sources at all counts, as
/// nothing else could then answer).
fn is_files_only(sources: &[&str]) -> bool {
    sources.iter().all(|source| *source == "files")
}

/// The sources configured for `database`, or None when no line names it.
/// As in glibc: `#` starts a comment, the database name is case-sensitive
/// and ends at a colon or blank, and a later line for the same database
/// replaces an earlier one.
fn nss_sources<'a>(config: &'a str, database: &str) -> Option<Vec<&'a str>> {
    config
        .lines()
        .rev()
        .find_map(|line| line_sources(line, database))
}

/// The sources on one nsswitch.conf line if it configures `database`.
fn line_sources<'a>(line: &'a str, database: &str) -> Option<Vec<&'a str>> {
    let is_separator = |c: char| c == ':' || c.is_whitespace();
    let line = line.split('#').next().unwrap_or("").trim_start();
    let (name, rest) = line.split_at(line.find(is_separator)?);
    (name == database).then(|| source_names(rest.trim_start_matches(is_separator)))
}

/// The source names of one nsswitch.conf line (after the colon), without
/// the `[STATUS=action]` blocks between them; an unclosed block runs to
/// the end of the line.
fn source_names(line: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = line.trim_start();
    while !rest.is_empty() {
        if let Some(block) = rest.strip_prefix('[') {
            rest = block.split_once(']').map_or("", |(_, after)| after);
        } else {
            let end = rest
                .find(|c: char| c == '[' || c.is_whitespace())
                .unwrap_or(rest.len());
            let (name, after) = rest.split_at(end);
            names.push(name);
            rest = after;
        }
        rest = rest.trim_start();
    }
    names
}

/// The answer of one getent run.
#[derive(Debug)]
enum Getent {
    /// Exit status 0, with what it printed.
    Found(String),
    /// Exit status 2: no source knows the key.
    NotFound,
    /// getent could not be run, was killed, or reported another error.
    Failed(io::Error),
}

/// What resolution reads from the system; a trait so the decisions above
/// can be tested on fixtures without root or a particular host.
trait Host {
    /// A file's contents, or None when it does not exist. Invalid UTF-8
    /// (say, a Latin-1 gecos field) is replaced rather than refused.
    fn read(&self, path: &str) -> io::Result<Option<String>>;
    /// `getent <database> -- <key>`.
    fn getent(&self, database: &str, key: &str) -> Getent;
}

/// The real system.
struct System;

impl Host for System {
    fn read(&self, path: &str) -> io::Result<Option<String>> {
        match std::fs::read(path) {
            Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(io::Error::new(
                error.kind(),
                format!("reading {path}: {error}"),
            )),
        }
    }

    fn getent(&self, database: &str, key: &str) -> Getent {
        run_getent(database, key)
    }
}

fn run_getent(database: &str, key: &str) -> Getent {
    let spawned = Command::new(getent_program())
        // `--` so a key can never be taken for an option.
        .args([database, "--", key])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(error) => {
            return Getent::Failed(io::Error::new(
                error.kind(),
                format!("running getent: {error}"),
            ));
        }
    };
    let mut output = Vec::new();
    // The pipe is closed at the end of this statement, so a getent that
    // prints past the limit dies of SIGPIPE instead of blocking wait().
    let read = match child.stdout.take() {
        Some(stdout) => stdout.take(GETENT_OUTPUT_LIMIT).read_to_end(&mut output),
        None => Ok(0),
    };
    let status = match child.wait() {
        Ok(status) => status,
        Err(error) => return Getent::Failed(error),
    };
    if let Err(error) = read {
        return Getent::Failed(io::Error::new(
            error.kind(),
            format!("reading getent's output: {error}"),
        ));
    }
    if status.success() {
        Getent::Found(String::from_utf8_lossy(&output).into_owned())
    } else if status.code() == Some(GETENT_NOT_FOUND) {
        Getent::NotFound
    } else {
        Getent::Failed(io::Error::other(format!(
            "getent {database} {key} exited with {status}"
        )))
    }
}

fn getent_program() -> &'static str {
    GETENT_PATHS
        .into_iter()
        .find(|path| Path::new(path).is_file())
        .unwrap_or("getent")
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::cell::RefCell;
    use std::collections::HashMap;

    #[test]
    fn resolves_root_by_name_and_uid() {
        let by_name = resolve("root").unwrap();
        assert_eq!((by_name.uid, by_name.gid), (0, 0));
        assert_eq!(resolve("0").unwrap().name, "root");
        let err = resolve("no-such-user-phobos").unwrap_err();
        assert_eq!(err.to_string(), "unknown user 'no-such-user-phobos'");
    }

    const PASSWD: &str = "\
# comment:x:7:7::/:/bin/sh
root:x:0:0:root:/root:/bin/bash

   \t
+nisuser:x:800:800::/:/bin/sh
-banned:x:801:801::/:/bin/sh
+
broken
nouid:x::100::/:/bin/sh
baduid:x:abc:100::/:/bin/sh
negative:x:-1:100::/:/bin/sh
minusone:x:4294967295:100::/:/bin/sh
:x:900:900::/:/bin/sh
alice:x:1000:1000:Alice:/home/alice:/bin/bash
short:x:1001:1001
  indented:x:1002:1002::/:/bin/sh
1234:x:1003:1003::/:/bin/sh
alice:x:2000:2000:second alice:/:/bin/sh
";

    fn entry(name: &str, uid: u32, gid: u32) -> PasswdEntry {
        PasswdEntry {
            name: name.to_owned(),
            uid,
            gid,
        }
    }

    fn find(spec: &str) -> Option<PasswdEntry> {
        find_passwd_entry(PASSWD, UserSpec::parse(spec))
    }

    #[test]
    fn spec_that_parses_as_u32_is_a_uid() {
        assert_eq!(UserSpec::parse("1000"), UserSpec::Uid(1000));
        assert_eq!(UserSpec::parse("alice"), UserSpec::Name("alice"));
        assert_eq!(UserSpec::parse("-1"), UserSpec::Name("-1"));
        assert_eq!(UserSpec::parse("4294967296"), UserSpec::Name("4294967296"));
    }

    #[test]
    fn finds_users_by_name_and_by_uid() {
        assert_eq!(find("root"), Some(entry("root", 0, 0)));
        assert_eq!(find("1000"), Some(entry("alice", 1000, 1000)));
        assert_eq!(find("0"), Some(entry("root", 0, 0)));
        // The first of duplicate names wins, as in glibc; the second is
        // still reachable by its uid.
        assert_eq!(find("alice"), Some(entry("alice", 1000, 1000)));
        assert_eq!(find("2000"), Some(entry("alice", 2000, 2000)));
    }

    #[test]
    fn an_all_digit_name_is_only_reachable_by_uid() {
        assert_eq!(find("1234"), None);
        assert_eq!(find("1003"), Some(entry("1234", 1003, 1003)));
    }

    #[test]
    fn accepts_lines_that_stop_after_the_gid_and_indented_lines() {
        assert_eq!(find("short"), Some(entry("short", 1001, 1001)));
        assert_eq!(find("indented"), Some(entry("indented", 1002, 1002)));
    }

    #[test]
    fn skips_comments_blank_nis_and_malformed_passwd_lines() {
        for spec in [
            "# comment",
            "comment",
            "7",
            "+nisuser",
            "nisuser",
            "800",
            "-banned",
            "banned",
            "801",
            "broken",
            "nouid",
            "baduid",
            "negative",
            "minusone",
            "4294967295",
            "",
            "900",
        ] {
            assert_eq!(find(spec), None, "{spec:?}");
        }
    }

    #[test]
    fn passwd_parsing_never_panics_on_odd_lines() {
        for line in [
            "",
            ":",
            "::::",
            "a:b",
            "a:b:1",
            "\u{0}:x:1:1",
            "é:x:1:1:\u{FFFD}",
            "a:x:+1:+1",
        ] {
            let _ = parse_passwd_line(line);
        }
        assert_eq!(parse_passwd_line("a:x:+1:+1"), Some(entry("a", 1, 1)));
    }

    #[test]
    fn getent_output_is_parsed_like_a_passwd_line() {
        let output = "carol:*:70001:70001:Carol:/home/carol:/bin/zsh\n";
        assert_eq!(
            first_passwd_entry(output),
            Some(entry("carol", 70001, 70001))
        );
        assert_eq!(first_passwd_entry(""), None);
        assert_eq!(first_passwd_entry("garbage\n"), None);
    }

    const GROUP: &str = "\
# wheel:x:10:alice
root:x:0:
wheel:x:10:root,alice
users:x:100:bob, alice ,carol
alice:x:1000:
dup:x:10:alice
+nisgroup:x:500:alice
-nisgroup:x:501:alice
nomembers:x:600
bad:x:abc:alice
minusone:x:4294967295:alice
:x:700:alice
alicia:x:800:alicia,malice,alice2
";

    #[test]
    fn group_file_gives_primary_first_then_memberships_without_duplicates() {
        assert_eq!(
            groups_from_group_file(GROUP, "alice", 1000),
            [1000, 10, 100]
        );
        // A membership in the primary group itself is not repeated.
        assert_eq!(groups_from_group_file(GROUP, "alice", 100), [100, 10]);
        assert_eq!(groups_from_group_file(GROUP, "root", 0), [0, 10]);
        assert_eq!(groups_from_group_file(GROUP, "carol", 70001), [70001, 100]);
    }

    #[test]
    fn group_membership_is_an_exact_name_match() {
        assert_eq!(groups_from_group_file(GROUP, "alic", 1), [1]);
        assert_eq!(groups_from_group_file(GROUP, "alicia", 1), [1, 800]);
        assert_eq!(groups_from_group_file(GROUP, "nobody", 65534), [65534]);
        assert_eq!(groups_from_group_file("", "alice", 5), [5]);
    }

    #[test]
    fn parses_group_lines() {
        assert_eq!(
            parse_group_line("g:x:5:a,b"),
            Some(GroupEntry {
                name: "g",
                gid: 5,
                members: "a,b"
            })
        );
        assert_eq!(
            parse_group_line("g:x:5"),
            Some(GroupEntry {
                name: "g",
                gid: 5,
                members: ""
            })
        );
        for line in [
            "", "#g:x:5:a", "+g:x:5:a", "-g:x:5:a", "g:x", "g:x::a", ":x:5:a",
        ] {
            assert_eq!(parse_group_line(line), None, "{line:?}");
        }
    }

    #[test]
    fn parses_getent_initgroups_output() {
        assert_eq!(
            parse_initgroups("alice                 10 100 70010\n", "alice"),
            Some(vec![10, 100, 70010])
        );
        // getent lists no gids for a user in no group, not even the primary.
        assert_eq!(
            parse_initgroups("root                 \n", "root"),
            Some(vec![])
        );
        assert_eq!(parse_initgroups("root", "root"), Some(vec![]));
        assert_eq!(parse_initgroups("", "root"), None);
        assert_eq!(parse_initgroups("rootless 5\n", "root"), None);
        assert_eq!(parse_initgroups("bob 5\n", "root"), None);
        assert_eq!(parse_initgroups("root 5 x\n", "root"), None);
        assert_eq!(parse_initgroups("root 5 4294967295\n", "root"), None);
    }

    #[test]
    fn initgroups_gids_follow_the_primary_without_duplicates() {
        let gids = parse_initgroups("alice 10 1000 100 10\n", "alice").unwrap();
        assert_eq!(primary_first_unique(1000, gids), [1000, 10, 100]);
    }

    #[test]
    fn nsswitch_sources_skip_action_blocks_and_comments() {
        let config = "\
# passwd: ldap
hosts:      files [NOTFOUND=return] dns
passwd:     files [ SUCCESS=merge ]systemd # trailing comment
group:files
shadow: files [unclosed systemd
";
        assert_eq!(nss_sources(config, "hosts"), Some(vec!["files", "dns"]));
        assert_eq!(
            nss_sources(config, "passwd"),
            Some(vec!["files", "systemd"])
        );
        assert_eq!(nss_sources(config, "group"), Some(vec!["files"]));
        assert_eq!(nss_sources(config, "shadow"), Some(vec!["files"]));
        assert_eq!(nss_sources(config, "netgroup"), None);
        // Database names are case-sensitive, as in glibc.
        assert_eq!(nss_sources("PASSWD: ldap\n", "passwd"), None);
    }

    #[test]
    fn a_later_nsswitch_line_replaces_an_earlier_one() {
        let config = "passwd: files sss\npasswd: files\n";
        assert_eq!(nss_sources(config, "passwd"), Some(vec!["files"]));
    }

    #[test]
    fn files_only_means_no_source_but_files() {
        assert!(is_files_only(&["files"]));
        assert!(is_files_only(&["files", "files"]));
        assert!(is_files_only(&[]));
        assert!(!is_files_only(&["files", "systemd"]));
        assert!(!is_files_only(&["compat"]));
        assert!(!is_files_only(&["sss", "files"]));
    }

    fn sources(config: Option<&str>) -> (bool, bool) {
        let s = NssSources::from_config(config);
        (s.passwd_files_only, s.groups_files_only)
    }

    #[test]
    fn nsswitch_decides_which_databases_are_files_only() {
        assert_eq!(sources(None), (true, true));
        assert_eq!(sources(Some("")), (true, true));
        assert_eq!(sources(Some("hosts: files dns\n")), (true, true));
        assert_eq!(
            sources(Some("passwd: files systemd\ngroup: files systemd\n")),
            (false, false)
        );
        assert_eq!(
            sources(Some("passwd: files [NOTFOUND=return] ldap\ngroup: files\n")),
            (false, true)
        );
        // Memberships come from `initgroups` when it is configured.
        assert_eq!(
            sources(Some("group: files sss\ninitgroups: files\n")),
            (true, true)
        );
        assert_eq!(
            sources(Some("group: files\ninitgroups: files sss\n")),
            (true, false)
        );
    }

    #[test]
    fn plausible_user_names_for_getent() {
        assert!(is_plausible_user_name("alice"));
        assert!(is_plausible_user_name("svc-web_1"));
        assert!(is_plausible_user_name("DOMAIN\\alice"));
        for name in [
            "",
            "-1",
            "--help",
            "+nis",
            "99999999999",
            "a:b",
            "a b",
            " 5",
            "a\nb",
        ] {
            assert!(!is_plausible_user_name(name), "{name:?}");
        }
        assert_eq!(UserSpec::Uid(7).getent_key().as_deref(), Some("7"));
        assert_eq!(UserSpec::Name(" 5").getent_key(), None);
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic(text in "\\PC*", name in "\\PC{0,12}", gid: u32) {
            let _ = find_passwd_entry(&text, UserSpec::parse(&name));
            let _ = first_passwd_entry(&text);
            let _ = groups_from_group_file(&text, &name, gid);
            let _ = parse_initgroups(&text, &name);
            let _ = NssSources::from_config(Some(&text));
            let _ = UserSpec::parse(&name).getent_key();
        }

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

    #[test]
    fn system_host_reads_files_and_reports_missing_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("passwd");
        std::fs::write(&path, b"x:y:1:2:\xe9t\xe9:/:/bin/sh\n").unwrap();
        let contents = System.read(path.to_str().unwrap()).unwrap().unwrap();
        assert_eq!(first_passwd_entry(&contents), Some(entry("x", 1, 2)));
        let missing = dir.path().join("missing");
        assert!(System.read(missing.to_str().unwrap()).unwrap().is_none());
    }

    #[test]
    fn real_getent_distinguishes_found_and_not_found() {
        if !GETENT_PATHS.iter().any(|p| Path::new(p).is_file()) {
            return;
        }
        assert!(
            matches!(run_getent("passwd", "0"), Getent::Found(out) if out.starts_with("root:"))
        );
        assert!(matches!(
            run_getent("passwd", "no-such-user-phobos"),
            Getent::NotFound
        ));
        let Getent::Found(groups) = run_getent("initgroups", "root") else {
            panic!("getent initgroups root failed");
        };
        assert!(parse_initgroups(&groups, "root").is_some(), "{groups:?}");
    }
}
