//! The names and labels that mark a Docker container as one of ours: the
//! `mesos-<id>` container name (and the Mesos 0.23–1.3 `mesos-<agent>.<id>`
//! form recovery still recognises) and the `org.phobos.*` labels.

/// Prefix of every Docker container name Phobos (and Mesos) creates.
pub const NAME_PREFIX: &str = "mesos-";
/// Label holding the Mesos container id.
pub const LABEL_CONTAINER_ID: &str = "org.phobos.container-id";
/// Label marking a container as created by Phobos (value `true`).
pub const LABEL_MANAGED: &str = "org.phobos.managed";

/// Whether `id` can be a Phobos container id inside a Docker name.
///
/// Docker names allow `[a-zA-Z0-9][a-zA-Z0-9_.-]*`; Mesos separates an agent
/// id from the container id with `.` in 0.23–1.3 names, so `.` is refused to
/// keep [`parse_container_name`] unambiguous. UUIDs (what the Mesos agent
/// generates) and names such as `web-1` are valid.
pub fn is_valid_container_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 200
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The Docker container name for a Mesos container id: `mesos-<id>`.
pub fn container_name(id: &str) -> String {
    format!("{NAME_PREFIX}{id}")
}

/// The Mesos container id in a Docker container name, if it is one of ours.
///
/// Accepts names with or without the leading `/` the Engine reports, the
/// current `mesos-<id>` format and the Mesos 0.23–1.3 `mesos-<agent>.<id>`
/// format. Executor containers (`….executor`) and names whose id part is not
/// a valid id ([`is_valid_container_id`]) yield `None` — the analogue of
/// Mesos skipping names whose id is not a UUID. Unlike Mesos we accept
/// non-UUID ids, since Phobos's own faces let people choose ids.
pub fn parse_container_name(name: &str) -> Option<String> {
    let rest = name.strip_prefix('/').unwrap_or(name);
    let rest = rest.strip_prefix(NAME_PREFIX)?;
    if rest.ends_with(".executor") {
        return None;
    }
    let id = match rest.split_once('.') {
        None => rest,
        Some((agent, id)) if !agent.is_empty() && !id.contains('.') => id,
        Some(_) => return None,
    };
    is_valid_container_id(id).then(|| id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_names_parse_back() {
        let uuid = "6b1d5b3a-2b5c-4bb0-9d3a-0f9f7a6c1e21";
        assert_eq!(
            parse_container_name(&format!("/mesos-{uuid}")).as_deref(),
            Some(uuid)
        );
        assert_eq!(
            parse_container_name(&format!("mesos-{uuid}")).as_deref(),
            Some(uuid)
        );
        assert_eq!(
            parse_container_name("mesos-web_1").as_deref(),
            Some("web_1")
        );
        // Mesos 0.23–1.3: mesos-<agent>.<id>
        assert_eq!(
            parse_container_name(&format!("/mesos-agent-S1.{uuid}")).as_deref(),
            Some(uuid)
        );
        assert_eq!(
            parse_container_name(&format!("/mesos-{uuid}.executor")),
            None
        );
        assert_eq!(parse_container_name("/mesos-"), None);
        assert_eq!(parse_container_name("/mesos-a.b.c"), None);
        assert_eq!(parse_container_name("/mesos-bad id"), None);
        assert_eq!(parse_container_name("/web"), None);
        assert_eq!(parse_container_name("/not-mesos-x"), None);
    }
}
