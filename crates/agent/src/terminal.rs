//! The agent as a client of a container's I/O switchboard (the one holder
//! of its terminal's master, `phobos_tty::server`): ATTACH_CONTAINER_INPUT
//! attaches for the input (one client at a time: the switchboard refuses a
//! second, answered 409), ATTACH_CONTAINER_OUTPUT and a session's stream
//! for the output. The attach itself is a short blocking exchange on the
//! switchboard's Unix socket; the stream is then driven by tokio.

use std::sync::Arc;

use phobos_core::ContainerId;
use phobos_runtime::terminal::frame::{Decoder, Frame};
use phobos_runtime::terminal::{Attach, AttachError, Client};
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;

use crate::error::ApiError;
use crate::server::State;

/// An attached switchboard stream.
#[derive(Debug)]
pub struct Attached {
    pub stream: UnixStream,
    /// Bytes received after the switchboard's answer, not yet decoded.
    pub decoder: Decoder,
    /// Output decoded with the answer (`Data` and `ErrData` frames).
    pub ahead: Vec<Frame>,
}

/// Attaches to the switchboard of `id` for `attach`; `None` when the
/// container has no terminal (or its switchboard has ended). A second
/// input client is 409.
pub async fn attach(
    state: &Arc<State>,
    id: &ContainerId,
    attach: Attach,
) -> Result<Option<Attached>, ApiError> {
    let door = Arc::clone(&state.door);
    let key = id.clone();
    let connected = tokio::task::spawn_blocking(move || {
        let Some(path) = door.switchboard(&key) else {
            return Ok(None);
        };
        match Client::connect(&path, attach) {
            Ok(client) => Ok(Some(client.into_parts())),
            // Its command ended between the look and the connect (the
            // switchboard is closing its clients, or gone).
            Err(AttachError::Connect { .. } | AttachError::Io(_)) => Ok(None),
            Err(e) => Err(e),
        }
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?;
    let (stream, decoder, ahead) = match connected {
        Ok(Some(parts)) => parts,
        Ok(None) => return Ok(None),
        Err(e) if e.is_input_busy() => {
            return Err(ApiError::conflict(format!(
                "Container {id} is already attached to an input stream: only one at a time"
            )));
        }
        Err(e) => {
            return Err(ApiError::internal(format!(
                "Failed to attach to the terminal of container {id}: {e}"
            )));
        }
    };
    let stream = stream
        .set_nonblocking(true)
        .and_then(|()| UnixStream::from_std(stream))
        .map_err(|e| ApiError::internal(format!("Failed to attach to container {id}: {e}")))?;
    Ok(Some(Attached {
        stream,
        decoder,
        ahead,
    }))
}

impl Attached {
    /// Sends one frame to the switchboard (waits while it holds our input
    /// back: a command that does not read holds back only this client).
    pub async fn send(&mut self, frame: &Frame) -> std::io::Result<()> {
        let mut bytes = Vec::new();
        match frame {
            Frame::Data(d) => phobos_runtime::terminal::frame::encode_data(d, &mut bytes),
            other => other.encode(&mut bytes),
        }
        self.stream.write_all(&bytes).await
    }
}
