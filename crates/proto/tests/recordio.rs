//! RecordIO (`<decimal length>\n<bytes>`) framing: fixtures from Mesos's
//! `docs/recordio.md` example shape, errors, and a no-panic property.

use std::io::{self, BufReader, Read};

use phobos_proto::recordio::{
    MAX_RECORD_LEN, RecordIoError, Records, encode_record, read_record, write_record,
};
use proptest::prelude::*;

fn read_all(bytes: &[u8]) -> Vec<Result<Vec<u8>, RecordIoError>> {
    Records::new(bytes).collect()
}

#[test]
fn encodes_length_newline_bytes() {
    assert_eq!(encode_record(b"hello").unwrap(), b"5\nhello");
    assert_eq!(encode_record(b"").unwrap(), b"0\n");
    let mut out = Vec::new();
    write_record(&mut out, br#"{"type":"HEARTBEAT"}"#).unwrap();
    write_record(&mut out, b"ab").unwrap();
    assert_eq!(out, b"20\n{\"type\":\"HEARTBEAT\"}2\nab");
}

#[test]
fn reads_consecutive_records_and_a_clean_end() {
    let records: Vec<Vec<u8>> = read_all(b"3\nabc0\n11\nhello world")
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        records,
        vec![b"abc".to_vec(), b"".to_vec(), b"hello world".to_vec()]
    );
    assert!(read_record(&mut &b""[..]).unwrap().is_none());
}

#[test]
fn chunk_boundaries_do_not_matter() {
    /// Hands out one byte per read call.
    struct Trickle<'a>(&'a [u8]);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match (self.0.split_first(), buf.first_mut()) {
                (Some((b, rest)), Some(slot)) => {
                    *slot = *b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }
    let records: Vec<_> = Records::new(BufReader::with_capacity(1, Trickle(b"2\nhi3\nyou")))
        .map(Result::unwrap)
        .collect();
    assert_eq!(records, vec![b"hi".to_vec(), b"you".to_vec()]);
}

#[test]
fn truncated_header_is_an_error_not_an_end() {
    let err = read_record(&mut &b"12"[..]).unwrap_err();
    assert!(matches!(err, RecordIoError::ShortHeader { ref got } if got == "12"));
    assert_eq!(err.to_string(), "truncated record header after \"12\"");
}

#[test]
fn bad_headers_are_refused() {
    for (input, header) in [
        (&b"\nabc"[..], ""),
        (b"-1\n", "-"),
        (b"+1\nx", "+"),
        (b" 1\nx", " "),
        (b"1a\nx", "1a"),
        (b"99999999999999999999999\n", "999999999999999999999"),
        (b"18446744073709551616\n", "18446744073709551616"),
    ] {
        let err = read_record(&mut &input[..]).unwrap_err();
        assert!(
            matches!(err, RecordIoError::BadHeader { header: ref h } if h == header),
            "{input:?}: {err:?}"
        );
    }
}

#[test]
fn oversized_record_is_refused_before_reading_it() {
    let err = read_record(&mut &b"80000000\n"[..]).unwrap_err();
    assert!(matches!(err, RecordIoError::TooLong { len: 80_000_000 }));
    assert_eq!(
        err.to_string(),
        "record length 80000000 exceeds the 64 MiB limit"
    );
    // u64::MAX parses but is far over the limit.
    let err = read_record(&mut &b"18446744073709551615\n"[..]).unwrap_err();
    assert!(matches!(err, RecordIoError::TooLong { len: u64::MAX }));
}

#[test]
fn oversized_record_is_not_written() {
    let big = vec![0u8; MAX_RECORD_LEN + 1];
    let mut out = Vec::new();
    assert!(matches!(
        write_record(&mut out, &big),
        Err(RecordIoError::TooLong { .. })
    ));
    assert!(out.is_empty());
}

#[test]
fn truncated_record_names_both_counts() {
    let results = read_all(b"2\nok5\nabc");
    assert_eq!(results.len(), 2);
    assert_eq!(results[0].as_ref().unwrap(), b"ok");
    let err = results[1].as_ref().unwrap_err();
    assert!(matches!(
        err,
        RecordIoError::ShortRecord {
            expected: 5,
            got: 3
        }
    ));
    assert_eq!(err.to_string(), "truncated record: got 3 of 5 bytes");
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        // The iterator ends (at most one record per input byte, plus an error).
        let results = read_all(&bytes);
        prop_assert!(results.len() <= bytes.len() + 1);
    }

    #[test]
    fn round_trips(records in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8)) {
        let mut stream = Vec::new();
        for record in &records {
            write_record(&mut stream, record).unwrap();
        }
        let back: Vec<Vec<u8>> = read_all(&stream).into_iter().collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(back, records);
    }
}
