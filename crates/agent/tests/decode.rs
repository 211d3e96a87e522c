//! The request decoders never panic, whatever the body: arbitrary bytes as
//! JSON and as protobuf, arbitrary JSON documents, and mutations of valid
//! calls. Refusals are 400s with one line naming the problem.

use phobos_agent::media::Format;
use phobos_proto::agent::Call;
use proptest::prelude::*;
use prost::Message;

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        "[a-zA-Z_]{0,12}".prop_map(serde_json::Value::from),
        prop_oneof![
            Just("LAUNCH_CONTAINER"),
            Just("WAIT_CONTAINER"),
            Just("SCALAR"),
            Just("MESOS")
        ]
        .prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        let keys = prop_oneof![
            Just("type".to_owned()),
            Just("launch_container".to_owned()),
            Just("container_id".to_owned()),
            Just("value".to_owned()),
            Just("command".to_owned()),
            Just("resources".to_owned()),
            Just("limits".to_owned()),
            Just("scalar".to_owned()),
            Just("parent".to_owned()),
            "[a-z_]{1,10}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(keys, inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        for format in [Format::Json, Format::Protobuf] {
            if let Err(e) = format.decode_call(&body) {
                prop_assert_eq!(e.status, 400);
                prop_assert!(!e.message.is_empty());
            }
        }
    }

    #[test]
    fn arbitrary_json_never_panics(value in json_value()) {
        let text = value.to_string();
        if let Err(e) = Format::Json.decode_call(text.as_bytes()) {
            prop_assert_eq!(e.status, 400);
        }
    }

    #[test]
    fn mutated_protobuf_calls_never_panic(
        value in "[a-z0-9-]{1,16}",
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let json = format!(
            r#"{{"type":"LAUNCH_CONTAINER","launch_container":{{"container_id":{{"value":"{value}"}},"command":{{"value":"true"}},"limits":{{"cpus":{{"value":1.5}}}}}}}}"#
        );
        let call = Format::Json.decode_call(json.as_bytes()).unwrap();
        let mut bytes = call.encode_to_vec();
        prop_assert_eq!(Call::decode(bytes.as_slice()).unwrap(), call);
        for (at, byte) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= byte;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        let _ = Format::Protobuf.decode_call(&bytes);
    }
}

#[test]
fn deep_nesting_is_refused_not_a_stack_overflow() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert_eq!(
        Format::Json
            .decode_call(deep.as_bytes())
            .unwrap_err()
            .status,
        400
    );
    let deep = format!(
        "{{\"type\":\"LAUNCH_CONTAINER\",\"launch_container\":{{\"container_id\":{}\"value\":\"x\"{}}}}}",
        "{\"value\":\"x\",\"parent\":".repeat(5000),
        "}".repeat(5000)
    );
    assert_eq!(
        Format::Json
            .decode_call(deep.as_bytes())
            .unwrap_err()
            .status,
        400
    );
    // Protobuf: a parent chain deeper than prost's recursion limit.
    let mut id = phobos_proto::mesos::ContainerId {
        value: "x".into(),
        parent: None,
    };
    for _ in 0..200 {
        id = phobos_proto::mesos::ContainerId {
            value: "x".into(),
            parent: Some(Box::new(id)),
        };
    }
    let call = Call {
        r#type: Some(23),
        wait_container: Some(phobos_proto::agent::call::WaitContainer { container_id: id }),
        ..Call::default()
    };
    assert_eq!(
        Format::Protobuf
            .decode_call(&call.encode_to_vec())
            .unwrap_err()
            .status,
        400
    );
}

#[test]
fn unknown_json_fields_are_skipped_like_unknown_protobuf_fields() {
    let call = Format::Json
        .decode_call(br#"{"type":"GET_CONTAINERS","get_containers":{"show_standalone":true,"newer_field":1},"other":{}}"#)
        .unwrap();
    assert_eq!(call.get_containers.unwrap().show_standalone, Some(true));
}

/// ATTACH_CONTAINER_INPUT's body decoder (`phobos_proto::recordio::Decoder`):
/// records split anywhere come out whole; a length over the per-record
/// limit is refused as soon as its header ends, before anything is kept.
mod streaming_records {
    use phobos_proto::recordio::{Decoder, RecordIoError, encode_record};
    use proptest::prelude::*;

    /// Feeds `bytes` in pieces cut at `cuts`; the records, or the error.
    fn decode(max: usize, bytes: &[u8], cuts: &[usize]) -> Result<Vec<Vec<u8>>, RecordIoError> {
        let mut d = Decoder::new(max);
        let mut out = Vec::new();
        let mut at = 0;
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        cuts.sort_unstable();
        for cut in cuts.into_iter().chain([bytes.len()]) {
            d.feed(&bytes[at..cut.max(at)], &mut out)?;
            at = cut.max(at);
        }
        d.finish()?;
        Ok(out)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn records_split_anywhere_come_out_whole(
            records in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..8),
            cuts in prop::collection::vec(any::<usize>(), 0..12),
        ) {
            let mut bytes = Vec::new();
            for r in &records {
                bytes.extend(encode_record(r).unwrap());
            }
            prop_assert_eq!(decode(300, &bytes, &cuts).unwrap(), records);
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            bytes in prop::collection::vec(any::<u8>(), 0..256),
            cuts in prop::collection::vec(any::<usize>(), 0..8),
        ) {
            // Digits and newlines often, so lengths and records happen.
            let bytes: Vec<u8> = bytes
                .iter()
                .map(|b| match b % 4 { 0 => b'\n', 1 => b'0' + b % 10, _ => *b })
                .collect();
            if let Ok(records) = decode(64, &bytes, &cuts) {
                prop_assert!(records.iter().all(|r| r.len() <= 64));
            }
        }

        #[test]
        fn a_length_over_the_limit_is_refused_at_its_header(
            len in 65u64..u64::MAX,
            cuts in prop::collection::vec(any::<usize>(), 0..4),
        ) {
            let bytes = format!("{len}\n").into_bytes();
            match decode(64, &bytes, &cuts) {
                Err(RecordIoError::OverLimit { len: l, max: 64 }) => prop_assert_eq!(l, len),
                other => prop_assert!(false, "{:?}", other),
            }
        }
    }

    #[test]
    fn bad_headers_truncation_and_errors_are_sticky() {
        let refuse = |bytes: &[u8]| decode(1024, bytes, &[]).unwrap_err();
        assert!(matches!(refuse(b"12x\n"), RecordIoError::BadHeader { .. }));
        assert!(matches!(refuse(b"\n"), RecordIoError::BadHeader { .. }));
        assert!(matches!(
            refuse(b"99999999999999999999999\n"),
            RecordIoError::BadHeader { .. }
        ));
        assert!(matches!(refuse(b"12"), RecordIoError::ShortHeader { .. }));
        assert!(matches!(
            refuse(b"5\nab"),
            RecordIoError::ShortRecord {
                expected: 5,
                got: 2
            }
        ));
        // The limit is never above the crate's own.
        let mut d = Decoder::new(usize::MAX);
        let mut out = Vec::new();
        let err = d.feed(b"67108865\n", &mut out).unwrap_err();
        assert!(matches!(err, RecordIoError::OverLimit { .. }), "{err}");
        // After an error, nothing more is decoded.
        assert!(d.feed(b"1\na", &mut out).is_err());
        assert!(out.is_empty());
        // Empty records are records.
        assert_eq!(
            decode(8, b"0\n0\n", &[1]).unwrap(),
            vec![Vec::<u8>::new(); 2]
        );
    }
}
