//! Every way an ECP frame can be bad, each with its own error variant, and a
//! property test that no input panics the reader.

use std::io::{self, Read};

use phobos_proto::containerizer::{Containers, Launch, Termination, TerminationV019, Wait};
use phobos_proto::ecp::{FrameError, MAX_MESSAGE_LEN, read_message, write_message};
use phobos_proto::mesos::ResourceStatistics;
use proptest::prelude::*;

fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_ne_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

fn read<M: prost::Message + prost::Name + Default>(bytes: &[u8]) -> Result<M, FrameError> {
    let mut input = bytes;
    read_message(&mut input)
}

#[test]
fn empty_input_is_a_missing_prefix() {
    let err = read::<Wait>(&[]).unwrap_err();
    assert!(matches!(err, FrameError::MissingPrefix), "{err:?}");
    assert_eq!(
        err.to_string(),
        "no message: the input ended before the 4-byte length prefix"
    );
}

#[test]
fn short_prefix_names_the_count() {
    for got in 1..4 {
        let err = read::<Wait>(&[0u8; 3][..got]).unwrap_err();
        assert!(matches!(err, FrameError::ShortPrefix { got: g } if g == got));
        assert_eq!(
            err.to_string(),
            format!("truncated length prefix: got {got} of 4 bytes")
        );
    }
}

/// A reader that hands out its prefix and then fails the test if the body is
/// ever touched: an oversized length must be refused before reading (and so
/// before allocating) anything.
struct PrefixOnly {
    prefix: [u8; 4],
    pos: usize,
}

