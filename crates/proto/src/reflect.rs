//! Reflection over our own descriptors: finding a message's descriptor and
//! checking proto2 `required` fields.
//!
//! prost does not enforce `required`: a missing required field decodes as its
//! default. Mesos's `protobuf::read` (and `ParseFromString`) rejects such a
//! message, so we re-decode the bytes as a `prost_reflect::DynamicMessage`,
//! which records which fields were actually present, and walk it.

use std::sync::OnceLock;

use prost_reflect::{
    Cardinality, DescriptorPool, DynamicMessage, MessageDescriptor, ReflectMessage, Value,
};

use crate::FILE_DESCRIPTOR_SET;

/// The pool built from [`FILE_DESCRIPTOR_SET`], or `None` if it failed to
/// load (which would be a build defect, reported as an error by callers).
fn pool() -> Option<&'static DescriptorPool> {
    static POOL: OnceLock<Option<DescriptorPool>> = OnceLock::new();
    POOL.get_or_init(|| DescriptorPool::decode(FILE_DESCRIPTOR_SET).ok())
        .as_ref()
}

/// The descriptor of the message with the given full name, e.g.
/// `mesos.containerizer.Launch`.
pub(crate) fn descriptor(full_name: &str) -> Option<MessageDescriptor> {
    pool()?.get_message_by_name(full_name)
}

/// The dotted path of the first required field missing anywhere in `msg`
/// (e.g. `container_id.value` or `resources[2].name`), or `None` when the
/// message is fully initialized.
pub(crate) fn first_missing_required(msg: &DynamicMessage) -> Option<String> {
    for field in msg.descriptor().fields() {
        let present = msg.has_field(&field);
        if !present {
            if field.cardinality() == Cardinality::Required {
                return Some(field.name().to_owned());
            }
            continue;
        }
        match &*msg.get_field(&field) {
            Value::Message(inner) => {
                if let Some(path) = first_missing_required(inner) {
                    return Some(format!("{}.{path}", field.name()));
                }
            }
            Value::List(items) => {
                for (index, item) in items.iter().enumerate() {
                    if let Value::Message(inner) = item
                        && let Some(path) = first_missing_required(inner)
                    {
                        return Some(format!("{}[{index}].{path}", field.name()));
                    }
                }
            }
            _ => {}
        }
    }
    None
}
