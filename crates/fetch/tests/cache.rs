//! The fetcher cache against a real HTTP server on 127.0.0.1 that counts
//! requests: hits, de-duplicated concurrent downloads, LRU eviction by
//! size, the fallbacks (no length, too large), a truncated download, and
//! symlinks planted in the cache directory.

mod common;

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Reply, gzip, noise, sandbox, serve_counted};
use phobos_fetch::cache::entry_name;
use phobos_fetch::{CacheSettings, Cause, Settings, Uri, fetch_all, parse_spec};

fn cached(dir: &Path, max_bytes: u64) -> Settings {
    Settings {
        stall_timeout: Duration::from_secs(30),
        cache: Some(CacheSettings {
            dir: dir.to_owned(),
            max_bytes,
        }),
        ..Settings::default()
    }
}

fn cache_uri(url: &str) -> Uri {
    parse_spec(&format!("{url},cache")).unwrap()
}

fn count(counts: &common::Counts, path: &str) -> usize {
    counts.lock().unwrap().get(path).copied().unwrap_or(0)
}

/// The entries (not locks) in the cache directory and their total size.
fn entries(dir: &Path) -> (Vec<String>, u64) {
    let mut names = Vec::new();
    let mut total = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().into_string().unwrap();
        if name.len() == 64 {
            total += e.metadata().unwrap().len();
            names.push(name);
        }
    }
    names.sort();
    (names, total)
}

fn tar_with(name: &str, data: &[u8]) -> Vec<u8> {
    let mut t = Vec::new();
    common::raw_member(&mut t, name, tar::EntryType::Regular, "", data);
    common::finish(t)
}

#[test]
fn a_cached_uri_is_downloaded_once_per_user_and_copied_into_each_sandbox() {
    let body = gzip(&tar_with("app/data", b"payload"));
    let (base, counts) = serve_counted(HashMap::from([("/app.tgz", Reply::Body(body.clone()))]));
    let scratch = tempfile::tempdir().unwrap();
    let cache_dir = scratch.path().join("cache");
    let s = cached(&cache_dir, 10 << 20);
    let url = format!("{base}/app.tgz");
    for round in 0..3 {
        let (_keep, sb) = sandbox();
        let got = fetch_all(&[cache_uri(&url)], &sb, &s).unwrap();
        assert_eq!(got[0].cache_hit, round > 0, "round {round}");
        assert_eq!(std::fs::read(sb.join("app/data")).unwrap(), b"payload");
        assert_eq!(std::fs::read(sb.join("app.tgz")).unwrap(), body);
    }
    assert_eq!(count(&counts, "/app.tgz"), 1, "served from the cache");
    let entry = cache_dir.join(entry_name(&url, None));
    assert_eq!(std::fs::read(&entry).unwrap(), body);
    let mode = std::fs::metadata(&entry).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "entries private (MESOS-7298)");
    let dir_mode = std::fs::metadata(&cache_dir).unwrap().permissions().mode();
    assert_eq!(dir_mode & 0o777, 0o700);

    // Without `cache`, or for another user: downloaded again.
    let (_keep, sb) = sandbox();
    fetch_all(&[Uri::new(&url)], &sb, &s).unwrap();
    assert_eq!(count(&counts, "/app.tgz"), 2);
    let other = Settings {
        owner: Some((65534, 65534)),
        ..s.clone()
    };
    let (_keep, sb) = sandbox();
    let got = fetch_all(&[cache_uri(&url)], &sb, &other).unwrap();
    assert!(!got[0].cache_hit);
    assert_eq!(count(&counts, "/app.tgz"), 3, "keyed by user");
    assert!(cache_dir.join(entry_name(&url, Some(65534))).is_file());
}

