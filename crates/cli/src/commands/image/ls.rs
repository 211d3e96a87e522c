//! `phobos image ls [--json]`: reference, digest, size, layers, last use.

use crate::cli::Global;

pub fn run(global: &Global, json: bool) -> anyhow::Result<u8> {
    let store = super::store(global)?;
    let records = store.records()?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&records)?);
        return Ok(0);
    }
    outln!(
        "{:<50} {:<19} {:>9} {:>6}  LAST USED",
        "REFERENCE",
        "DIGEST",
        "SIZE",
        "LAYERS"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    for r in records {
        let digest = r.digest.to_string();
        let last = match r.last_used {
            Some(t) => format!(
                "{} ago",
                phobos_config::format_duration(std::time::Duration::from_secs(
                    now.saturating_sub(t)
                ))
            ),
            None => "never".to_string(),
        };
        outln!(
            "{:<50} {:<19} {:>9} {:>6}  {last}",
            r.reference,
            &digest[..digest.len().min(19)],
            super::human_size(r.size),
            r.layers.len()
        );
    }
    Ok(0)
}
