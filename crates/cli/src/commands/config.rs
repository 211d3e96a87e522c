//! `phobos config`: the effective configuration, one key per line with its
//! value and where it came from (default, file:line or command line).

use crate::cli::Global;
use crate::context;

pub fn run(global: &Global, json: bool) -> anyhow::Result<u8> {
    let settings = context::settings(global);
    let entries = settings.entries();
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
    let key_width = entries.iter().map(|e| e.key.len()).max().unwrap_or(0);
    let value_width = entries
        .iter()
        .map(|e| e.value.len() + 2)
        .max()
        .unwrap_or(0)
        .min(40);
    for e in &entries {
        let value = format!("{:?}", e.value);
        println!(
            "{:key_width$} = {value:value_width$}  # {}",
            e.key, e.source
        );
    }
    Ok(0)
}
