//! Tests of the runtime store, on real files in a temporary directory.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;

use super::mounts::mount_points;
use super::*;
use crate::WaitStatus;
use crate::termination::Termination;

#[test]
fn every_valid_id_gets_a_creation_name_that_fits() {
    let unique = uuid::Uuid::new_v4();
    for id in [
        "a".to_owned(),
        "x".repeat(crate::id::MAX_CONTAINER_ID_LENGTH),
        "é".repeat(crate::id::MAX_CONTAINER_ID_LENGTH / 2),
    ] {
        let id = ContainerId::new(id).unwrap();
        let name = creation_name(&id, unique);
        assert!(name.len() <= 255, "{} bytes", name.len());
        assert!(name.starts_with(TMP_PREFIX));
        assert!(name.contains(&unique.simple().to_string()));
    }
    let short = creation_name(&ContainerId::new("web").unwrap(), unique);
    assert!(short.ends_with("-web"), "{short}");
}

fn store() -> (tempfile::TempDir, RuntimeStore) {
    let tmp = tempfile::tempdir().unwrap();
    let store = RuntimeStore::new(tmp.path());
    (tmp, store)
}

fn id(s: &str) -> ContainerId {
    ContainerId::new(s).unwrap()
}

#[test]
fn creation_is_invisible_until_published() {
    let (_tmp, store) = store();
    let new = store.create(&id("a")).unwrap();
    assert!(store.open(&id("a")).is_none());
    assert!(store.list().unwrap().is_empty());
    new.dir().write_json(CONFIG_FILE, &"x").unwrap();
    let (dir, _op, _init) = new.publish().unwrap();
    assert_eq!(store.list().unwrap(), vec![id("a")]);
    assert_eq!(dir.read_json::<String>(CONFIG_FILE).unwrap().unwrap(), "x");
}

#[test]
fn duplicate_ids_are_refused_and_leave_the_first_alone() {
    let (_tmp, store) = store();
    let (dir, _op, _init) = store.create(&id("a")).unwrap().publish().unwrap();
    dir.write_atomic("marker", b"first").unwrap();
    assert!(matches!(
        store.create(&id("a")),
        Err(StoreError::AlreadyExists(_))
    ));
    // A race past the early check is caught by RENAME_NOREPLACE.
    fs::remove_dir_all(dir.path()).unwrap();
    let racing = store.create(&id("a")).unwrap();
    let (dir, _op, _init) = store.create(&id("a")).unwrap().publish().unwrap();
    dir.write_atomic("marker", b"winner").unwrap();
    assert!(matches!(
        racing.publish(),
        Err(StoreError::AlreadyExists(_))
    ));
    assert_eq!(dir.read("marker").unwrap().unwrap(), b"winner");
    let leftovers: Vec<_> = fs::read_dir(store.containers_dir()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "the losing creation was not cleaned up");
}

#[test]
fn mount_points_are_unescaped() {
    let text = "22 1 0:21 / /proc rw - proc proc rw\n\
                90 30 0:50 / /w/containers/a\\040b rw - tmpfs tmpfs rw\n";
    let points: Vec<PathBuf> = mount_points(text).collect();
    assert_eq!(
        points,
        [PathBuf::from("/proc"), PathBuf::from("/w/containers/a b")]
    );
    // Not an escape the kernel writes: kept as it is, no overflow.
    let odd: Vec<PathBuf> = mount_points("1 1 0:1 / /x\\777 rw").collect();
    assert_eq!(odd, [PathBuf::from("/x\\777")]);
}

#[test]
fn privileged_remove_whole_never_removes_through_a_mount() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("skipping privileged_remove_whole_never_removes_through_a_mount: needs root");
        return;
    }
    let (_tmp, store) = store();
    let work = tempfile::tempdir().unwrap();
    let (dir, _op, _init) = store.create(&id("a")).unwrap().publish().unwrap();
    let mounted = work.path().join("containers/a/rootfs");
    fs::create_dir_all(&mounted).unwrap();
    let status = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "tmpfs"])
        .arg(&mounted)
        .status()
        .unwrap();
    assert!(status.success());
    fs::write(mounted.join("precious"), "x").unwrap();
    let err = dir.remove_whole(work.path()).unwrap_err();
    let kept = mounted.join("precious").exists();
    let c = CString::new(mounted.as_os_str().as_bytes()).unwrap();
    // SAFETY: umount2 of the tmpfs mounted above.
    unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    assert!(matches!(err, StoreError::MountedBeneath { .. }), "{err}");
    assert!(kept, "a file behind the mount was removed");
    assert!(dir.path().exists(), "the record went without its sandbox");
    dir.remove_whole(work.path()).unwrap();
    assert!(!dir.path().exists());
}

