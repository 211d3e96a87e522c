//! Logging set-up with `tracing`.
//!
//! - Level: `RUST_LOG` when set, else `log.level` from the config or
//!   `--log-level`. When the level was left at its default, people at a
//!   terminal get `warn` (no chatter around `phobos run`) and the external
//!   containerizer gets `info`.
//! - Destination (`log.destination`): stderr; syslog, one datagram per event
//!   to `/dev/log` in the RFC 3164 form `<PRI>phobos[pid]: message`; or the
//!   systemd journal, one datagram per event to its native socket. A missing
//!   socket never stops a command (Deimos crashed on a missing `/dev/log`):
//!   we print one warning line and log to stderr instead.
//! - Under `phobos ecp`, stderr is what the agent appends to the sandbox's
//!   `stderr` file, so lines are plain (no colours) and carry timestamps.
//!
//! Cost: when the effective level is `off` nothing is installed; without
//! `RUST_LOG` the filter is a plain level comparison (no directive parsing).

use std::io::{self, IsTerminal, Write};
use std::os::unix::net::UnixDatagram;
use std::path::Path;

use phobos_config::{LogDestination, LogFormat, LogLevel, Source};
use tracing::{Level, Metadata};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::cli::Global;
use crate::context;

/// The syslog socket.
const SYSLOG_SOCKET: &str = "/dev/log";
/// The journal's native protocol socket.
const JOURNALD_SOCKET: &str = "/run/systemd/journal/socket";

/// Who is being logged for: it picks the default level and the line style.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Face {
    /// A person at a terminal (or a script).
    Human,
    /// A Mesos agent calling `phobos ecp`.
    Ecp,
}

/// Installs the global subscriber. Never fails: problems become one warning
/// line on stderr.
pub fn init(global: &Global, face: Face) {
    let settings = context::settings(global);
    let log = &settings.config().log;
    let from_env = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let level = match (settings.loaded().source("log.level"), face) {
        (Some(Source::Default) | None, Face::Human) => LevelFilter::WARN,
        (Some(Source::Default) | None, Face::Ecp) => LevelFilter::INFO,
        _ => level_filter(log.level),
    };
    if from_env.is_none() && level == LevelFilter::OFF {
        return;
    }
    let filter: Box<dyn Layer<Registry> + Send + Sync> = match from_env {
        Some(directives) => match EnvFilter::try_new(&directives) {
            Ok(f) => Box::new(f),
            Err(e) => {
                errln!("phobos: warning: ignoring RUST_LOG={directives:?}: {e}");
                Box::new(level)
            }
        },
        None => Box::new(level),
    };
    let json = log.format == LogFormat::Json;
    let sink = match log.destination {
        LogDestination::Stderr => None,
        LogDestination::Syslog => open_sink(SinkKind::Syslog, Path::new(SYSLOG_SOCKET)),
        LogDestination::Journald => open_sink(SinkKind::Journald, Path::new(JOURNALD_SOCKET)),
    };
    let output: Box<dyn Layer<Registry> + Send + Sync> = match sink {
        Some(sink) => {
            let layer = tracing_subscriber::fmt::layer()
                .with_writer(sink)
                .with_ansi(false)
                .with_target(false)
                .without_time()
                .with_level(false);
            if json {
                Box::new(layer.event_format(json::JsonFormat))
            } else {
                Box::new(layer)
            }
        }
        None => {
            let interactive = face == Face::Human && io::stderr().is_terminal();
            let layer = tracing_subscriber::fmt::layer()
                .with_writer(io::stderr)
                .with_ansi(interactive)
                .with_target(false);
            if json {
                Box::new(layer.event_format(json::JsonFormat))
            } else if interactive {
                Box::new(layer.without_time())
            } else {
                Box::new(layer)
            }
        }
    };
    let subscriber = Registry::default().with(output.and_then(filter));
    let _ = tracing::subscriber::set_global_default(subscriber);
}

