//! Media types of the v1 API: a request body is a `Call` in JSON
//! (`application/json`) or protobuf (`application/x-protobuf`), and the
//! response is in the type `Accept` asks for (the request's own type when
//! `Accept` is absent or `*/*`). A streaming response is RecordIO
//! (`Accept: application/recordio`) of messages in the type
//! `Message-Accept` names, announced back in `Message-Content-Type`.
//!
//! Decoding never panics and never allocates from a length on the wire:
//! the body is already bounded by the server, JSON nesting by serde_json's
//! recursion limit, protobuf nesting by prost's.

use hyper::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue};
use phobos_proto::agent::{Call, ProcessIo, Response};

use crate::error::ApiError;

pub const JSON: &str = "application/json";
pub const PROTOBUF: &str = "application/x-protobuf";
pub const RECORDIO: &str = "application/recordio";
pub const MESSAGE_ACCEPT: &str = "message-accept";
pub const MESSAGE_CONTENT_TYPE: &str = "message-content-type";

/// The two encodings of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Protobuf,
}

impl Format {
    pub fn mime(self) -> &'static str {
        match self {
            Self::Json => JSON,
            Self::Protobuf => PROTOBUF,
        }
    }

    fn parse(essence: &str) -> Option<Self> {
        match essence {
            JSON => Some(Self::Json),
            PROTOBUF => Some(Self::Protobuf),
            _ => None,
        }
    }

    /// Decodes a `Call` from a whole body.
    pub fn decode_call(self, body: &[u8]) -> Result<Call, ApiError> {
        match self {
            Self::Json => {
                let text = std::str::from_utf8(body)
                    .map_err(|e| ApiError::bad_request(format!("Failed to parse body: {e}")))?;
                phobos_proto::json::from_json_str_lenient::<Call>(text).map_err(|e| {
                    ApiError::bad_request(format!("Failed to parse body into Call: {e}"))
                })
            }
            Self::Protobuf => phobos_proto::ecp::decode_body::<Call>(body)
                .map_err(|e| ApiError::bad_request(format!("Failed to parse body into Call: {e}"))),
        }
    }

    /// Encodes a `Response`.
    pub fn encode_response(self, response: &Response) -> Result<Vec<u8>, ApiError> {
        encode(self, response)
    }

    /// Encodes a `ProcessIO` record's payload.
    pub fn encode_process_io(self, record: &ProcessIo) -> Result<Vec<u8>, ApiError> {
        encode(self, record)
    }
}

fn encode<M: prost::Message + prost::Name>(format: Format, msg: &M) -> Result<Vec<u8>, ApiError> {
    match format {
        Format::Json => phobos_proto::json::to_json_string(msg)
            .map(String::into_bytes)
            .map_err(|e| ApiError::internal(format!("cannot encode the response: {e}"))),
        Format::Protobuf => Ok(msg.encode_to_vec()),
    }
}

/// The media type's essence: lower case, without parameters.
fn essence(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

fn header(headers: &HeaderMap, name: impl hyper::header::AsHeaderName) -> Option<&str> {
    headers
        .get(name)
        .and_then(|v: &HeaderValue| v.to_str().ok())
}

/// The request body's format; 415 for anything else (also for a
/// RecordIO body, which only `ATTACH_CONTAINER_INPUT` sends).
pub fn request_format(headers: &HeaderMap) -> Result<RequestBody, ApiError> {
    let Some(value) = header(headers, CONTENT_TYPE) else {
        return Err(ApiError::unsupported_media(
            "Expecting 'Content-Type' to be present",
        ));
    };
    let essence = essence(value);
    if essence == RECORDIO {
        let inner = header(headers, MESSAGE_CONTENT_TYPE).map(self::essence);
        return match inner.as_deref().and_then(Format::parse) {
            Some(f) => Ok(RequestBody::Stream(f)),
            None => Err(ApiError::unsupported_media(format!(
                "Expecting 'Message-Content-Type' to be {JSON} or {PROTOBUF} for a {RECORDIO} body, got {:?}",
                inner.unwrap_or_default()
            ))),
        };
    }
    Format::parse(&essence)
        .map(RequestBody::Whole)
        .ok_or_else(|| {
            ApiError::unsupported_media(format!(
                "Expecting 'Content-Type' of {JSON} or {PROTOBUF}, got {value:?}"
            ))
        })
}

/// How the request body is framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestBody {
    /// One message.
    Whole(Format),
    /// RecordIO of messages.
    Stream(Format),
}

