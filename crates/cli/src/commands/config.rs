//! `phobos config`: the effective configuration, one key per line with its
//! value and where it came from (default, file:line or command line), as
//! a configuration file that loads back to the same values.

use phobos_config::Source;
use phobos_core::LauncherKind;
use phobos_mesos::isolator;

use crate::cli::Global;
use crate::context;

pub fn run(global: &Global, json: bool) -> anyhow::Result<u8> {
    let settings = context::settings(global);
    let mut entries = settings.entries();
    // Unset, `isolation` means the launcher's own set on this host (what
    // `phobos run` and `phobos ecp launch` use), not Mesos's nominal
    // default: show that.
    let mut isolation_note = None;
    if let Some(entry) = entries
        .iter_mut()
        .find(|e| e.key == "isolation" && e.source == Source::Default)
    {
        let launcher = match settings.config.launcher {
            phobos_config::Launcher::Linux if context::euid() == 0 => LauncherKind::Linux,
            _ => LauncherKind::Posix,
        };
        let names = isolator::default_isolation(launcher);
        entry.value = names.join(",");
        isolation_note = Some(format!(
            "default: the {} launcher's set here",
            launcher.name()
        ));
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
        let file = settings.file.as_ref().map(|p| p.display().to_string());
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "file": file, "entries": list }))?
        );
        return Ok(0);
    }
    match &settings.file {
        Some(path) => println!("# config file: {}", path.display()),
        None => println!("# no config file found: built-in defaults"),
    }
    // Each line is valid TOML (the output loads back as a config file),
    // with where the value came from as a comment.
    let lines: Vec<String> = entries.iter().map(|e| e.toml_line()).collect();
    let width = lines.iter().map(String::len).max().unwrap_or(0).min(60);
    for (e, line) in entries.iter().zip(&lines) {
        let source = match (&isolation_note, e.key) {
            (Some(note), "isolation") => note.clone(),
            _ => e.source.to_string(),
        };
        println!("{line:width$}  # {source}");
    }
    Ok(0)
}
