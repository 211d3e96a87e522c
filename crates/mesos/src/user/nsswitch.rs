//! Reading /etc/nsswitch.conf to learn which user and group databases
//! name a source besides `files`: only those are worth a `getent` run.

/// Whether each database can only hold what its file holds, in which case
/// getent can add nothing and is never run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct NssSources {
    pub(super) passwd_files_only: bool,
    pub(super) groups_files_only: bool,
    /// Memberships come from `files` and at most `systemd`.
    pub(super) groups_files_or_systemd: bool,
}

impl NssSources {
    /// From nsswitch.conf contents; a missing file, like a missing line,
    /// means glibc's built-in default, which is `files` for both.
    pub(super) fn from_config(nsswitch: Option<&str>) -> Self {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
