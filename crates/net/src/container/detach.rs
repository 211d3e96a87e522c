//! Detach: DEL of every network of a container, the namespace unbound,
//! the state removed; the built-in network's veth pair left to the
//! kernel's namespace teardown, which deletes the devices of every
//! namespace dying at the same time in one batch (rtnetlink notifications
//! tell when it is gone).

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::{
    Checkpoint, ContainerNet, bridge_step, config_of, endpoint, in_process, invoke, is_in_process,
    plugin_input, read_checkpoint,
};
use crate::config::Plugins;
use crate::error::NetError;
use crate::netlink::LinkWatch;
use crate::netns;
use crate::plugin::CniCommand;

/// How long a detach waits for the kernel's namespace teardown to delete a
/// built-in network's veth before deleting it itself. The teardown runs
/// on one kernel worker for every namespace of the host, so under load it
/// lags; nothing but speed depends on the bound (the explicit delete after
/// it is the same DEL as ever).
pub const KERNEL_DELETE_BOUND: std::time::Duration = std::time::Duration::from_secs(5);

/// A built-in network whose veth the kernel deletes with the namespace:
/// its bridge step's DEL and checkpoint removal wait for that.
pub(super) struct Deferred {
    checkpoint: Checkpoint,
    path: PathBuf,
    /// The host end, `(index, name)`.
    link: (u32, String),
}