#[test]
fn remove_whole_takes_the_sandbox_and_leaves_other_dirs() {
    let (_tmp, store) = store();
    let work = tempfile::tempdir().unwrap();
    let (dir, _op, _init) = store.create(&id("a")).unwrap().publish().unwrap();
    let sandbox = work.path().join("containers/a");
    fs::create_dir_all(sandbox.join("sub")).unwrap();
    fs::write(sandbox.join("sub/f"), "x").unwrap();
    // A symlinked sandbox is removed as a link, its target kept.
    let (dir_b, _op_b, _init_b) = store.create(&id("b")).unwrap().publish().unwrap();
    let target = tempfile::tempdir().unwrap();
    fs::write(target.path().join("keep"), "x").unwrap();
    std::os::unix::fs::symlink(target.path(), work.path().join("containers/b")).unwrap();
    dir.remove_whole(work.path()).unwrap();
    dir_b.remove_whole(work.path()).unwrap();
    assert!(!sandbox.exists() && !dir.path().exists());
    assert!(fs::symlink_metadata(work.path().join("containers/b")).is_err());
    assert!(target.path().join("keep").exists());
    assert!(!dir_b.path().exists());
}

#[test]
fn dropped_creation_leaves_nothing() {
    let (_tmp, store) = store();
    drop(store.create(&id("a")).unwrap());
    assert_eq!(fs::read_dir(store.containers_dir()).unwrap().count(), 0);
}

#[test]
fn init_lock_tracks_its_holder() {
    let (_tmp, store) = store();
    let (dir, _op, init_lock) = store.create(&id("a")).unwrap().publish().unwrap();
    assert!(dir.init_alive().unwrap());
    drop(init_lock);
    assert!(!dir.init_alive().unwrap());
    dir.wait_for_init_exit().unwrap();
}

#[test]
fn operation_lock_excludes_others() {
    let (_tmp, store) = store();
    let (dir, op, _init) = store.create(&id("a")).unwrap().publish().unwrap();
    assert!(dir.try_lock_op().unwrap().is_none());
    drop(op);
    assert!(dir.try_lock_op().unwrap().is_some());
}

#[test]
fn abandoned_creations_are_found_only_when_unlocked() {
    let (_tmp, store) = store();
    let live = store.create(&id("a")).unwrap();
    assert!(store.abandoned_creations().unwrap().is_empty());
    // Simulate a creator that died: keep the directory, drop the locks.
    let path = live.dir().path().to_owned();
    std::mem::forget(live.guard);
    drop(live.op_lock);
    assert_eq!(store.abandoned_creations().unwrap(), vec![path]);
}