fn level_filter(level: LogLevel) -> LevelFilter {
    match level {
        LogLevel::Off => LevelFilter::OFF,
        LogLevel::Error => LevelFilter::ERROR,
        LogLevel::Warn => LevelFilter::WARN,
        LogLevel::Info => LevelFilter::INFO,
        LogLevel::Debug => LevelFilter::DEBUG,
        LogLevel::Trace => LevelFilter::TRACE,
    }
}

/// Which datagram protocol a [`DatagramSink`] speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SinkKind {
    Syslog,
    Journald,
}

impl SinkKind {
    fn name(self) -> &'static str {
        match self {
            Self::Syslog => "syslog",
            Self::Journald => "journald",
        }
    }
}

/// Connects to `path`, or warns once and returns `None` (stderr is used).
fn open_sink(kind: SinkKind, path: &Path) -> Option<DatagramSink> {
    match UnixDatagram::unbound().and_then(|s| s.connect(path).map(|()| s)) {
        Ok(socket) => Some(DatagramSink {
            kind,
            socket,
            pid: std::process::id(),
        }),
        Err(e) => {
            errln!(
                "phobos: warning: log destination {} is unavailable ({}: {e}); logging to stderr",
                kind.name(),
                path.display()
            );
            None
        }
    }
}

/// Sends each event as one datagram to syslog or the journal.
struct DatagramSink {
    kind: SinkKind,
    socket: UnixDatagram,
    pid: u32,
}

impl<'a> MakeWriter<'a> for DatagramSink {
    type Writer = EventWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        self.writer(Level::INFO)
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        self.writer(*meta.level())
    }
}

impl DatagramSink {
    fn writer(&self, level: Level) -> EventWriter<'_> {
        EventWriter {
            sink: self,
            level,
            buf: Vec::with_capacity(256),
        }
    }
}

/// Collects one formatted event and sends it when dropped.
struct EventWriter<'a> {
    sink: &'a DatagramSink,
    level: Level,
    buf: Vec<u8>,
}

impl Write for EventWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for EventWriter<'_> {
    fn drop(&mut self) {
        let message = String::from_utf8_lossy(&self.buf);
        let message = message.trim_end_matches('\n');
        if message.is_empty() {
            return;
        }
        let datagram = match self.sink.kind {
            SinkKind::Syslog => syslog_datagram(self.level, self.sink.pid, message),
            SinkKind::Journald => journald_datagram(self.level, message),
        };
        // A full or vanished log socket must not fail the command.
        let _ = self.sink.socket.send(&datagram);
    }
}

/// syslog(3) severity of a level.
fn severity(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

/// `<PRI>phobos[pid]: message`, facility daemon (3).
fn syslog_datagram(level: Level, pid: u32, message: &str) -> Vec<u8> {
    let pri = 3 * 8 + u32::from(severity(level));
    format!("<{pri}>phobos[{pid}]: {message}").into_bytes()
}

/// The journal's native protocol: `FIELD=value` lines, or for values with a
/// newline `FIELD\n<u64 little-endian length><value>\n`.
fn journald_datagram(level: Level, message: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 64);
    out.extend_from_slice(format!("PRIORITY={}\n", severity(level)).as_bytes());
    out.extend_from_slice(b"SYSLOG_IDENTIFIER=phobos\n");
    if message.contains('\n') {
        out.extend_from_slice(b"MESSAGE\n");
        out.extend_from_slice(&(message.len() as u64).to_le_bytes());
        out.extend_from_slice(message.as_bytes());
        out.push(b'\n');
    } else {
        out.extend_from_slice(b"MESSAGE=");
        out.extend_from_slice(message.as_bytes());
        out.push(b'\n');
    }
    out
}

mod json {
    //! `log.format = "json"`: one object per event with `timestamp`,
    //! `level`, the event's fields and the fields of its spans (so every
    //! line of a container's operation carries `container_id`).

    use std::fmt;

    use serde_json::{Map, Value};
    use tracing::field::{Field, Visit};
    use tracing::{Event, Subscriber};
    use tracing_subscriber::fmt::format::Writer;
    use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
    use tracing_subscriber::registry::LookupSpan;

