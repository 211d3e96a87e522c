//! The JSON mapping Mesos uses (stout's `JSON::protobuf`), for any message
//! of this crate, e.g. `ResourceStatistics` and `ContainerID`.
//!
//! It differs from the proto3 JSON mapping: field names are the original
//! snake_case names, 64-bit integers are JSON numbers (not strings) and enums
//! are written by name. Unset optional fields are left out. Reading accepts
//! what Mesos writes (and, leniently, the proto3 forms too) and refuses
//! unknown fields and messages with missing required fields.

use prost::{Message, Name};
use prost_reflect::{DeserializeOptions, DynamicMessage, SerializeOptions};

use crate::reflect;

/// Errors converting between messages and JSON.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    /// The message type is not in our descriptor set (a build defect).
    #[error("message type {message} is not in the phobos descriptor set")]
    UnknownType {
        /// Full protobuf name.
        message: String,
    },
    /// The message could not be re-encoded for reflection.
    #[error("cannot transcode {message}: {source}")]
    Transcode {
        /// Full protobuf name.
        message: String,
        /// What prost found wrong.
        source: prost::DecodeError,
    },
    /// Serializing or parsing the JSON failed.
    #[error("invalid JSON for {message}: {source}")]
    Json {
        /// Full protobuf name.
        message: String,
        /// The underlying serde_json error.
        source: serde_json::Error,
    },
    /// The JSON parsed, but a required field is absent.
    #[error("{message} is missing required field {field}")]
    MissingRequired {
        /// Full protobuf name.
        message: String,
        /// Dotted path of the missing field.
        field: String,
    },
}

fn options() -> SerializeOptions {
    SerializeOptions::new()
        .use_proto_field_name(true)
        .stringify_64_bit_integers(false)
        .use_enum_numbers(false)
        .skip_default_fields(true)
}

fn dynamic<M: Message + Name>(msg: &M) -> Result<DynamicMessage, JsonError> {
    let name = M::full_name();
    let desc = reflect::descriptor(&name).ok_or_else(|| JsonError::UnknownType {
        message: name.clone(),
    })?;
    let mut dynamic = DynamicMessage::new(desc);
    dynamic
        .transcode_from(msg)
        .map_err(|source| JsonError::Transcode {
            message: name,
            source,
        })?;
    Ok(dynamic)
}

/// Converts `msg` to a JSON value in Mesos's mapping.
pub fn to_json_value<M: Message + Name>(msg: &M) -> Result<serde_json::Value, JsonError> {
    let dynamic = dynamic(msg)?;
    dynamic
        .serialize_with_options(serde_json::value::Serializer, &options())
        .map_err(|source| JsonError::Json {
            message: M::full_name(),
            source,
        })
}

/// Converts `msg` to compact JSON text in Mesos's mapping, fields in
/// field-number order (as stout's `JSON::protobuf` emits them).
pub fn to_json_string<M: Message + Name>(msg: &M) -> Result<String, JsonError> {
    let dynamic = dynamic(msg)?;
    let json = |source| JsonError::Json {
        message: M::full_name(),
        source,
    };
    let mut out = Vec::new();
    dynamic
        .serialize_with_options(&mut serde_json::Serializer::new(&mut out), &options())
        .map_err(json)?;
    // serde_json only ever writes UTF-8.
    String::from_utf8(out).map_err(|e| json(serde::ser::Error::custom(e)))
}

/// Parses a message from JSON text; an unknown field is an error.
pub fn from_json_str<M: Message + Default + Name>(text: &str) -> Result<M, JsonError> {
    parse(text, DeserializeOptions::new())
}

/// Parses a message from JSON text, skipping fields this subset does not
/// declare, as decoding the protobuf encoding does (the v1 agent API: a
/// client may send fields of a newer Mesos). Required fields are still
/// required.
pub fn from_json_str_lenient<M: Message + Default + Name>(text: &str) -> Result<M, JsonError> {
    parse(text, DeserializeOptions::new().deny_unknown_fields(false))
}

fn parse<M: Message + Default + Name>(
    text: &str,
    options: DeserializeOptions,
) -> Result<M, JsonError> {
    let name = M::full_name();
    let desc = reflect::descriptor(&name).ok_or_else(|| JsonError::UnknownType {
        message: name.clone(),
    })?;
    let mut de = serde_json::Deserializer::from_str(text);
    let dynamic = DynamicMessage::deserialize_with_options(desc, &mut de, &options)
        .and_then(|dynamic| de.end().map(|()| dynamic))
        .map_err(|source| JsonError::Json {
            message: name.clone(),
            source,
        })?;
    if let Some(field) = reflect::first_missing_required(&dynamic) {
        return Err(JsonError::MissingRequired {
            message: name,
            field,
        });
    }
    dynamic
        .transcode_to::<M>()
        .map_err(|source| JsonError::Transcode {
            message: name,
            source,
        })
}