#[test]
fn checkpoints_round_trip_and_report_corruption() {
    let (_tmp, store) = store();
    let (dir, _op, _init) = store.create(&id("a")).unwrap().publish().unwrap();
    let t = Termination::from_exit(WaitStatus::exited(3));
    dir.write_json(TERMINATION_FILE, &t).unwrap();
    assert_eq!(
        dir.read_json::<Termination>(TERMINATION_FILE).unwrap(),
        Some(t)
    );
    assert_eq!(dir.read_json::<Termination>("missing").unwrap(), None);
    dir.write_atomic(PID_FILE, b"12x\n").unwrap();
    let err = dir.pid().unwrap_err().to_string();
    assert!(err.contains("'12x' is not a pid"), "{err}");
    // An older runtime dir's JSON state file is still read, and a
    // corrupt one is reported.
    dir.write_atomic(STATE_FILE, b"{").unwrap();
    assert!(matches!(dir.state(), Err(StoreError::Corrupt { .. })));
    let legacy = StateRecord::now(ContainerState::Fetching);
    dir.write_json(STATE_FILE, &legacy).unwrap();
    assert_eq!(dir.state().unwrap(), Some(legacy));
    let r = dir.set_state(ContainerState::Running).unwrap();
    assert_eq!(dir.state().unwrap(), Some(r));
    assert!(
        fs::symlink_metadata(dir.file(STATE_FILE))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    fs::remove_file(dir.file(STATE_FILE)).unwrap();
    std::os::unix::fs::symlink("RUNNING soon", dir.file(STATE_FILE)).unwrap();
    let err = dir.state().unwrap_err().to_string();
    assert!(err.contains("'RUNNING soon' is not a state"), "{err}");
}

#[test]
fn one_listing_finds_records_nested_ones_and_creations() {
    let (_tmp, store) = store();
    let (_a, _op_a, _init_a) = store.create(&id("a")).unwrap().publish().unwrap();
    let (b, _op_b, _init_b) = store.create(&id("b")).unwrap().publish().unwrap();
    let ax = id("a").child(&id("x")).unwrap();
    let (_ax, _op_ax, _init_ax) = store.create(&ax).unwrap().publish().unwrap();
    // Unpublished creations at both levels, a subdirectory that is not
    // one of nested containers, and entries that are no records.
    let top = store.create(&id("c")).unwrap();
    let nested = store.create(&id("a").child(&id("y")).unwrap()).unwrap();
    fs::create_dir(b.file("other")).unwrap();
    std::os::unix::fs::symlink(b.path(), store.containers_dir().join("s")).unwrap();
    fs::write(store.containers_dir().join("f"), b"").unwrap();

    let containers = store.containers().unwrap();
    let listing = containers.list().unwrap();
    let all = [id("a"), ax.clone(), id("b"), id("f"), id("s")];
    assert_eq!(listing.ids, all.to_vec());
    assert_eq!(store.list().unwrap(), all.to_vec());
    assert!(listing.has_nested(&id("a")));
    for other in [&ax, &id("b"), &id("f"), &id("s")] {
        assert!(!listing.has_nested(other), "{other}");
    }
    let mut creations = listing.creations().to_vec();
    creations.sort();
    let mut expected = vec![top.dir().path().to_owned(), nested.dir().path().to_owned()];
    expected.sort();
    assert_eq!(creations, expected);
    assert_eq!(
        containers.top_level().unwrap(),
        [id("a"), id("b"), id("f"), id("s")].into_iter().collect()
    );
    // Only real directories are records: not the symlink, not the file.
    assert!(containers.open(&id("s")).is_none());
    assert!(containers.open(&id("f")).is_none());
    assert!(containers.open(&id("missing")).is_none());
    assert_eq!(
        containers.open(&ax).unwrap().path(),
        store.open(&ax).unwrap().path()
    );
}

#[test]
fn a_record_opened_by_descriptor_reads_and_locks_as_by_path() {
    let (_tmp, store) = store();
    let (by_path, op, init) = store.create(&id("a")).unwrap().publish().unwrap();
    by_path.write_json(CONFIG_FILE, &"config").unwrap();
    by_path.write_atomic(PID_FILE, b"42\n").unwrap();
    let r = by_path.set_state(ContainerState::Running).unwrap();
    let containers = store.containers().unwrap();
    let by_fd = containers.open(&id("a")).unwrap();
    assert_eq!(by_fd.path(), by_path.path());
    assert_eq!(
        by_fd.read_json::<String>(CONFIG_FILE).unwrap().unwrap(),
        "config"
    );
    assert_eq!(by_fd.read_json::<String>(TERMINATION_FILE).unwrap(), None);
    assert_eq!(by_fd.pid().unwrap(), Some(42));
    assert_eq!(by_fd.state().unwrap(), Some(r));
    assert!(by_fd.exists(CONFIG_FILE) && !by_fd.exists(TERMINATION_FILE));
    // A file of the record that is a symlink is not followed.
    std::os::unix::fs::symlink(by_path.file(CONFIG_FILE), by_path.file("link")).unwrap();
    assert!(by_fd.read("link").is_err());
    // The locks: each operation lock is its own, whichever way it was taken.
    assert!(by_fd.init_alive().unwrap());
    assert!(by_fd.try_lock_op().unwrap().is_none());
    drop(op);
    let held = by_fd.try_lock_op().unwrap().expect("the lock is free");
    assert!(by_fd.try_lock_op().unwrap().is_none());
    assert!(by_path.try_lock_op().unwrap().is_none());
    drop(held);
    assert!(by_path.try_lock_op().unwrap().is_some());
    drop(init);
    assert!(!by_fd.init_alive().unwrap());
    by_fd.wait_for_init_exit().unwrap();
}

#[test]
fn a_record_reads_whole_at_every_size() {
    let dir = tempfile::tempdir().unwrap();
    // Below, at and across the 8 KiB read: each ends with its last byte.
    for len in [0usize, 1, 8191, 8192, 8193, 16_384, 20_000] {
        let data: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
        let path = dir.path().join("record");
        std::fs::write(&path, &data).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        assert_eq!(at::read_all(&file).unwrap(), data, "{len}");
    }
}
