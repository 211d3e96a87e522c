//! Streaming responses: RecordIO (`<length>\n<bytes>`, reference §7.4) of
//! `ProcessIO` messages in the type `Message-Accept` asked for, with a
//! heartbeat record (`CONTROL`/`HEARTBEAT`) whenever nothing else was sent
//! for an interval, so proxies and clients can tell a quiet stream from a
//! dead one.
//!
//! The body is fed through a small bounded channel: a client that stops
//! reading stalls only its own feeder task, never a container; a client
//! that goes away drops the receiver, and the feeder stops at its next
//! send.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame};
use phobos_proto::agent::ProcessIo;
use phobos_proto::agent::process_io::{self, control};
use phobos_proto::mesos::DurationInfo;
use tokio::sync::mpsc;

use crate::media::Format;

/// Records a feeder may have queued ahead of a slow client.
const QUEUED_RECORDS: usize = 16;

/// The receiving half: a response body of RecordIO records.
pub struct RecordBody {
    rx: mpsc::Receiver<Bytes>,
}

impl Body for RecordBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.rx
            .poll_recv(cx)
            .map(|record| record.map(|bytes| Ok(Frame::data(bytes))))
    }
}

/// The sending half, which frames and encodes records.
pub struct RecordSender {
    tx: mpsc::Sender<Bytes>,
    format: Format,
    heartbeat: Duration,
}

/// The client has gone.
#[derive(Debug)]
pub struct Gone;

/// A new stream of `ProcessIO` records in `format`.
pub fn channel(format: Format, heartbeat: Duration) -> (RecordSender, RecordBody) {
    let (tx, rx) = mpsc::channel(QUEUED_RECORDS);
    (
        RecordSender {
            tx,
            format,
            heartbeat,
        },
        RecordBody { rx },
    )
}

impl RecordSender {
    /// Sends one record; waits while the client's queue is full.
    pub async fn send(&self, record: &ProcessIo) -> Result<(), Gone> {
        let payload = self.format.encode_process_io(record).map_err(|_| Gone)?;
        let framed = phobos_proto::recordio::encode_record(&payload).map_err(|_| Gone)?;
        self.tx.send(Bytes::from(framed)).await.map_err(|_| Gone)
    }

    /// Sends a heartbeat record.
    pub async fn heartbeat(&self) -> Result<(), Gone> {
        self.send(&heartbeat(self.heartbeat)).await
    }

    pub fn interval(&self) -> Duration {
        self.heartbeat
    }

    /// Resolves when the client has gone.
    pub async fn closed(&self) {
        self.tx.closed().await;
    }
}

/// A `DATA` record of `STDOUT` or `STDERR`.
pub fn data(kind: process_io::data::Type, bytes: Vec<u8>) -> ProcessIo {
    ProcessIo {
        r#type: Some(process_io::Type::Data as i32),
        data: Some(process_io::Data {
            r#type: Some(kind as i32),
            data: Some(bytes),
        }),
        control: None,
    }
}

/// A `CONTROL` `HEARTBEAT` record announcing `interval`.
pub fn heartbeat(interval: Duration) -> ProcessIo {
    ProcessIo {
        r#type: Some(process_io::Type::Control as i32),
        data: None,
        control: Some(process_io::Control {
            r#type: Some(control::Type::Heartbeat as i32),
            tty_info: None,
            heartbeat: Some(control::Heartbeat {
                interval: Some(DurationInfo {
                    nanoseconds: i64::try_from(interval.as_nanos()).unwrap_or(i64::MAX),
                }),
            }),
        }),
    }
}
