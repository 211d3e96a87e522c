//! Download progress of `phobos run --fetch` (FETCHING), in the style of
//! the image pull display beside it: on a terminal (stderr), one line per
//! URI redrawn in place — `Downloading  12.3 MB / 200.0 MB (6%)  45.1
//! MB/s`, the percentage only when the source announced its length — and
//! left as `Fetched 200.0 MB in 1.8 s (110.2 MB/s)`. A download shorter
//! than a quarter of a second draws nothing. Not on a terminal, or with
//! `--quiet`, nothing is shown: a failed fetch stays one line.

use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use phobos_fetch::{Event, Progress};

use super::human_size;
use super::progress::Mode;

/// How long a download runs before it is drawn.
const SHOW_AFTER: Duration = Duration::from_millis(250);
/// At most this often a redraw.
const REDRAW: Duration = Duration::from_millis(100);

struct Current {
    uri: String,
    length: Option<u64>,
    cache_hit: bool,
    started: Instant,
    got: u64,
    last_draw: Option<Instant>,
}

/// A [`Progress`] drawing on stderr (or any writer, for tests).
pub(crate) struct FetchProgress {
    state: Mutex<(Option<Current>, Box<dyn Write + Send>)>,
}

impl FetchProgress {
    /// The display for `mode`; `None` when nothing is to be shown.
    pub(crate) fn for_mode(mode: Mode) -> Option<Self> {
        (mode == Mode::Terminal).then(|| Self::with_writer(Box::new(std::io::stderr())))
    }

    pub(crate) fn with_writer(out: Box<dyn Write + Send>) -> Self {
        FetchProgress {
            state: Mutex::new((None, out)),
        }
    }
}

impl Current {
    fn line(&self, now: Instant) -> String {
        let secs = now.duration_since(self.started).as_secs_f64();
        let rate = if secs > 0.0 {
            format!("{}/s", human_size((self.got as f64 / secs) as u64))
        } else {
            "-".to_owned()
        };
        let verb = if self.cache_hit {
            "Copying"
        } else {
            "Downloading"
        };
        let amount = match self.length {
            Some(len) if len > 0 => format!(
                "{} / {} ({}%)",
                human_size(self.got),
                human_size(len),
                (self.got.min(len) * 100 / len)
            ),
            _ => human_size(self.got),
        };
        format!("{}: {verb}  {amount}  {rate}", self.uri)
    }
}

impl Progress for FetchProgress {
    fn event(&self, event: Event<'_>) {
        self.event_at(event, Instant::now());
    }
}

impl FetchProgress {
    /// [`Progress::event`] at time `now` (given by the tests, which cannot
    /// count on their thread being scheduled within a quarter second).
    fn event_at(&self, event: Event<'_>, now: Instant) {
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (current, out) = &mut *guard;
        match event {
            Event::Start {
                uri,
                length,
                cache_hit,
            } => {
                *current = Some(Current {
                    uri: uri.to_owned(),
                    length,
                    cache_hit,
                    started: now,
                    got: 0,
                    last_draw: None,
                });
            }
            Event::Bytes { got, .. } => {
                let Some(c) = current.as_mut() else {
                    return;
                };
                c.got = got;
                let due = match c.last_draw {
                    None => now.duration_since(c.started) >= SHOW_AFTER,
                    Some(at) => now.duration_since(at) >= REDRAW,
                };
                if due {
                    let _ = write!(out, "\r{}\x1b[K", c.line(now));
                    let _ = out.flush();
                    c.last_draw = Some(now);
                }
            }
            Event::Done { bytes, .. } => {
                let Some(c) = current.take() else {
                    return;
                };
                if c.last_draw.is_none() {
                    return;
                }
                let secs = now.duration_since(c.started).as_secs_f64().max(1e-3);
                let _ = writeln!(
                    out,
                    "\r{}: Fetched {} in {secs:.1} s ({}/s)\x1b[K",
                    c.uri,
                    human_size(bytes),
                    human_size((bytes as f64 / secs) as u64)
                );
                let _ = out.flush();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn text(s: &Shared) -> String {
        String::from_utf8(s.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn a_long_download_is_drawn_with_percent_and_rate_then_left_done() {
        let out = Shared::default();
        let p = FetchProgress::with_writer(Box::new(out.clone()));
        let uri = "http://127.0.0.1/big.bin";
        let start = Instant::now();
        p.event_at(
            Event::Start {
                uri,
                length: Some(2_000_000),
                cache_hit: false,
            },
            start,
        );
        let just_before = start + SHOW_AFTER - Duration::from_millis(1);
        p.event_at(Event::Bytes { uri, got: 10 }, just_before);
        assert_eq!(text(&out), "", "nothing before a quarter second");
        p.event_at(
            Event::Bytes {
                uri,
                got: 1_000_000,
            },
            start + SHOW_AFTER,
        );
        let drawn = text(&out);
        assert!(
            drawn.starts_with("\rhttp://127.0.0.1/big.bin: Downloading  1.0 MB / 2.0 MB (50%)  "),
            "{drawn:?}"
        );
        assert!(
            drawn.contains(" MB/s") || drawn.contains(" kB/s"),
            "{drawn:?}"
        );
        p.event_at(
            Event::Done {
                uri,
                bytes: 2_000_000,
            },
            start + SHOW_AFTER * 2,
        );
        let done = text(&out);
        assert!(done.ends_with("\x1b[K\n"), "{done:?}");
        assert!(done.contains("big.bin: Fetched 2.0 MB in "), "{done:?}");
    }

    #[test]
    fn unknown_lengths_and_short_downloads() {
        let out = Shared::default();
        let p = FetchProgress::with_writer(Box::new(out.clone()));
        let uri = "http://x/y";
        let start = Instant::now();
        p.event_at(
            Event::Start {
                uri,
                length: None,
                cache_hit: false,
            },
            start,
        );
        p.event_at(
            Event::Done { uri, bytes: 5 },
            start + Duration::from_millis(1),
        );
        assert_eq!(text(&out), "", "a short download draws nothing");
        p.event_at(
            Event::Start {
                uri,
                length: None,
                cache_hit: true,
            },
            start,
        );
        p.event_at(Event::Bytes { uri, got: 3_000 }, start + SHOW_AFTER);
        let drawn = text(&out);
        assert!(drawn.contains("http://x/y: Copying  3.0 kB  "), "{drawn:?}");
        assert!(!drawn.contains('%'), "{drawn:?}");
        assert!(FetchProgress::for_mode(Mode::Lines).is_none());
        assert!(FetchProgress::for_mode(Mode::Quiet).is_none());
    }
}