    pub struct JsonFormat;

    struct Fields<'a>(&'a mut Map<String, Value>);

    impl Visit for Fields<'_> {
        fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
            self.0
                .insert(field.name().to_owned(), Value::String(format!("{value:?}")));
        }

        fn record_str(&mut self, field: &Field, value: &str) {
            self.0
                .insert(field.name().to_owned(), Value::String(value.to_owned()));
        }

        fn record_i64(&mut self, field: &Field, value: i64) {
            self.0.insert(field.name().to_owned(), value.into());
        }

        fn record_u64(&mut self, field: &Field, value: u64) {
            self.0.insert(field.name().to_owned(), value.into());
        }

        fn record_bool(&mut self, field: &Field, value: bool) {
            self.0.insert(field.name().to_owned(), value.into());
        }
    }

    impl<S, N> FormatEvent<S, N> for JsonFormat
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
        N: for<'a> FormatFields<'a> + 'static,
    {
        fn format_event(
            &self,
            ctx: &FmtContext<'_, S, N>,
            mut writer: Writer<'_>,
            event: &Event<'_>,
        ) -> fmt::Result {
            let mut map = Map::new();
            map.insert(
                "timestamp".into(),
                phobos_core::time::rfc3339(phobos_core::time::now_secs()).into(),
            );
            map.insert("level".into(), event.metadata().level().as_str().into());
            if let Some(scope) = ctx.event_scope() {
                let spans: Vec<Value> = scope
                    .from_root()
                    .map(|span| {
                        let ext = span.extensions();
                        let fields = ext
                            .get::<FormattedFields<N>>()
                            .map(|f| f.fields.clone())
                            .unwrap_or_default();
                        Value::String(format!("{}{{{fields}}}", span.name()))
                    })
                    .collect();
                map.insert("spans".into(), Value::Array(spans));
            }
            event.record(&mut Fields(&mut map));
            let line = serde_json::to_string(&map).map_err(|_| fmt::Error)?;
            writeln!(writer, "{line}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syslog_lines_carry_priority_and_pid() {
        let d = syslog_datagram(Level::WARN, 42, "launching container=abc");
        assert_eq!(d, b"<28>phobos[42]: launching container=abc");
        let d = syslog_datagram(Level::ERROR, 1, "x");
        assert!(d.starts_with(b"<27>"));
    }

    #[test]
    fn journald_uses_binary_framing_for_multiline_messages() {
        let d = journald_datagram(Level::INFO, "one line");
        assert_eq!(
            d,
            b"PRIORITY=6\nSYSLOG_IDENTIFIER=phobos\nMESSAGE=one line\n".to_vec()
        );
        let d = journald_datagram(Level::DEBUG, "a\nb");
        let mut want = b"PRIORITY=7\nSYSLOG_IDENTIFIER=phobos\nMESSAGE\n".to_vec();
        want.extend_from_slice(&3u64.to_le_bytes());
        want.extend_from_slice(b"a\nb\n");
        assert_eq!(d, want);
    }

    #[test]
    fn a_missing_socket_falls_back_without_failing() {
        let dir = tempfile::tempdir().unwrap();
        assert!(open_sink(SinkKind::Syslog, &dir.path().join("no-such-log")).is_none());
    }

    #[test]
    fn a_sink_sends_one_datagram_per_event() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let server = UnixDatagram::bind(&path).unwrap();
        let sink = open_sink(SinkKind::Syslog, &path).unwrap();
        {
            let mut w = sink.writer(Level::INFO);
            w.write_all(b"part one, ").unwrap();
            w.write_all(b"part two\n").unwrap();
        }
        let mut buf = [0u8; 256];
        let n = server.recv(&mut buf).unwrap();
        let text = std::str::from_utf8(&buf[..n]).unwrap();
        assert!(text.starts_with("<30>phobos["), "{text}");
        assert!(text.ends_with("]: part one, part two"), "{text}");
    }
}
