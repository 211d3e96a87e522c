//! Real unpacking, loading and provisioning (as root: owners, device
//! nodes, trusted xattrs and overlay mounts need it).

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use common::{CAP_NET_RAW, E, layer, test_layers};
use phobos_core::ContainerId;
use phobos_image::{Backend, Error, Provisioner, Quiet, Reference, Store, load, unpack_layer};

fn root() -> bool {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        eprintln!("skipping: needs root");
    }
    euid == 0
}

fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let p = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    let mut buf = vec![0u8; 256];
    // SAFETY: valid C strings and a buffer of the given length.
    let r = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if r < 0 {
        return None;
    }
    buf.truncate(r as usize);
    Some(buf)
}

#[test]
fn privileged_unpack_keeps_metadata_and_writes_overlay_whiteouts() {
    if !root() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let layers = test_layers();
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    std::fs::create_dir(&a).unwrap();
    std::fs::create_dir(&b).unwrap();
    let s0 = unpack_layer(&common::gzip(&layers[0])[..], &a, "l0").unwrap();
    assert_eq!(s0.diff_id.to_string(), common::digest(&layers[0]));
    unpack_layer(&layers[1][..], &b, "l1").unwrap();

    let tool = std::fs::metadata(a.join("bin/tool")).unwrap();
    assert_eq!(
        tool.ino(),
        std::fs::metadata(a.join("bin/tool-link")).unwrap().ino()
    );
    assert_eq!(tool.mtime(), 1_700_000_000);
    assert_eq!(
        std::fs::metadata(a.join("bin/su")).unwrap().mode() & 0o7777,
        0o4755
    );
    let home = std::fs::metadata(a.join("home/user/file")).unwrap();
    assert_eq!(
        (home.uid(), home.gid(), home.mode() & 0o777),
        (1000, 1000, 0o640)
    );
    assert_eq!(
        xattr(&a.join("home/user/file"), "user.note").as_deref(),
        Some(&b"kept"[..])
    );
    assert_eq!(
        xattr(&a.join("bin/ping"), "security.capability").as_deref(),
        Some(CAP_NET_RAW)
    );
    assert_eq!(
        std::fs::read_link(a.join("sh-link")).unwrap(),
        Path::new("/bin/tool")
    );
    assert_eq!(
        std::fs::metadata(a.join("dev/null")).unwrap().rdev(),
        libc::makedev(1, 3)
    );

    let wh = std::fs::symlink_metadata(b.join("gone")).unwrap();
    assert_eq!((wh.mode() & libc::S_IFMT, wh.rdev()), (libc::S_IFCHR, 0));
    assert!(!b.join(".wh.gone").exists());
    assert_eq!(
        xattr(&b.join("opq"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert!(!b.join("opq/.wh..wh..opq").exists());
}

fn check_rootfs(rootfs: &Path) {
    assert!(!rootfs.join("gone").exists(), "whited-out dir visible");
    let mut opq: Vec<_> = std::fs::read_dir(rootfs.join("opq"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    opq.sort();
    assert_eq!(opq, vec!["c"], "opaque dir shows lower entries");
    assert_eq!(std::fs::read(rootfs.join("replaced")).unwrap(), b"new");
    assert_eq!(
        std::fs::metadata(rootfs.join("replaced"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    assert!(!rootfs.join("bin/tool-link").exists());
    assert_eq!(
        std::fs::read(rootfs.join("bin/tool")).unwrap(),
        b"#!/bin/sh\necho tool\n"
    );
    assert_eq!(
        std::fs::metadata(rootfs.join("bin/su")).unwrap().mode() & 0o7777,
        0o4755
    );
    assert_eq!(
        xattr(&rootfs.join("bin/ping"), "security.capability").as_deref(),
        Some(CAP_NET_RAW)
    );
    assert_eq!(
        std::fs::read_link(rootfs.join("sh-link")).unwrap(),
        Path::new("/bin/tool")
    );
}

fn load_test_image(t: &Path, store: &Store) -> phobos_image::StoredImage {
    let layout = t.join("layout");
    common::oci_layout(
        &layout,
        &test_layers(),
        serde_json::json!({"Entrypoint": ["/bin/tool"], "Cmd": ["-v"], "Env": ["A=1"], "WorkingDir": "/opq", "User": "1000:1000"}),
        "127.0.0.1:5999/phobos/test:v1",
    );
    let archive = t.join("image.tar");
    common::tar_dir(&layout, &archive);
    let images = load(store, &archive, None, &Quiet).unwrap();
    assert_eq!(images.len(), 1);
    images.into_iter().next().unwrap()
}

#[test]
fn privileged_load_oci_archive_and_provision_with_both_backends() {
    if !root() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path().join("store")).unwrap();
    let image = load_test_image(t.path(), &store);
    assert_eq!(image.reference.to_string(), "127.0.0.1:5999/phobos/test:v1");
    assert_eq!(image.layers.len(), 2);
    assert_eq!(image.config.entrypoint, Some(vec!["/bin/tool".to_string()]));
    assert_eq!(image.config.working_dir.as_deref(), Some("/opq"));
    assert_eq!(image.config.user.as_deref(), Some("1000:1000"));
    let again = store
        .image(&Reference::parse("127.0.0.1:5999/phobos/test:v1").unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(again.layers, image.layers);

    for backend in [Backend::Overlay, Backend::Copy] {
        let prov = Provisioner::new(store.clone(), t.path().join("provisioner"), backend);
        let id = ContainerId::new(format!("c-{}", backend.as_str())).unwrap();
        let rootfs = prov.provision(&id, &image).unwrap();
        check_rootfs(&rootfs);
        std::fs::write(rootfs.join("written"), b"w").unwrap();
        assert!(
            !image.layers.iter().any(|l| l.join("written").exists()),
            "{backend:?} wrote into a layer"
        );
        assert_eq!(store.in_use().unwrap().len(), 1);
        // In use: refused.
        let err = store.remove_image(&image.reference).unwrap_err();
        assert!(matches!(err, Error::InUse { .. }), "{err}");
        assert!(err.to_string().contains(id.as_str()), "{err}");
        prov.destroy(&id).unwrap();
        prov.destroy(&id).unwrap();
        assert!(!prov.container_dir(&id).exists());
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mounts.contains(prov.container_dir(&id).to_str().unwrap()));
    }
    assert!(store.in_use().unwrap().is_empty());
    let rec = store.records().unwrap();
    assert!(rec[0].last_used.is_some());
    store.remove_image(&image.reference).unwrap();
    assert!(
        image.layers.iter().all(|l| !l.exists()),
        "rm left unused layers"
    );
}

#[test]
fn privileged_docker_archive_loads_by_repo_tags_and_shares_layers() {
    if !root() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path().join("store")).unwrap();
    let layers = test_layers();
    let a = t.path().join("a.tar");
    common::docker_archive(
        &a,
        &layers,
        serde_json::json!({"Cmd": ["sh"]}),
        &["phobos-test-a:1", "example.com/x/y:2"],
    );
    let images = load(&store, &a, None, &Quiet).unwrap();
    let names: Vec<String> = images.iter().map(|i| i.reference.to_string()).collect();
    assert_eq!(
        names,
        vec!["docker.io/library/phobos-test-a:1", "example.com/x/y:2"]
    );
    // A second image sharing the base layer: only its new layer is unpacked.
    let extra = layer(&[E::File("extra", 0o644, b"e")]);
    let b = t.path().join("b.tar");
    common::docker_archive(
        &b,
        &[layers[0].clone(), extra],
        serde_json::json!({}),
        &["phobos-test-b"],
    );
    struct Count(std::sync::atomic::AtomicUsize);
    impl phobos_image::Progress for Count {
        fn event(&self, e: phobos_image::Event) {
            if let phobos_image::Event::LayerDone { fetched: true, .. } = e {
                self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
    }
    let count = Count(Default::default());
    let loaded = load(&store, &b, None, &count).unwrap();
    assert_eq!(count.0.into_inner(), 1);
    assert_eq!(loaded[0].layers[0], images[0].layers[0]);
    assert_eq!(store.prune().unwrap().0, 0);
    store.remove_image(&images[0].reference).unwrap();
    store.remove_image(&images[1].reference).unwrap();
    assert!(
        loaded[0].layers.iter().all(|l| l.exists()),
        "rm removed a layer another image uses"
    );
}

#[test]
fn privileged_hostile_layers_are_refused_and_touch_nothing_outside() {
    if !root() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let outside = t.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("secret"), b"host").unwrap();
    let out = outside.to_str().unwrap().to_string();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "traversal",
            layer(&[E::File("../../../outside/evil", 0o644, b"x")]),
        ),
        (
            "dotdot inside",
            layer(&[E::Dir("a", 0o755), E::File("a/../../evil", 0o644, b"x")]),
        ),
        (
            "absolute symlink then a file through it",
            layer(&[E::Symlink("etc", &out), E::File("etc/evil", 0o644, b"x")]),
        ),
        (
            "symlinked parent dir",
            layer(&[
                E::Dir("d", 0o755),
                E::Symlink("d/up", "../../../outside"),
                E::File("d/up/evil", 0o644, b"x"),
            ]),
        ),
        (
            "hard link to a host file",
            layer(&[E::Hardlink("stolen", &format!("{out}/secret"))]),
        ),
        (
            "hard link traversal",
            layer(&[E::Hardlink("stolen", "../../outside/secret")]),
        ),
        (
            "whiteout traversal",
            layer(&[E::File("../.wh.outside", 0o644, b"")]),
        ),
    ];
    for (what, tar) in cases {
        let dest = t.path().join(format!("l-{}", what.replace(' ', "-")));
        std::fs::create_dir(&dest).unwrap();
        let err = unpack_layer(&tar[..], &dest, what).expect_err(what);
        assert!(matches!(err, Error::Hostile { .. }), "{what}: {err}");
        assert!(
            !err.to_string().contains('\n'),
            "{what}: not one line: {err}"
        );
        let mut names: Vec<_> = std::fs::read_dir(&outside)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, vec!["secret"], "{what} wrote outside");
        assert_eq!(std::fs::read(outside.join("secret")).unwrap(), b"host");
        assert_eq!(
            std::fs::metadata(outside.join("secret")).unwrap().nlink(),
            1,
            "{what} linked the host file"
        );
    }
    // An absolute name is confined to the layer, not written to the host.
    let dest = t.path().join("abs");
    std::fs::create_dir(&dest).unwrap();
    let tar = layer(&[E::File(&format!("{out}/abs"), 0o644, b"x")]);
    unpack_layer(&tar[..], &dest, "abs").unwrap();
    assert!(!outside.join("abs").exists());
    assert!(dest.join(out.trim_start_matches('/')).join("abs").exists());

    // Through load, too: nothing stored.
    let store = Store::open(t.path().join("store")).unwrap();
    let a = t.path().join("hostile.tar");
    let evil = layer(&[E::Symlink("etc", &out), E::File("etc/evil", 0o644, b"x")]);
    common::docker_archive(&a, &[evil], serde_json::json!({}), &["evil"]);
    let err = load(&store, &a, None, &Quiet).unwrap_err();
    assert!(matches!(err, Error::Hostile { .. }), "{err}");
    assert!(store.records().unwrap().is_empty());
    assert_eq!(
        std::fs::read_dir(store.root().join("layers"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(
        std::fs::read_dir(store.root().join("staging"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 1);
}

#[test]
fn privileged_corrupt_layer_is_not_stored() {
    if !root() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path().join("store")).unwrap();
    let layout = t.path().join("layout");
    common::oci_layout(
        &layout,
        &test_layers(),
        serde_json::json!({}),
        "localhost/x:1",
    );
    // Flip a byte in the biggest blob (a layer): its digest no longer matches.
    let mut blobs: Vec<_> = std::fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    blobs.sort_by_key(|p| std::fs::metadata(p).unwrap().len());
    let victim = blobs.last().unwrap();
    let mut data = std::fs::read(victim).unwrap();
    let n = data.len();
    data[n - 10] ^= 0xff;
    std::fs::write(victim, data).unwrap();
    let archive = t.path().join("x.tar");
    common::tar_dir(&layout, &archive);
    let err = load(&store, &archive, None, &Quiet).unwrap_err();
    assert!(
        matches!(err, Error::DigestMismatch { .. } | Error::Malformed { .. }),
        "{err}"
    );
    assert!(store.records().unwrap().is_empty());
    assert_eq!(
        std::fs::read_dir(store.root().join("staging"))
            .unwrap()
            .count(),
        0
    );

    // Not an archive at all.
    let junk = t.path().join("junk.tar");
    std::fs::write(&junk, b"not a tar").unwrap();
    let err = load(&store, &junk, None, &Quiet).unwrap_err();
    assert!(matches!(err, Error::Malformed { .. }), "{err}");
}

#[test]
fn privileged_docker_25_save_layout_is_named_by_the_containerd_annotation() {
    if !root() {
        return;
    }
    // Docker >= 25 writes an OCI layout plus manifest.json, names images
    // in io.containerd.image.name and only the tag in ref.name.
    let t = tempfile::tempdir().unwrap();
    let layout = t.path().join("layout");
    let manifest = common::oci_layout(
        &layout,
        &test_layers(),
        serde_json::json!({"Cmd": ["sh"]}),
        "v25",
    );
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest,
        "size": std::fs::metadata(layout.join("blobs/sha256").join(&manifest[7..])).unwrap().len(),
        "annotations": {"io.containerd.image.name": "docker.io/library/phobos-test:v25", "org.opencontainers.image.ref.name": "v25"}}]});
    std::fs::write(layout.join("index.json"), index.to_string()).unwrap();
    std::fs::write(layout.join("manifest.json"), b"[]").unwrap();
    let archive = t.path().join("save.tar");
    common::tar_dir(&layout, &archive);
    let store = Store::open(t.path().join("store")).unwrap();
    let images = load(&store, &archive, None, &Quiet).unwrap();
    assert_eq!(
        images[0].reference.to_string(),
        "docker.io/library/phobos-test:v25"
    );
    assert_eq!(images[0].digest.to_string(), manifest);

    // An OCI archive that only tags its image needs --name.
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest,
        "size": std::fs::metadata(layout.join("blobs/sha256").join(&manifest[7..])).unwrap().len(),
        "annotations": {"org.opencontainers.image.ref.name": "v2"}}]});
    std::fs::write(layout.join("index.json"), index.to_string()).unwrap();
    std::fs::remove_file(layout.join("manifest.json")).unwrap();
    common::tar_dir(&layout, &archive);
    let err = load(&store, &archive, None, &Quiet).unwrap_err();
    assert!(err.to_string().contains("--name"), "{err}");
    let named = Reference::parse("registry.lan/team/app").unwrap();
    let images = load(&store, &archive, Some(&named), &Quiet).unwrap();
    assert_eq!(images[0].reference.to_string(), "registry.lan/team/app:v2");
}