#[test]
fn concurrent_fetches_of_one_uri_download_it_once() {
    let body = noise(1 << 20, 1);
    let (base, counts) = serve_counted(HashMap::from([(
        "/big.bin",
        Reply::Slow(body.clone(), Duration::from_millis(20)),
    )]));
    let scratch = tempfile::tempdir().unwrap();
    let s = cached(&scratch.path().join("cache"), 10 << 20);
    let url = format!("{base}/big.bin");
    let results: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..6)
            .map(|_| {
                let (s, url) = (&s, &url);
                scope.spawn(move || {
                    let (keep, sb) = sandbox();
                    let got = fetch_all(&[cache_uri(url)], &sb, s).unwrap();
                    (keep, sb, got)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        count(&counts, "/big.bin"),
        1,
        "one download for six launches"
    );
    let misses = results
        .iter()
        .filter(|(_, _, got)| !got[0].cache_hit)
        .count();
    assert_eq!(misses, 1);
    for (_keep, sb, _) in &results {
        assert_eq!(std::fs::read(sb.join("big.bin")).unwrap(), body);
    }
}

#[test]
fn the_least_recently_used_entries_are_evicted_to_keep_the_cache_bounded() {
    let k = 100 * 1024;
    let routes: HashMap<&'static str, Reply> =
        [("/a", 1), ("/b", 2), ("/c", 3), ("/d", 4), ("/huge", 5)]
            .into_iter()
            .map(|(p, seed)| {
                let n = if p == "/huge" { 4 * k } else { k };
                (p, Reply::Body(noise(n, seed)))
            })
            .chain([("/nolength", Reply::NoLength(noise(k, 6)))])
            .collect();
    let (base, counts) = serve_counted(routes);
    let scratch = tempfile::tempdir().unwrap();
    let cache_dir = scratch.path().join("cache");
    let s = cached(&cache_dir, 3 * k as u64);
    let get = |p: &str| {
        let (_keep, sb) = sandbox();
        let got = fetch_all(&[cache_uri(&format!("{base}{p}"))], &sb, &s).unwrap();
        assert_eq!(
            std::fs::metadata(sb.join(p.trim_start_matches('/')))
                .unwrap()
                .len(),
            got[0].bytes
        );
        got[0].cache_hit
    };
    assert!(!get("/a"));
    assert!(!get("/b"));
    assert!(!get("/c"));
    assert!(get("/a"), "a is now the most recently used");
    assert!(!get("/d"), "d evicts b, the least recently used");
    let (names, total) = entries(&cache_dir);
    assert_eq!(names.len(), 3);
    assert!(total <= 3 * k as u64, "{total}");
    assert!(!names.contains(&entry_name(&format!("{base}/b"), None)));
    assert!(get("/a"));
    assert!(get("/c"));
    assert!(!get("/b"), "b was evicted: downloaded again");
    assert_eq!(count(&counts, "/b"), 2);
    assert_eq!(count(&counts, "/a"), 1);

    // Larger than the whole cache, or of unknown size: fetched directly.
    assert!(!get("/huge"));
    assert!(!get("/huge"));
    assert_eq!(count(&counts, "/huge"), 2);
    assert!(!get("/nolength"));
    assert!(!get("/nolength"));
    assert_eq!(count(&counts, "/nolength"), 2);
    let (names, total) = entries(&cache_dir);
    assert_eq!(names.len(), 3);
    assert!(total <= 3 * k as u64, "{total}");
}

#[test]
fn a_truncated_download_is_neither_cached_nor_left_in_the_sandbox() {
    let (base, counts) = serve_counted(HashMap::from([(
        "/cut.bin",
        Reply::Short(4096, noise(1000, 7)),
    )]));
    let scratch = tempfile::tempdir().unwrap();
    let cache_dir = scratch.path().join("cache");
    let s = cached(&cache_dir, 1 << 20);
    let url = format!("{base}/cut.bin");
    for _ in 0..2 {
        let (_keep, sb) = sandbox();
        let err = fetch_all(&[cache_uri(&url)], &sb, &s).unwrap_err();
        assert!(err.to_string().contains(&url), "{err}");
        assert_eq!(err.to_string().lines().count(), 1);
        assert_eq!(std::fs::read_dir(&sb).unwrap().count(), 0, "{err}");
        assert_eq!(entries(&cache_dir).0.len(), 0);
        let parts: Vec<_> = std::fs::read_dir(&cache_dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".part")
            })
            .collect();
        assert!(parts.is_empty(), "no partial entry left");
    }
    assert_eq!(count(&counts, "/cut.bin"), 2);
}

#[test]
fn symlinks_planted_in_the_cache_directory_are_never_followed() {
    let (base, counts) = serve_counted(HashMap::from([(
        "/f.txt",
        Reply::Body(b"from the server".to_vec()),
    )]));
    let scratch = tempfile::tempdir().unwrap();
    let cache_dir = scratch.path().join("cache");
    std::fs::create_dir(&cache_dir).unwrap();
    std::fs::set_permissions(&cache_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let secret = scratch.path().join("secret");
    std::fs::write(&secret, b"host secret").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let url = format!("{base}/f.txt");
    let name = entry_name(&url, None);
    // The entry and its staging file point at the secret.
    std::os::unix::fs::symlink(&secret, cache_dir.join(&name)).unwrap();
    std::os::unix::fs::symlink(&secret, cache_dir.join(format!("{name}.part"))).unwrap();
    let s = cached(&cache_dir, 1 << 20);
    let (_keep, sb) = sandbox();
    let got = fetch_all(&[cache_uri(&url)], &sb, &s).unwrap();
    assert!(!got[0].cache_hit, "a symlink is not an entry");
    assert_eq!(std::fs::read(sb.join("f.txt")).unwrap(), b"from the server");
    assert_eq!(std::fs::read(&secret).unwrap(), b"host secret");
    let entry = std::fs::symlink_metadata(cache_dir.join(&name)).unwrap();
    assert!(entry.is_file(), "replaced by a real entry");
    assert_eq!(count(&counts, "/f.txt"), 1);

    // A symlinked lock file refuses the cache, naming it; nothing is
    // created through it.
    let other = format!("{base}/g.txt");
    let lock = cache_dir.join(format!("{}.lock", entry_name(&other, None)));
    let target = scratch.path().join("made-through-link");
    std::os::unix::fs::symlink(&target, &lock).unwrap();
    let (_keep, sb) = sandbox();
    let err = fetch_all(&[cache_uri(&other)], &sb, &s).unwrap_err();
    assert!(matches!(err.cause, Cause::Cache(_)), "{err}");
    assert!(!target.exists());
    assert_eq!(std::fs::read_dir(&sb).unwrap().count(), 0);
}

#[test]
fn a_cache_directory_others_can_write_is_refused() {
    let (base, _counts) = serve_counted(HashMap::from([("/x", Reply::Body(b"x".to_vec()))]));
    let scratch = tempfile::tempdir().unwrap();
    let cache_dir: PathBuf = scratch.path().join("shared");
    std::fs::create_dir(&cache_dir).unwrap();
    std::fs::set_permissions(&cache_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let (_keep, sb) = sandbox();
    let err = fetch_all(
        &[cache_uri(&format!("{base}/x"))],
        &sb,
        &cached(&cache_dir, 1 << 20),
    )
    .unwrap_err();
    assert!(err.to_string().contains("writable by other users"), "{err}");
    assert_eq!(std::fs::read_dir(&sb).unwrap().count(), 0);
}
