//! The entries of /etc/passwd and /etc/group (and of getent's output in
//! the same formats), parsed as glibc's `files` source reads them: pure
//! functions over `&str`, so nothing here touches the system.

use std::collections::HashSet;

/// `--user` as given: a string that parses as u32 is a uid, anything else
/// a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum UserSpec<'a> {
    Name(&'a str),
    Uid(u32),
}

impl<'a> UserSpec<'a> {
    pub(super) fn parse(spec: &'a str) -> Self {
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
    pub(super) fn getent_key(self) -> Option<String> {
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
pub(super) fn is_plausible_user_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(['+', '-'])
        && !name.bytes().all(|b| b.is_ascii_digit())
        && !name
            .chars()
            .any(|c| c == ':' || c.is_whitespace() || c.is_control())
}

/// The fields of a passwd line that resolution needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PasswdEntry {
    pub(super) name: String,
    pub(super) uid: u32,
    pub(super) gid: u32,
}

/// The first entry matching `spec`, as glibc's files source picks it.
pub(super) fn find_passwd_entry(contents: &str, spec: UserSpec<'_>) -> Option<PasswdEntry> {
    contents
        .lines()
        .filter_map(parse_passwd_line)
        .find(|entry| spec.matches(entry))
}

/// getent prints the entry it found as one passwd line.
pub(super) fn first_passwd_entry(output: &str) -> Option<PasswdEntry> {
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
pub(super) struct GroupEntry<'a> {
    pub(super) name: &'a str,
    pub(super) gid: u32,
    pub(super) members: &'a str,
}

impl GroupEntry<'_> {
    fn has_member(&self, user: &str) -> bool {
        self.members.split(',').any(|member| member.trim() == user)
    }
}

/// `name:password:gid:member1,member2`; a missing member list means no
/// members. None for blank, comment, NIS and malformed lines.
pub(super) fn parse_group_line(line: &str) -> Option<GroupEntry<'_>> {
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
pub(super) fn groups_from_group_file(contents: &str, user: &str, primary_gid: u32) -> Vec<u32> {
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
pub(super) fn parse_initgroups(output: &str, user: &str) -> Option<Vec<u32>> {
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

#[cfg(test)]
mod tests {
    use super::*;

    use super::super::fixtures::{GROUP, PASSWD, entry};
    use super::super::nsswitch::NssSources;

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
    }
}
