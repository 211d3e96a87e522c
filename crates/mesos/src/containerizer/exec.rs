//! Running a command inside a live container (`phobos exec`, by the exec
//! helper entering its namespaces and cgroups) and signalling its
//! processes.

use super::launch::{merge_env, resolve_user};
use super::*;

impl MesosContainerizer {
    /// Starts a command inside a running container (`phobos exec`): in
    /// its namespaces, cgroups, environment, working directory and user
    /// unless `request` says otherwise, with the given stdio. A helper (the
    /// `phobos init` binary in join mode) is cloned into the container's
    /// kill cgroup, placed in its isolators' cgroups, and released; it
    /// enters the namespaces with setns(2) and supervises the command.
    /// `None` for an unknown container; a container that is not running is
    /// an error. A destroy kills the command with the container.
    pub fn exec(
        &self,
        id: &ContainerId,
        request: &ExecRequest,
        stdio: ExecStdio<'_>,
    ) -> Result<Option<ExecProcess>> {
        let Some(dir) = self.store.open(id) else {
            return Ok(None);
        };
        // Held while the helper is placed, so a destroy cannot slip in
        // between and leave it outside the container's cgroups.
        let _op = dir.lock_op()?;
        let not_running = || ContainerizerError::NotRunning(id.clone());
        let running = matches!(dir.state()?.map(|r| r.state), Some(ContainerState::Running));
        if dir.exists(TERMINATION_FILE) || !running || !dir.init_alive()? {
            return Err(not_running());
        }
        let init_pid = dir.pid()?.ok_or_else(not_running)?;
        let config = self.config(&dir)?;
        let info: LaunchInfo = dir
            .read_json(LAUNCH_INFO_FILE)?
            .ok_or_else(|| ContainerizerError::NoConfig(id.clone()))?;
        let user = match &request.user {
            Some(spec) => resolve_user(&config, Some(spec))?.0,
            None => info.user.clone(),
        };
        let mut env = info.env.clone();
        env.extend(request.env.iter().cloned());
        let spec = LaunchInfo {
            // A nested container's init also joined its parent's.
            namespaces: info.entered_namespaces(),
            argv: request.argv.clone(),
            env: merge_env(env),
            working_dir: request
                .working_dir
                .clone()
                .unwrap_or_else(|| info.working_dir.clone()),
            user,
            // The same confinement as the container's command.
            hardening: info.hardening.clone(),
            // A nested container's shared pid namespace (its children's).
            join_parent: info.join_parent.clone(),
            tty: request.tty.map(|size| crate::launch_info::TtyLaunch {
                size,
                private_devpts: info.rootfs.is_some(),
            }),
            ..LaunchInfo::default()
        };
        let tty = match request.tty {
            Some(_) => Some(tty_channel()?),
            None => None,
        };
        let spec_file = format!("exec-{}", ContainerId::random());
        dir.write_json(&spec_file, &spec)?;
        let started = self.start_exec_helper(
            &dir,
            &config,
            init_pid,
            &spec_file,
            stdio,
            tty.as_ref().map(|(_, theirs)| theirs),
        );
        if started.is_err() {
            let _ = fs::remove_file(dir.file(&spec_file));
        }
        let (pid, pidfd) = started?;
        Ok(Some(ExecProcess {
            pid,
            pidfd,
            tty: tty.map(|(ours, _)| ours),
            spec: dir.file(&spec_file),
        }))
    }

    /// Clones, places and releases `phobos exec`'s helper; kills it again
    /// when any step fails.
    pub(super) fn start_exec_helper(
        &self,
        dir: &ContainerDir,
        config: &ContainerConfig,
        init_pid: i32,
        spec_file: &str,
        stdio: ExecStdio<'_>,
        tty: Option<&OwnedFd>,
    ) -> Result<(i32, OwnedFd)> {
        let id = &config.id;
        let launcher = self.launcher_for(config)?;
        let isolators = isolator::build_with(config, &self.host())?;
        let cgroup = launcher.prepare(id)?;
        // The helper must not hold the container's init lock: fd 4 is
        // /dev/null for it.
        let no_lock = File::open("/dev/null").map_err(|source| ContainerizerError::Sandbox {
            path: PathBuf::from("/dev/null"),
            source,
        })?;
        // Into the container's v1 cgroups by itself, before its exec.
        let join = isolator::JoinFiles::of(&isolators, id, false);
        let helper = launcher::spawn_init(&InitSpec {
            exe: &self.init_exe,
            runtime_dir: dir.path(),
            clone_flags: 0,
            stdin: Some(stdio.stdin),
            stdout: stdio.stdout,
            stderr: stdio.stderr,
            init_lock: &no_lock,
            cgroup: cgroup.as_ref(),
            join_cgroups: &join.any,
            join_own_memory: &[],
            join: Some((init_pid, spec_file)),
            tty,
        })?;
        let pid = helper.pid;
        let placed = (|| -> Result<OwnedFd> {
            launcher.adopt(id, &helper)?;
            for isolator in &isolators {
                isolator.isolate(id, pid)?;
            }
            let pidfd = match &helper.pidfd {
                Some(fd) => fd.try_clone(),
                None => crate::sys::pidfd_open(pid),
            }
            .map_err(|source| ContainerizerError::Signal {
                id: id.clone(),
                source,
            })?;
            Ok(pidfd)
        })();
        match placed {
            Ok(pidfd) => match helper.release() {
                Ok(()) => Ok((pid, pidfd)),
                Err(e) => {
                    reap_child(pid);
                    Err(e.into())
                }
            },
            Err(e) => {
                // SAFETY: kill(2) of our own child, then reaping it.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                reap_child(pid);
                Err(e)
            }
        }
    }

    /// Sends `signal` to the container's command (through init). Returns
    /// `None` for an unknown container. A container that is still launching
    /// is destroyed instead, as Mesos does.
    pub fn kill(&self, id: &ContainerId, signal: i32) -> Result<Option<()>> {
        let Some(dir) = self.store.open(id) else {
            return Ok(None);
        };
        if dir.exists(TERMINATION_FILE) {
            return Err(ContainerizerError::NotRunning(id.clone()));
        }
        let Some(pid) = dir.pid()? else {
            self.destroy(id)?;
            return Ok(Some(()));
        };
        let not_running = || ContainerizerError::NotRunning(id.clone());
        let pidfd = crate::sys::pidfd_open(pid).map_err(|_| not_running())?;
        // The pidfd pins the process; checking the lock after opening it
        // proves the pid still is this container's init.
        if !dir.init_alive()? {
            return Err(not_running());
        }
        // Init forwards what it receives; SIGKILL and SIGSTOP would end or
        // stop init itself, so it is asked to send those.
        let forwards = |dir: &ContainerDir| {
            dir.read_json::<LaunchInfo>(LAUNCH_INFO_FILE)
                .ok()
                .flatten()
                .is_some_and(|info| info.forwards_kill_and_stop)
        };
        let sent = match signal {
            libc::SIGKILL | libc::SIGSTOP if forwards(&dir) => crate::sys::pidfd_send_queued(
                &pidfd,
                crate::init::forward_carrier(),
                crate::init::FORWARD_TAG | signal,
            ),
            _ => crate::sys::pidfd_send_signal(&pidfd, signal),
        };
        sent.map_err(|source| ContainerizerError::Signal {
            id: id.clone(),
            source,
        })?;
        Ok(Some(()))
    }
}
