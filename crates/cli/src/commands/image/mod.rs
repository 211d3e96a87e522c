//! `phobos image pull|load|ls|rm|prune`: the image store of the Mesos
//! containerizer (`docker_store_dir`, default `<work_dir>/store`).

mod load;
mod ls;
mod prune;
mod pull;
mod rm;

use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use phobos_image::{Event, Progress, Reference, Store};

use crate::cli::{Global, ImageCommand};
use crate::context;
use crate::error::usage;

pub fn run(global: &Global, command: ImageCommand) -> anyhow::Result<u8> {
    match command {
        ImageCommand::Pull { reference, timeout } => pull::run(global, &reference, &timeout),
        ImageCommand::Load { file, name } => load::run(global, &file, name.as_deref()),
        ImageCommand::Ls { json } => ls::run(global, json),
        ImageCommand::Rm { reference } => rm::run(global, &reference),
        ImageCommand::Prune => prune::run(global),
    }
}

/// The store: `docker_store_dir`, else `<work_dir>/store`.
pub(crate) fn store(global: &Global) -> anyhow::Result<Store> {
    Ok(Store::open(context::settings(global).image_store_dir())?)
}

/// Parses a reference argument (exit 2 when invalid).
pub(crate) fn reference(text: &str) -> anyhow::Result<Reference> {
    Reference::parse(text).map_err(|e| usage(e.to_string()))
}

/// Bytes for people: 1.5 MB.
pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Progress on a terminal (one redrawn status line on stderr), log lines
/// otherwise.
pub(crate) struct Reporter {
    terminal: bool,
    state: Mutex<Vec<(String, u64, u64, bool)>>,
}

impl Reporter {
    pub(crate) fn new() -> Self {
        Reporter {
            terminal: std::io::stderr().is_terminal(),
            state: Mutex::new(Vec::new()),
        }
    }

    fn redraw(&self, layers: &[(String, u64, u64, bool)]) {
        let done = layers.iter().filter(|l| l.3).count();
        let got: u64 = layers.iter().map(|l| l.2).sum();
        let total: u64 = layers.iter().map(|l| l.1).sum();
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[Klayers {done}/{}  {} / {}",
            layers.len(),
            human_size(got),
            human_size(total)
        );
        let _ = err.flush();
    }

    /// Ends the status line.
    pub(crate) fn finish(&self) {
        if self.terminal && !self.state.lock().map(|s| s.is_empty()).unwrap_or(true) {
            eprintln!();
        }
    }
}

impl Progress for Reporter {
    fn event(&self, event: Event) {
        let Ok(mut layers) = self.state.lock() else {
            return;
        };
        match event {
            Event::LayerStart { digest, size } => {
                if !self.terminal {
                    tracing::info!(layer = %digest, size, "fetching layer");
                }
                layers.push((digest.to_string(), size, 0, false));
            }
            Event::LayerBytes { digest, bytes } => {
                let key = digest.to_string();
                if let Some(l) = layers.iter_mut().find(|l| l.0 == key) {
                    l.2 = bytes;
                }
            }
            Event::LayerDone { digest, fetched } => {
                if !self.terminal {
                    tracing::info!(layer = %digest, fetched, "layer in the store");
                }
                let key = digest.to_string();
                match layers.iter_mut().find(|l| l.0 == key) {
                    Some(l) => {
                        l.3 = true;
                        l.2 = l.1;
                    }
                    None => layers.push((key, 0, 0, true)),
                }
            }
            Event::Stored { .. } => {}
        }
        if self.terminal {
            self.redraw(&layers);
        }
    }
}
