//! `ATTACH_CONTAINER_INPUT` (reference §7, §8.3): the request body is a
//! RecordIO stream (`Content-Type: application/recordio`, the records in
//! the `Message-Content-Type`) of `Call`s. The first is
//! `ATTACH_CONTAINER_INPUT{type: CONTAINER_ID, container_id}`; every later
//! one `ATTACH_CONTAINER_INPUT{type: PROCESS_IO, process_io}`:
//! `DATA{STDIN, bytes}` goes to the container's terminal (empty bytes are
//! the end of input: the terminal's EOF character, as Mesos sends),
//! `CONTROL{TTY_INFO{window_size}}` resizes it, `CONTROL{HEARTBEAT}` is
//! ignored. The input goes through the container's switchboard, which
//! takes one input client at a time: a second concurrent stream is 409.
//! The answer (200, or the first problem) comes when the body ends.
//!
//! The body is decoded as it arrives ([`phobos_proto::recordio::Decoder`]):
//! nothing larger than one record ([`crate::Limits::max_body`]) is ever
//! held, and a length over it is refused (413) before anything is
//! allocated for it.

use std::sync::Arc;

use http_body_util::BodyExt;
use hyper::Request;
use hyper::body::Incoming;
use phobos_core::{ContainerId, ContainerState, WindowSize};
use phobos_proto::agent::call::attach_container_input::Type as InputType;
use phobos_proto::agent::call::{AttachContainerInput, Type as CallType};
use phobos_proto::agent::process_io::{self, control};
use phobos_proto::agent::{Call, ProcessIo};
use phobos_proto::recordio::{Decoder, RecordIoError};
use phobos_runtime::terminal::Attach;
use phobos_runtime::terminal::frame::Frame;

use crate::error::ApiError;
use crate::media::Format;
use crate::server::State;
use crate::terminal::Attached;

/// Where the stream is.
enum Stage {
    /// Waiting for the first record (the container's ID).
    Opening,
    Attached(Attached),
    /// The terminal went away (its command ended): the rest of the body
    /// is read and dropped.
    Ended,
}

/// Serves one input stream; `Ok` is the 200 at its end.
pub async fn serve(
    state: &Arc<State>,
    req: Request<Incoming>,
    format: Format,
) -> Result<(), ApiError> {
    let mut body = req.into_body();
    let mut decoder = Decoder::new(state.limits.max_body);
    let mut stage = Stage::Opening;
    let mut records = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame
            .map_err(|e| ApiError::bad_request(format!("Failed to read the request body: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        decoder.feed(&data, &mut records).map_err(record_error)?;
        for record in records.drain(..) {
            let call = format.decode_call(&record)?;
            stage = step(state, stage, call).await?;
        }
    }
    decoder.finish().map_err(record_error)?;
    match stage {
        Stage::Opening => Err(ApiError::bad_request(
            "Expecting at least one record: ATTACH_CONTAINER_INPUT with the container_id",
        )),
        Stage::Attached(_) | Stage::Ended => Ok(()),
    }
}

fn record_error(e: RecordIoError) -> ApiError {
    match e {
        RecordIoError::OverLimit { .. } | RecordIoError::TooLong { .. } => {
            ApiError::too_large(format!("Request body record: {e}"))
        }
        e => ApiError::bad_request(format!("Request body is not valid RecordIO: {e}")),
    }
}

async fn step(state: &Arc<State>, stage: Stage, call: Call) -> Result<Stage, ApiError> {
    if call.r#type() != CallType::AttachContainerInput {
        return Err(ApiError::bad_request(format!(
            "Expecting every record of the stream to be ATTACH_CONTAINER_INPUT, got {}",
            call.r#type().as_str_name()
        )));
    }
    let input = call
        .attach_container_input
        .ok_or_else(|| ApiError::bad_request("Expecting 'attach_container_input' to be present"))?;
    match stage {
        Stage::Opening => open(state, input).await,
        Stage::Attached(mut attached) => {
            let Some(frame) = process_io(input)? else {
                return Ok(Stage::Attached(attached));
            };
            match attached.send(&frame).await {
                Ok(()) => Ok(Stage::Attached(attached)),
                Err(_) => Ok(Stage::Ended),
            }
        }
        Stage::Ended => process_io(input).map(|_| Stage::Ended),
    }
}

/// The first record: the container, and its switchboard's input.
async fn open(state: &Arc<State>, input: AttachContainerInput) -> Result<Stage, ApiError> {
    if input.r#type() != InputType::ContainerId {
        return Err(ApiError::bad_request(
            "Expecting 'attach_container_input.type' to be CONTAINER_ID in the first record",
        ));
    }
    let id = input.container_id.as_ref().ok_or_else(|| {
        ApiError::bad_request("Expecting 'attach_container_input.container_id' to be present")
    })?;
    let id = crate::calls::container_id(id)?;
    let hello = Attach {
        input: true,
        output: false,
        size: None,
    };
    match crate::terminal::attach(state, &id, hello).await? {
        Some(attached) => Ok(Stage::Attached(attached)),
        None => Err(no_terminal(state, &id).await),
    }
}

