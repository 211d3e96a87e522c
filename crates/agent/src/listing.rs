//! `GET /phobos/v1/containers[/ID]`: Phobos's own read-only listing, the
//! door's container summaries exactly as `phobos ps --json` and `phobos
//! status ID --json` print them (pretty JSON, the same serializer), so
//! `phobos --agent SOCKET ps|status` shows what the local command shows.
//! Mesos's `GET_CONTAINERS` has no state, command or start time; its
//! statistics are what `ps` reads from it.

use std::sync::Arc;

use phobos_core::ContainerId;

use crate::error::ApiError;
use crate::server::State;

/// The path prefix.
pub const PATH: &str = "/phobos/v1/containers";

/// The body for `path` (under [`PATH`]): every container, or the one
/// named after it (404 unknown, 400 an invalid ID).
pub async fn answer(state: &Arc<State>, path: &str) -> Result<String, ApiError> {
    if state.recovering.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(ApiError::unavailable("Agent has not finished recovery"));
    }
    let rest = path.strip_prefix(PATH).unwrap_or_default();
    let id = match rest.strip_prefix('/') {
        None if rest.is_empty() => None,
        Some(text) => Some(
            ContainerId::parse_path(text)
                .map_err(|e| ApiError::bad_request(format!("invalid container ID: {e}")))?,
        ),
        None => return Err(ApiError::not_found(format!("no endpoint {path:?}"))),
    };
    let door = Arc::clone(&state.door);
    let body = tokio::task::spawn_blocking(move || match &id {
        None => door
            .list()
            .map_err(|e| ApiError::internal(format!("Failed to list containers: {e}")))
            .and_then(|list| serde_json::to_string_pretty(&list).map_err(encoding)),
        Some(id) => match door.summary(id) {
            Ok(Some(summary)) => serde_json::to_string_pretty(&summary).map_err(encoding),
            Ok(None) => Err(ApiError::not_found(format!(
                "Container {id} cannot be found"
            ))),
            Err(e) => Err(ApiError::internal(format!(
                "Failed to read container {id}: {e}"
            ))),
        },
    })
    .await
    .map_err(|e| ApiError::internal(format!("the listing failed: {e}")))??;
    Ok(body)
}

fn encoding(e: serde_json::Error) -> ApiError {
    ApiError::internal(format!("cannot encode the listing: {e}"))
}