impl Read for PrefixOnly {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        assert!(self.pos < 4, "the body of an oversized frame was read");
        let n = buf.len().min(4 - self.pos);
        buf[..n].copy_from_slice(&self.prefix[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[test]
fn oversized_length_is_refused_before_reading_the_body() {
    for len in [80_000_000u32, MAX_MESSAGE_LEN as u32 + 1, u32::MAX] {
        let mut r = PrefixOnly {
            prefix: len.to_ne_bytes(),
            pos: 0,
        };
        let err = read_message::<Launch>(&mut r).unwrap_err();
        assert!(matches!(err, FrameError::TooLong { len: l } if l == u64::from(len)));
        assert_eq!(
            err.to_string(),
            format!("message length {len} exceeds the 64 MiB limit")
        );
    }
}

#[test]
fn exactly_64_mib_is_accepted_as_a_length() {
    // The limit itself is allowed; the (missing) body is what fails here.
    let err = read::<Containers>(&(MAX_MESSAGE_LEN as u32).to_ne_bytes()).unwrap_err();
    assert!(
        matches!(err, FrameError::ShortBody { expected, got: 0 } if expected == MAX_MESSAGE_LEN)
    );
}

#[test]
fn short_body_names_both_counts() {
    let mut bytes = frame(&[0x0a, 0x03, 0x0a, 0x01, b'x']);
    bytes.truncate(bytes.len() - 2);
    let err = read::<Wait>(&bytes).unwrap_err();
    assert!(matches!(
        err,
        FrameError::ShortBody {
            expected: 5,
            got: 3
        }
    ));
    assert_eq!(err.to_string(), "truncated message body: got 3 of 5 bytes");
}

#[test]
fn undecodable_body_is_a_decode_error() {
    // Field 1 claims 100 bytes of a 2-byte body.
    let err = read::<Wait>(&frame(&[0x0a, 0x64])).unwrap_err();
    assert!(
        matches!(err, FrameError::Decode { ref message, len: 2, .. } if message == "mesos.containerizer.Wait")
    );
    assert!(
        err.to_string()
            .starts_with("cannot decode 2 bytes as mesos.containerizer.Wait: "),
        "{err}"
    );
    // A wire type of 7 does not exist.
    let err = read::<Containers>(&frame(&[0x0f])).unwrap_err();
    assert!(matches!(err, FrameError::Decode { .. }), "{err:?}");
}

fn missing(bytes: &[u8]) -> (String, String) {
    match read::<Launch>(bytes) {
        Err(FrameError::MissingRequired { message, field }) => (message, field),
        other => panic!("expected MissingRequired, got {other:?}"),
    }
}

#[test]
fn missing_container_id_is_refused() {
    // A Launch with only `user` (field 5) set.
    let (message, field) = missing(&frame(&[0x2a, 0x01, b'u']));
    assert_eq!(message, "mesos.containerizer.Launch");
    assert_eq!(field, "container_id");

    let err = read::<Wait>(&frame(&[])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "mesos.containerizer.Wait is missing required field container_id"
    );
}

#[test]
fn missing_nested_required_fields_are_refused() {
    // container_id present but empty: ContainerID.value is required.
    let (_, field) = missing(&frame(&[0x0a, 0x00]));
    assert_eq!(field, "container_id.value");

    // container_id { value: "c" parent {} }: the parent lacks its value.
    let (_, field) = missing(&frame(&[0x0a, 0x05, 0x0a, 0x01, b'c', 0x12, 0x00]));
    assert_eq!(field, "container_id.parent.value");
}

#[test]
fn missing_required_in_repeated_field_names_the_index() {
    // Containers { containers: [{value:"a"}, {}] }
    let err = read::<Containers>(&frame(&[0x0a, 0x03, 0x0a, 0x01, b'a', 0x0a, 0x00])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "mesos.containerizer.Containers is missing required field containers[1].value"
    );
}

#[test]
fn termination_v019_requires_killed_and_message() {
    // Only `message` (2): `killed` (1) is missing.
    let err = read::<TerminationV019>(&frame(&[0x12, 0x00])).unwrap_err();
    assert!(matches!(err, FrameError::MissingRequired { ref field, .. } if field == "killed"));
    // Only `killed`: `message` is missing.
    let err = read::<TerminationV019>(&frame(&[0x08, 0x00])).unwrap_err();
    assert!(matches!(err, FrameError::MissingRequired { ref field, .. } if field == "message"));
    // Both present, even as defaults: accepted.
    let ok = read::<TerminationV019>(&frame(&[0x08, 0x00, 0x12, 0x00])).unwrap();
    assert!(!ok.killed);
}

#[test]
fn termination_has_no_required_fields() {
    assert_eq!(
        read::<Termination>(&frame(&[])).unwrap(),
        Termination::default()
    );
}

#[test]
fn resource_statistics_requires_timestamp() {
    // Only mem_rss_bytes (5) = 1.
    let err = read::<ResourceStatistics>(&frame(&[0x28, 0x01])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "mesos.ResourceStatistics is missing required field timestamp"
    );
}

#[test]
fn unknown_fields_are_skipped() {
    // Wait { container_id { value: "a" } } followed by field 99 (varint 1),
    // which a newer agent might send.
    let bytes = frame(&[0x0a, 0x03, 0x0a, 0x01, b'a', 0x98, 0x06, 0x01]);
    let wait = read::<Wait>(&bytes).unwrap();
    assert_eq!(wait.container_id.value, "a");
}

#[test]
fn reader_stops_after_one_frame() {
    let mut bytes = frame(&[0x0a, 0x03, 0x0a, 0x01, b'a']);
    bytes.extend_from_slice(b"trailing");
    let mut input = bytes.as_slice();
    let wait: Wait = read_message(&mut input).unwrap();
    assert_eq!(wait.container_id.value, "a");
    assert_eq!(input, b"trailing");
}

struct FailingWriter;

impl io::Write for FailingWriter {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::new(io::ErrorKind::BrokenPipe, "agent went away"))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn write_errors_carry_the_io_error() {
    let err = write_message(&mut FailingWriter, &Termination::default()).unwrap_err();
    assert!(matches!(err, FrameError::Io { .. }));
    assert_eq!(
        err.to_string(),
        "i/o error while writing the message: agent went away"
    );
}

#[test]
fn oversized_message_is_not_written() {
    let big = TerminationV019 {
        killed: false,
        message: "x".repeat(MAX_MESSAGE_LEN),
        status: None,
    };
    let mut out = Vec::new();
    let err = write_message(&mut out, &big).unwrap_err();
    assert!(matches!(err, FrameError::TooLong { len } if len > MAX_MESSAGE_LEN as u64));
    assert!(out.is_empty());
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = read::<Launch>(&bytes);
        let _ = read::<ResourceStatistics>(&bytes);
        let _ = read::<TerminationV019>(&bytes);
    }

    #[test]
    fn arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        // A correct prefix, so the decoder (not the framing) sees the noise.
        let bytes = frame(&body);
        let _ = read::<Launch>(&bytes);
        let _ = read::<Containers>(&bytes);
        let _ = read::<ResourceStatistics>(&bytes);
    }

    #[test]
    fn wait_round_trips(value in "[a-zA-Z0-9_-]{1,64}", parent in proptest::option::of("[a-z]{1,8}")) {
        let wait = Wait {
            container_id: phobos_proto::mesos::ContainerId {
                value,
                parent: parent.map(|value| Box::new(phobos_proto::mesos::ContainerId { value, parent: None })),
            },
        };
        let mut bytes = Vec::new();
        write_message(&mut bytes, &wait).unwrap();
        prop_assert_eq!(read::<Wait>(&bytes).unwrap(), wait);
    }
}
