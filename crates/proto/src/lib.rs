//! Mesos protocol types for phobos.
//!
//! The `.proto` files under `proto/` re-author the subset of Apache Mesos's
//! `mesos.proto` and `containerizer.proto` that the external containerizer
//! protocol needs, keeping every field name, number and type, so the bytes
//! are interchangeable with a real agent. They are compiled at build time by
//! protox and prost-build (no protoc needed).
//!
//! - [`mesos`], [`containerizer`]: the generated message types. Proto2
//!   `required` fields are plain values in Rust; prost always writes them.
//! - [`ecp`]: the external containerizer's 4-byte length-prefixed framing,
//!   which also refuses messages with missing `required` fields as Mesos does.
//! - [`recordio`]: the `<length>\n<bytes>` framing of the v1 HTTP APIs.
//! - [`json`]: Mesos's JSON mapping (snake_case, 64-bit integers as numbers,
//!   enums by name).

#[allow(clippy::all, clippy::pedantic, missing_docs, rustdoc::all)]
mod generated {
    pub mod mesos {
        include!(concat!(env!("OUT_DIR"), "/mesos.rs"));

        pub mod containerizer {
            include!(concat!(env!("OUT_DIR"), "/mesos.containerizer.rs"));
        }
    }
}

/// Messages of package `mesos`.
pub use generated::mesos;
/// Messages of package `mesos.containerizer` (the external containerizer).
pub use generated::mesos::containerizer;

/// The encoded `FileDescriptorSet` of both `.proto` files.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptors.bin"));

pub mod ecp;
pub mod json;
pub mod recordio;
mod reflect;
