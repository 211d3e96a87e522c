//! The file as serde sees it: every known key and nothing else
//! (`deny_unknown_fields`). Values stay as spanned TOML values so the
//! validation in [`crate::Config`] can report the exact line and give a
//! precise reason ("expected an absolute path") instead of a serde type error.

use std::path::Path;

use serde::Deserialize;
use toml::{Spanned, Value};

use crate::ConfigError;

type Field = Option<Spanned<Value>>;

/// The top level of `phobos.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    runtime_dir: Field,
    work_dir: Field,
    isolation: Field,
    launcher: Field,
    cgroups_root: Field,
    cgroups_driver: Field,
    cgroups_hierarchy: Field,
    cgroups_enable_cfs: Field,
    cgroups_limit_swap: Field,
    cgroups_net_cls_primary_handle: Field,
    cgroups_net_cls_secondary_handles: Field,
    perf_events: Field,
    perf_duration: Field,
    perf_interval: Field,
    sandbox_directory: Field,
    default_container_image: Field,
    containerizers: Field,
    docker: Field,
    docker_socket: Field,
    docker_stop_timeout: Field,
    docker_kill_orphans: Field,
    docker_remove_delay: Field,
    container_disk_watch_interval: Field,
    fetcher_stall_timeout: Field,
    fetcher_cache_dir: Field,
    fetcher_cache_size: Field,
    enforce_container_disk_quota: Field,
    network_cni_config_dir: Field,
    network_cni_plugins_dir: Field,
    default_network_subnet: Field,
    default_network_bridge: Field,
    default_container_shm_size: Field,
    ecp_termination: Field,
    image_providers: Field,
    image_provisioner_backend: Field,
    docker_registry: Field,
    docker_store_dir: Field,
    docker_config: Field,
    docker_insecure_registries: Field,
    effective_capabilities: Field,
    bounding_capabilities: Field,
    seccomp_config_dir: Field,
    seccomp_profile_name: Field,
    allowed_devices: Field,
    container_logger: Field,
    logrotate: Option<RawLogrotate>,
    log: Option<RawLog>,
}

/// The `[logrotate]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a table with max_stdout_size, max_stderr_size and max_files"
)]
pub(crate) struct RawLogrotate {
    max_stdout_size: Field,
    max_stderr_size: Field,
    max_files: Field,
}

/// The `[log]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a table with level, format and destination"
)]
pub(crate) struct RawLog {
    level: Field,
    format: Field,
    destination: Field,
}