/// What the client accepts for a plain response: the first acceptable
/// type in `Accept` (no quality weighting: Mesos clients send one type);
/// `default` when absent or a wildcard; 406 otherwise.
pub fn response_format(headers: &HeaderMap, default: Format) -> Result<Format, ApiError> {
    let Some(accept) = header(headers, ACCEPT) else {
        return Ok(default);
    };
    for part in accept.split(',') {
        let e = essence(part);
        if e == "*/*" || e == "application/*" {
            return Ok(default);
        }
        if let Some(f) = Format::parse(&e) {
            return Ok(f);
        }
    }
    Err(ApiError::not_acceptable(format!(
        "Expecting 'Accept' to allow {JSON} or {PROTOBUF}, got {accept:?}"
    )))
}

/// What the client accepts for a streaming response: RecordIO (or a
/// wildcard) in `Accept`, and the record type from `Message-Accept`
/// (`default` when absent or a wildcard); 406 otherwise.
pub fn stream_format(headers: &HeaderMap, default: Format) -> Result<Format, ApiError> {
    if let Some(accept) = header(headers, ACCEPT) {
        let ok = accept
            .split(',')
            .map(essence)
            .any(|e| e == RECORDIO || e == "*/*" || e == "application/*");
        if !ok {
            return Err(ApiError::not_acceptable(format!(
                "Expecting 'Accept' to allow {RECORDIO} for a streaming response, got {accept:?}"
            )));
        }
    }
    let Some(inner) = header(headers, MESSAGE_ACCEPT) else {
        return Ok(default);
    };
    for part in inner.split(',') {
        let e = essence(part);
        if e == "*/*" || e == "application/*" {
            return Ok(default);
        }
        if let Some(f) = Format::parse(&e) {
            return Ok(f);
        }
    }
    Err(ApiError::not_acceptable(format!(
        "Expecting 'Message-Accept' to allow {JSON} or {PROTOBUF}, got {inner:?}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn content_types() {
        let h = headers(&[("content-type", "application/json; charset=utf-8")]);
        assert_eq!(
            request_format(&h).unwrap(),
            RequestBody::Whole(Format::Json)
        );
        let h = headers(&[("content-type", "text/plain")]);
        assert_eq!(request_format(&h).unwrap_err().status, 415);
        assert_eq!(request_format(&HeaderMap::new()).unwrap_err().status, 415);
        let h = headers(&[
            ("content-type", "application/recordio"),
            ("message-content-type", "application/x-protobuf"),
        ]);
        assert_eq!(
            request_format(&h).unwrap(),
            RequestBody::Stream(Format::Protobuf)
        );
    }

    #[test]
    fn accept() {
        let h = headers(&[("accept", "application/x-protobuf")]);
        assert_eq!(response_format(&h, Format::Json).unwrap(), Format::Protobuf);
        let h = headers(&[("accept", "*/*")]);
        assert_eq!(response_format(&h, Format::Json).unwrap(), Format::Json);
        let h = headers(&[("accept", "text/html")]);
        assert_eq!(response_format(&h, Format::Json).unwrap_err().status, 406);
        let h = headers(&[("accept", "application/json")]);
        assert_eq!(stream_format(&h, Format::Json).unwrap_err().status, 406);
        let h = headers(&[
            ("accept", "application/recordio"),
            ("message-accept", "application/x-protobuf"),
        ]);
        assert_eq!(stream_format(&h, Format::Json).unwrap(), Format::Protobuf);
    }
}
