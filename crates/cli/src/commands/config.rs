//! `phobos config`: the effective configuration, one key per line with its
//! value and where it came from (default, file:line or command line).

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
            entry.value = launcher.name().to_owned();
            notes.push(("launcher", format!("{} (not root)", entry.source)));
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
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "file": file, "entries": list }))?
        );
        return Ok(0);
    }
    match &settings.loaded().file {
        Some(path) => println!("# config file: {}", path.display()),
        None => println!("# no config file found: built-in defaults"),
    }
    let key_width = entries.iter().map(|e| e.key.len()).max().unwrap_or(0);
    let value_width = entries
        .iter()
        .map(|e| e.value.len() + 2)
        .max()
        .unwrap_or(0)
        .min(40);
    for e in &entries {
        let value = format!("{:?}", e.value);
        let source = notes
            .iter()
            .find(|(key, _)| *key == e.key)
            .map_or_else(|| e.source.to_string(), |(_, note)| note.clone());
        println!("{:key_width$} = {value:value_width$}  # {source}", e.key);
    }
    Ok(0)
}