impl RawConfig {
    pub(crate) fn parse(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    /// The keys that were present, with their values, in [`crate::KEYS`] order.
    pub(crate) fn into_entries(self) -> Vec<(&'static str, Spanned<Value>)> {
        let log = self.log.unwrap_or_default();
        let logrotate = self.logrotate.unwrap_or_default();
        [
            ("runtime_dir", self.runtime_dir),
            ("work_dir", self.work_dir),
            ("isolation", self.isolation),
            ("launcher", self.launcher),
            ("cgroups_root", self.cgroups_root),
            ("cgroups_driver", self.cgroups_driver),
            ("cgroups_hierarchy", self.cgroups_hierarchy),
            ("cgroups_enable_cfs", self.cgroups_enable_cfs),
            ("cgroups_limit_swap", self.cgroups_limit_swap),
            (
                "cgroups_net_cls_primary_handle",
                self.cgroups_net_cls_primary_handle,
            ),
            (
                "cgroups_net_cls_secondary_handles",
                self.cgroups_net_cls_secondary_handles,
            ),
            ("perf_events", self.perf_events),
            ("perf_duration", self.perf_duration),
            ("perf_interval", self.perf_interval),
            ("sandbox_directory", self.sandbox_directory),
            ("default_container_image", self.default_container_image),
            ("containerizers", self.containerizers),
            ("docker", self.docker),
            ("docker_socket", self.docker_socket),
            ("docker_stop_timeout", self.docker_stop_timeout),
            ("docker_kill_orphans", self.docker_kill_orphans),
            ("docker_remove_delay", self.docker_remove_delay),
            (
                "container_disk_watch_interval",
                self.container_disk_watch_interval,
            ),
            ("fetcher_stall_timeout", self.fetcher_stall_timeout),
            ("fetcher_cache_dir", self.fetcher_cache_dir),
            ("fetcher_cache_size", self.fetcher_cache_size),
            (
                "enforce_container_disk_quota",
                self.enforce_container_disk_quota,
            ),
            ("network_cni_config_dir", self.network_cni_config_dir),
            ("network_cni_plugins_dir", self.network_cni_plugins_dir),
            ("default_network_subnet", self.default_network_subnet),
            ("default_network_bridge", self.default_network_bridge),
            (
                "default_container_shm_size",
                self.default_container_shm_size,
            ),
            ("ecp_termination", self.ecp_termination),
            ("image_providers", self.image_providers),
            ("image_provisioner_backend", self.image_provisioner_backend),
            ("docker_registry", self.docker_registry),
            ("docker_store_dir", self.docker_store_dir),
            ("docker_config", self.docker_config),
            (
                "docker_insecure_registries",
                self.docker_insecure_registries,
            ),
            ("effective_capabilities", self.effective_capabilities),
            ("bounding_capabilities", self.bounding_capabilities),
            ("seccomp_config_dir", self.seccomp_config_dir),
            ("seccomp_profile_name", self.seccomp_profile_name),
            ("allowed_devices", self.allowed_devices),
            ("container_logger", self.container_logger),
            ("logrotate.max_stdout_size", logrotate.max_stdout_size),
            ("logrotate.max_stderr_size", logrotate.max_stderr_size),
            ("logrotate.max_files", logrotate.max_files),
            ("log.level", log.level),
            ("log.format", log.format),
            ("log.destination", log.destination),
        ]
        .into_iter()
        .filter_map(|(key, value)| Some((key, value?)))
        .collect()
    }
}

/// The 1-based line containing byte `offset` of `text`.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Turns a TOML/serde error into [`ConfigError::Parse`] with the line and,
/// where the span covers a key (unknown keys) or sits on a `key = value`
/// line (wrong shapes), the dotted key.
pub(crate) fn parse_error(text: &str, path: &Path, err: &toml::de::Error) -> ConfigError {
    let span = err.span();
    let line = span.as_ref().map(|span| line_of(text, span.start));
    let key = span.as_ref().and_then(|span| key_at(text, span.clone()));
    ConfigError::Parse {
        path: path.to_path_buf(),
        line,
        key,
        message: err.message().trim_end().to_owned(),
    }
}

/// The (dotted) key an error span points at, if it can be told.
fn key_at(text: &str, span: std::ops::Range<usize>) -> Option<String> {
    let line_start = text.get(..span.start)?.rfind('\n').map_or(0, |i| i + 1);
    let line_end = text
        .get(span.start..)?
        .find('\n')
        .map_or(text.len(), |i| span.start + i);
    let line = text.get(line_start..line_end)?;
    // A table header (a duplicate `[log]`, say) names the table itself:
    // no enclosing table to prefix.
    if let Some(header) = line.trim().strip_prefix('[') {
        let name = header.trim_matches(|c| c == '[' || c == ']').trim();
        return is_bare_key(name).then(|| name.to_owned());
    }
    // A span right of '=' is a value: the key is left of '='. Otherwise (an
    // unknown key) the span is the key itself.
    let key = match line.find('=') {
        Some(eq) if span.start > line_start + eq => line[..eq].trim(),
        _ => text.get(span)?.trim(),
    };
    if !is_bare_key(key) {
        return None;
    }
    // Prefix the innermost table header above the line, if any.
    let table = text
        .get(..line_start)?
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim());
    Some(match table {
        Some(table) if !table.is_empty() => format!("{table}.{key}"),
        _ => key.to_owned(),
    })
}

fn is_bare_key(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

/// A TOML value as it would be written, for error messages.
pub(crate) fn render(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        Value::Integer(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Boolean(b) => b.to_string(),
        Value::Datetime(d) => d.to_string(),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(render).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Table(_) => "a table".to_owned(),
    }
}
