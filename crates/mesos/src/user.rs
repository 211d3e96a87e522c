//! Resolving `--user` (a name or a numeric uid) to uid, gid and
//! supplementary groups through the host's NSS (getpwnam(3),
//! getgrouplist(3)), before anything is forked.

use std::ffi::CString;

use nix::unistd::{Gid, Uid, User};

use crate::launch_info::ResolvedUser;

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("unknown user '{0}'")]
    Unknown(String),
    #[error("failed to look up user '{user}': {source}")]
    Lookup {
        user: String,
        #[source]
        source: nix::Error,
    },
}

pub fn resolve(spec: &str) -> Result<ResolvedUser, UserError> {
    let lookup = |r: nix::Result<Option<User>>| {
        r.map_err(|source| UserError::Lookup {
            user: spec.to_owned(),
            source,
        })
    };
    let user = match spec.parse::<u32>() {
        Ok(uid) => lookup(User::from_uid(Uid::from_raw(uid)))?,
        Err(_) => lookup(User::from_name(spec))?,
    };
    let Some(user) = user else {
        return Err(UserError::Unknown(spec.to_owned()));
    };
    let name =
        CString::new(user.name.as_bytes()).map_err(|_| UserError::Unknown(spec.to_owned()))?;
    let groups = nix::unistd::getgrouplist(&name, user.gid)
        .unwrap_or_else(|_| vec![user.gid])
        .into_iter()
        .map(Gid::as_raw)
        .collect();
    Ok(ResolvedUser {
        name: user.name,
        uid: user.uid.as_raw(),
        gid: user.gid.as_raw(),
        groups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_root_by_name_and_uid() {
        let by_name = resolve("root").unwrap();
        assert_eq!((by_name.uid, by_name.gid), (0, 0));
        assert_eq!(resolve("0").unwrap().name, "root");
        let err = resolve("no-such-user-phobos").unwrap_err();
        assert_eq!(err.to_string(), "unknown user 'no-such-user-phobos'");
    }
}