impl ContainerNet {
    /// Runs DEL for every checkpointed network (reverse order), releases
    /// their ports, unbinds the namespace and removes the state. Safe to
    /// call again after a partial failure, after a crash, or when nothing
    /// was ever attached. Plugins are looked up where ADD found them (the
    /// checkpoint records it), else in `plugins`.
    ///
    /// The built-in network's veth is not deleted one by one: the other
    /// plugins' DEL runs, the namespace is unbound, and the kernel's
    /// namespace teardown deletes the pair, batched with every namespace
    /// dying at the same time (see [`BridgeStep::host_end`]). Its
    /// `RTM_DELLINK` on a socket subscribed before the unbind is the
    /// condition waited for, bounded by [`KERNEL_DELETE_BOUND`]; then the
    /// bridge step's DEL runs as always (deleting the link itself if it is
    /// still there) and releases the address, so nothing is left when this
    /// returns. A crash in between leaves the checkpoint, and the DEL that
    /// recovery runs finishes the job the same way.
    pub fn detach(&self, plugins: &Plugins) -> Result<(), NetError> {
        let netns = self.netns_path();
        let watch = if netns::is_bound(&netns) {
            LinkWatch::open()
                .inspect_err(|e| {
                    tracing::debug!(container = %self.id, "no link notifications, deleting veths one by one: {e}");
                })
                .ok()
        } else {
            None
        };
        let deferred = self.detach_networks(plugins, watch.as_ref())?;
        let mut links: Vec<(u32, String)> = deferred.iter().map(|d| d.link.clone()).collect();
        if let Some(watch) = &watch
            && !links.is_empty()
            && let Err(e) = watch.only_deletions_of(&links)
        {
            tracing::debug!(container = %self.id, "no filter on link notifications, reading them all: {e}");
        }
        let unbound = netns::remove(&netns);
        if let (Some(watch), Ok(())) = (&watch, &unbound) {
            let deadline = std::time::Instant::now() + KERNEL_DELETE_BOUND;
            if let Err(e) = watch.wait_deleted(&mut links, deadline) {
                tracing::debug!(container = %self.id, "waiting for link notifications: {e}");
            }
            if !links.is_empty() {
                tracing::debug!(container = %self.id, "{links:?} not deleted with the namespace within {KERNEL_DELETE_BOUND:?}; deleting them");
            }
        }
        let finished = self.finish_deferred(deferred);
        unbound?;
        finished?;
        match fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(NetError::io("remove", &self.dir, e)),
            _ => Ok(()),
        }
    }

    /// DEL of every network, last joined first; continues past failures
    /// and reports all of them. With `watch`, the built-in networks whose
    /// veth still exists are left for the kernel to take with the
    /// namespace: everything of their DEL but the bridge step is done, and
    /// they are returned for [`ContainerNet::finish_deferred`] (which runs
    /// here on failure, with the namespace still bound).
    pub(super) fn detach_networks(
        &self,
        plugins: &Plugins,
        watch: Option<&LinkWatch>,
    ) -> Result<Vec<Deferred>, NetError> {
        let netns = self.netns_path();
        let netns = netns::is_bound(&netns).then_some(netns);
        let mut errors = Vec::new();
        let mut deferred = Vec::new();
        for (index, path) in self.checkpoints()?.into_iter().rev() {
            let result = read_checkpoint(&path).and_then(|cp| {
                let recorded;
                let plugins = if cp.plugin_dirs.is_empty() {
                    plugins
                } else {
                    recorded = Plugins {
                        dirs: cp.plugin_dirs.clone(),
                        timeout: plugins.timeout,
                    };
                    &recorded
                };
                let defer = watch.is_some() && netns.is_some();
                match self.del(&cp, &path, plugins, netns.as_deref(), defer) {
                    Ok(Some(link)) => {
                        deferred.push(Deferred {
                            checkpoint: cp,
                            path,
                            link,
                        });
                        return Ok(());
                    }
                    Ok(None) => {}
                    Err(e) => {
                        if !(cp.first_plugin_failed && cp.result.is_none()) {
                            return Err(e);
                        }
                        // The plugin refused ADD and refuses DEL too (e.g. a
                        // config it cannot parse): nothing of it exists.
                        tracing::warn!(container = %self.id, network = %cp.network, "DEL after a failed ADD: {e}");
                    }
                }
                self.forget(&cp, &path)
            });
            if let Err(e) = result {
                tracing::debug!(container = %self.id, index, "network DEL failed: {e}");
                errors.push(e);
            }
        }
        if errors.is_empty() {
            return Ok(deferred);
        }
        if let Err(e) = self.finish_deferred(deferred) {
            errors.push(e);
        }
        Err(match errors.len() {
            1 => errors.remove(0),
            _ => NetError::Teardown(errors),
        })
    }

    /// The bridge step's DEL of each deferred network (the link is gone
    /// by now, or is deleted here), then its ports and checkpoint.
    fn finish_deferred(&self, deferred: Vec<Deferred>) -> Result<(), NetError> {
        let mut errors = Vec::new();
        for d in deferred {
            let done = config_of(&d.checkpoint, &d.path)
                .and_then(|config| {
                    let bridge = config.plugins.first().ok_or_else(|| NetError::Checkpoint {
                        path: d.path.clone(),
                        problem: "no plugins".to_owned(),
                    })?;
                    in_process(CniCommand::Del, &config, bridge, &d.checkpoint, None)
                })
                .and_then(|_| self.forget(&d.checkpoint, &d.path));
            if let Err(e) = done {
                tracing::debug!(container = %self.id, network = %d.checkpoint.network, "network DEL failed: {e}");
                errors.push(e);
            }
        }
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(NetError::Teardown(errors)),
        }
    }

    /// After a network's DEL: its host ports released, its checkpoint gone.
    fn forget(&self, checkpoint: &Checkpoint, path: &Path) -> Result<(), NetError> {
        self.release_ports(&checkpoint.port_mappings)?;
        match fs::remove_file(path) {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(NetError::io("remove", path, e)),
            _ => Ok(()),
        }
    }

    /// DEL of one network's plugins, last first. With `defer`, a built-in
    /// network's bridge step (the first plugin, so the last to run) whose
    /// veth exists is not run: its host end is returned instead.
    fn del(
        &self,
        checkpoint: &Checkpoint,
        path: &Path,
        plugins: &Plugins,
        netns: Option<&Path>,
        defer: bool,
    ) -> Result<Option<(u32, String)>, NetError> {
        let config = config_of(checkpoint, path)?;
        let prev = checkpoint
            .result
            .as_ref()
            .filter(|_| config.chains_results());
        for (i, plugin) in config.plugins.iter().enumerate().rev() {
            if defer && i == 0 && is_in_process(checkpoint, plugin) {
                let link = bridge_step(&config, plugin, checkpoint)?
                    .host_end(&endpoint(checkpoint, netns))?;
                if link.is_some() {
                    return Ok(link);
                }
            }
            let stdin = plugin_input(&config, plugin, prev, &checkpoint.port_mappings);
            invoke(
                CniCommand::Del,
                &config,
                plugin,
                plugins,
                checkpoint,
                netns,
                &stdin,
            )?;
        }
        Ok(None)
    }
}
