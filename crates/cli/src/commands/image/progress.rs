//! Pull progress for `phobos image pull|load` and `phobos run --image`,
//! as Docker's client shows it. On a terminal: one line per layer
//! (`Waiting`, `Downloading 1.2 MB / 3.4 MB`, `Already exists`, `Pull
//! complete`), redrawn in place with ANSI cursor-up; otherwise a few plain
//! lines (the image and what it needs, each fetched layer, a summary);
//! nothing with `--quiet`. Everything goes to stderr: stdout stays the
//! command's (or the pulled image's name).

use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use phobos_image::{Event, Progress};

use super::human_size;

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Per-layer lines redrawn in place.
    Terminal,
    /// A few plain lines.
    Lines,
    /// Nothing.
    Quiet,
}

impl Mode {
    /// `Terminal` when stderr is one, `Lines` otherwise; `Quiet` if asked.
    pub(crate) fn for_stderr(quiet: bool) -> Self {
        if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Terminal
        } else {
            Mode::Lines
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Waiting,
    Downloading,
    Present,
    Complete,
}

#[derive(Debug)]
struct Layer {
    blob: Option<String>,
    diff: String,
    size: u64,
    got: u64,
    status: Status,
}

impl Layer {
    /// `0123456789ab: Downloading  1.2 MB / 3.4 MB`
    fn line(&self) -> String {
        let digest = self.blob.as_deref().unwrap_or(&self.diff);
        let hex = digest.split_once(':').map_or(digest, |(_, h)| h);
        let short = &hex[..hex.len().min(12)];
        let status = match self.status {
            Status::Waiting => "Waiting".to_owned(),
            Status::Downloading => format!(
                "Downloading  {} / {}",
                human_size(self.got),
                human_size(self.size)
            ),
            Status::Present => "Already exists".to_owned(),
            Status::Complete => "Pull complete".to_owned(),
        };
        format!("{short}: {status}")
    }
}

#[derive(Debug, Default)]
struct State {
    layers: Vec<Layer>,
    /// Lines drawn on the terminal so far (to move back over).
    drawn: usize,
}

impl State {
    fn find(&mut self, digest: &str) -> Option<&mut Layer> {
        self.layers
            .iter_mut()
            .find(|l| l.blob.as_deref() == Some(digest) || l.diff == digest)
    }
}

/// A [`Progress`] writing to stderr (or any writer, for tests).
pub(crate) struct PullProgress {
    mode: Mode,
    state: Mutex<(State, Box<dyn Write + Send>)>,
}

impl PullProgress {
    pub(crate) fn new(mode: Mode) -> Self {
        Self::with_writer(mode, Box::new(std::io::stderr()))
    }

    pub(crate) fn with_writer(mode: Mode, out: Box<dyn Write + Send>) -> Self {
        PullProgress {
            mode,
            state: Mutex::new((State::default(), out)),
        }
    }

    fn apply(&self, state: &mut State, out: &mut dyn Write, event: Event) {
        let lines = self.mode == Mode::Lines;
        match event {
            Event::Layers { reference, layers } => {
                if lines {
                    let total: u64 = layers.iter().map(|l| l.2).sum();
                    let _ = writeln!(
                        out,
                        "phobos: pulling {reference}: {} layer(s), {}",
                        layers.len(),
                        human_size(total)
                    );
                }
                state.layers = layers
                    .into_iter()
                    .map(|(blob, diff, size)| Layer {
                        blob: Some(blob.to_string()),
                        diff: diff.to_string(),
                        size,
                        got: 0,
                        status: Status::Waiting,
                    })
                    .collect();
            }
            Event::LayerStart { digest, size } => {
                let key = digest.to_string();
                match state.find(&key) {
                    Some(l) => {
                        l.status = Status::Downloading;
                        l.size = size;
                    }
                    None => state.layers.push(Layer {
                        blob: Some(key),
                        diff: String::new(),
                        size,
                        got: 0,
                        status: Status::Downloading,
                    }),
                }
            }
            Event::LayerBytes { digest, bytes } => {
                if let Some(l) = state.find(&digest.to_string()) {
                    l.got = bytes;
                }
            }
            Event::LayerDone { digest, fetched } => {
                let key = digest.to_string();
                let status = if fetched {
                    Status::Complete
                } else {
                    Status::Present
                };
                let layer = match state.find(&key) {
                    Some(l) => l,
                    None => {
                        state.layers.push(Layer {
                            blob: None,
                            diff: key,
                            size: 0,
                            got: 0,
                            status,
                        });
                        state.layers.last_mut().expect("just pushed")
                    }
                };
                layer.status = status;
                layer.got = layer.size;
                if lines && fetched {
                    let _ = writeln!(
                        out,
                        "phobos: layer {} fetched ({})",
                        layer.blob.as_deref().unwrap_or(&layer.diff),
                        human_size(layer.size)
                    );
                }
            }
            Event::Stored { reference, .. } => {
                if lines {
                    let count = |status| state.layers.iter().filter(|l| l.status == status).count();
                    let _ = writeln!(
                        out,
                        "phobos: {reference}: {} layer(s) fetched, {} already present",
                        count(Status::Complete),
                        count(Status::Present)
                    );
                    state.layers.clear();
                }
            }
        }
    }