/// Why a container has no switchboard to take input: 404 unknown, else a
/// 400 naming the problem.
async fn no_terminal(state: &Arc<State>, id: &ContainerId) -> ApiError {
    let door = Arc::clone(&state.door);
    let key = id.clone();
    let summary = tokio::task::spawn_blocking(move || door.summary(&key)).await;
    match summary {
        Ok(Ok(None)) => ApiError::not_found(format!("Container {id} cannot be found")),
        Ok(Ok(Some(s))) if s.state() == ContainerState::Terminated => ApiError::bad_request(
            format!("Container {id} has terminated: its input is closed"),
        ),
        _ => ApiError::bad_request(format!(
            "Container {id} has no terminal and is not a DEBUG container, so no I/O switchboard takes its input: launch it with 'container.tty_info', or as a session"
        )),
    }
}

/// A later record's `ProcessIO` as a switchboard frame (`None`: nothing
/// to send, a heartbeat).
fn process_io(input: AttachContainerInput) -> Result<Option<Frame>, ApiError> {
    if input.r#type() != InputType::ProcessIo {
        return Err(ApiError::bad_request(
            "Expecting 'attach_container_input.type' to be PROCESS_IO after the first record",
        ));
    }
    let io: ProcessIo = input.process_io.ok_or_else(|| {
        ApiError::bad_request("Expecting 'attach_container_input.process_io' to be present")
    })?;
    match io.r#type() {
        process_io::Type::Data => {
            let data = io.data.ok_or_else(|| {
                ApiError::bad_request("Expecting 'process_io.data' to be present")
            })?;
            if data.r#type() != process_io::data::Type::Stdin {
                return Err(ApiError::bad_request(format!(
                    "Expecting 'process_io.data.type' to be STDIN, got {}",
                    data.r#type().as_str_name()
                )));
            }
            let bytes = data.data.unwrap_or_default();
            Ok(Some(if bytes.is_empty() {
                Frame::Eof
            } else {
                Frame::Data(bytes)
            }))
        }
        process_io::Type::Control => {
            let control = io.control.ok_or_else(|| {
                ApiError::bad_request("Expecting 'process_io.control' to be present")
            })?;
            match control.r#type() {
                control::Type::Heartbeat => Ok(None),
                control::Type::TtyInfo => {
                    let size = control
                        .tty_info
                        .and_then(|t| t.window_size)
                        .ok_or_else(|| {
                            ApiError::bad_request(
                                "Expecting 'process_io.control.tty_info.window_size' to be present",
                            )
                        })?;
                    let fit = |v: u32| u16::try_from(v).ok().filter(|v| *v > 0);
                    match (fit(size.rows), fit(size.columns)) {
                        (Some(rows), Some(columns)) => {
                            Ok(Some(Frame::Resize(WindowSize { rows, columns })))
                        }
                        _ => Err(ApiError::bad_request(format!(
                            "invalid window size {}x{}: expected 1 to 65535 rows and columns",
                            size.rows, size.columns
                        ))),
                    }
                }
                control::Type::Unknown => Err(ApiError::bad_request(
                    "Expecting 'process_io.control.type' to be TTY_INFO or HEARTBEAT",
                )),
            }
        }
        process_io::Type::Unknown => Err(ApiError::bad_request(
            "Expecting 'process_io.type' to be DATA or CONTROL",
        )),
    }
}
