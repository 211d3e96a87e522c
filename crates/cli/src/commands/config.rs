//! `phobos config`: the effective configuration, one key per line with its
//! value and where it came from (default, file:line or command line), as
//! a configuration file that loads back to the same values.

use phobos_config::Source;
use phobos_runtime::Planner;

use crate::cli::Global;
use crate::context;

pub fn run(global: &Global, json: bool) -> anyhow::Result<u8> {
    let door = context::door(global)?;
    let settings = door.settings();
    let mut entries = settings.loaded().entries();
    // What the planner decides for a launch that asks for nothing: the
    // launcher here (by privilege when unset or not allowed) and, unset,
    // `isolation` is that launcher's own set on this host, not Mesos's
    // nominal default. Show those.
    let launcher = settings.launcher(None)?.kind;
    let mut notes: Vec<(&str, String)> = Vec::new();
    for entry in entries.iter_mut() {
        if entry.key == "launcher" && entry.value != launcher.name() {
            notes.push((
                "launcher",
                format!("{}; {} here (not root)", entry.source, launcher.name()),
            ));
        }
        if entry.key == "isolation" && entry.source == Source::Default {
            let host = door.host();
            let names = Planner::new(settings, &host).isolation(launcher, None, false)?;
            entry.value = names.join(",");
            notes.push((
                "isolation",
                format!("default: the {} launcher's set here", launcher.name()),
            ));
        }
    }
    if json {
        let list: Vec<serde_json::Value> = entries
            .iter()
            .map(|e| {
                serde_json::json!({
                    "key": e.key,
                    "value": e.value,
                    "source": e.source.to_string(),
                })
            })
            .collect();
        let file = settings
            .loaded()
            .file
            .as_ref()
            .map(|p| p.display().to_string());
        outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "file": file, "entries": list }))?
        );
        return Ok(0);
    }
    match &settings.loaded().file {
        Some(path) => outln!("# config file: {}", path.display()),
        None => outln!("# no config file found: built-in defaults"),
    }
    // Each line is valid TOML (the output loads back as a config file),
    // with where the value came from as a comment.
    let lines: Vec<String> = entries.iter().map(|e| e.toml_line()).collect();
    let width = lines.iter().map(String::len).max().unwrap_or(0).min(60);
    for (e, line) in entries.iter().zip(&lines) {
        let source = notes
            .iter()
            .find(|(key, _)| *key == e.key)
            .map_or_else(|| e.source.to_string(), |(_, note)| note.clone());
        outln!("{line:width$}  # {source}");
    }
    Ok(0)
}