    fn redraw(state: &mut State, out: &mut dyn Write) {
        if state.drawn > 0 {
            let _ = write!(out, "\x1b[{}A", state.drawn);
        }
        for layer in &state.layers {
            let _ = write!(out, "\r\x1b[2K{}\n", layer.line());
        }
        state.drawn = state.layers.len();
    }
}

impl Progress for PullProgress {
    fn event(&self, event: Event) {
        if self.mode == Mode::Quiet {
            return;
        }
        let Ok(mut guard) = self.state.lock() else {
            return;
        };
        let (state, out) = &mut *guard;
        self.apply(state, out.as_mut(), event);
        if self.mode == Mode::Terminal {
            Self::redraw(state, out.as_mut());
        }
        let _ = out.flush();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// A writer the test reads back.
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

    fn digest(c: char) -> phobos_image::Digest {
        phobos_image::Digest::parse(&format!("sha256:{}", c.to_string().repeat(64))).unwrap()
    }

    fn pull(progress: &PullProgress) {
        progress.event(Event::Layers {
            reference: "127.0.0.1:5000/app:1".into(),
            layers: vec![
                (digest('a'), digest('1'), 2_000_000),
                (digest('b'), digest('2'), 3_000_000),
            ],
        });
        progress.event(Event::LayerDone {
            digest: digest('1'),
            fetched: false,
        });
        progress.event(Event::LayerStart {
            digest: digest('b'),
            size: 3_000_000,
        });
        progress.event(Event::LayerBytes {
            digest: digest('b'),
            bytes: 1_500_000,
        });
        progress.event(Event::LayerDone {
            digest: digest('2'),
            fetched: true,
        });
        progress.event(Event::Stored {
            reference: "127.0.0.1:5000/app:1".into(),
            digest: digest('f'),
        });
    }

    fn output(mode: Mode) -> String {
        let out = Shared::default();
        pull(&PullProgress::with_writer(mode, Box::new(out.clone())));
        String::from_utf8(out.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn a_terminal_gets_a_line_per_layer_redrawn_in_place() {
        let text = output(Mode::Terminal);
        // Each event redraws both lines, moving up over the previous ones.
        assert_eq!(text.matches("\x1b[2A").count(), 5, "{text:?}");
        assert!(text.contains("aaaaaaaaaaaa: Waiting\n"), "{text:?}");
        assert!(
            text.contains("bbbbbbbbbbbb: Downloading  1.5 MB / 3.0 MB\n"),
            "{text:?}"
        );
        // The last drawing is the final state of every layer.
        let last: Vec<&str> = text.rsplit("\x1b[2A").next().unwrap().lines().collect();
        assert_eq!(
            last,
            [
                "\r\x1b[2Kaaaaaaaaaaaa: Already exists",
                "\r\x1b[2Kbbbbbbbbbbbb: Pull complete"
            ]
        );
    }

    #[test]
    fn elsewhere_a_few_plain_lines() {
        let text = output(Mode::Lines);
        assert_eq!(
            text.lines().collect::<Vec<_>>(),
            [
                "phobos: pulling 127.0.0.1:5000/app:1: 2 layer(s), 5.0 MB",
                &format!("phobos: layer {} fetched (3.0 MB)", digest('b')),
                "phobos: 127.0.0.1:5000/app:1: 1 layer(s) fetched, 1 already present",
            ]
        );
        assert!(!text.contains('\x1b'));
    }

    #[test]
    fn quiet_says_nothing() {
        assert_eq!(output(Mode::Quiet), "");
    }

    #[test]
    fn a_load_names_layers_by_diff_id() {
        let out = Shared::default();
        let progress = PullProgress::with_writer(Mode::Lines, Box::new(out.clone()));
        progress.event(Event::LayerDone {
            digest: digest('3'),
            fetched: true,
        });
        progress.event(Event::Stored {
            reference: "docker.io/library/loaded:1".into(),
            digest: digest('f'),
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text.lines().collect::<Vec<_>>(),
            [
                format!("phobos: layer {} fetched (0 B)", digest('3')).as_str(),
                "phobos: docker.io/library/loaded:1: 1 layer(s) fetched, 0 already present",
            ]
        );
    }
}
