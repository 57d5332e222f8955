#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{fs, io::Write as _, os::unix::fs::MetadataExt as _, path::Path};

use super::*;
use serde_json::json;

/// SHA-256("abc"), FIPS 180-2 appendix B.1.
const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

/// A fake procfs under `dir` where process `pid` runs `exe`.
fn fake_proc(dir: &Path, pid: u32, exe: &Path) -> PathBuf {
    let root = dir.join("proc");
    fs::create_dir_all(root.join(pid.to_string())).unwrap();
    std::os::unix::fs::symlink(exe, root.join(pid.to_string()).join("exe")).unwrap();
    root
}

fn hasher(proc_root: PathBuf, settle: Duration) -> (ExecHasher, UnboundedReceiver<Done>) {
    ExecHasher::start(HashConfig {
        proc_root,
        settle,
        ..HashConfig::default()
    })
    .unwrap()
}

/// Runs one exec through the hasher, waiting for a queued job.
fn hash_exec(
    h: &mut ExecHasher,
    rx: &mut UnboundedReceiver<Done>,
    pid: u32,
    path: &str,
    kernel: Option<&KernelIdentity>,
) -> HashInfo {
    match h.begin(pid, path, kernel) {
        Begin::Ready(info) => info,
        Begin::Queued(id) => {
            let (got, info) = h.finish(rx.blocking_recv().unwrap());
            assert_eq!(got, id);
            info
        }
    }
}

fn write(path: &Path, content: &[u8]) {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .unwrap();
    f.write_all(content).unwrap();
}

#[test]
fn hashes_match_the_known_vector() {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("abc");
    write(&exe, b"abc");
    let (mut h, mut rx) = hasher(fake_proc(dir.path(), 42, &exe), Duration::ZERO);
    let info = hash_exec(&mut h, &mut rx, 42, "/nowhere", None);
    assert_eq!(info.status, Status::Hashed);
    assert_eq!(info.source, Some(Source::ProcExe));
    assert_eq!(info.sha256_hex().as_deref(), Some(ABC));
    assert_eq!(info.result.as_ref().unwrap().bytes, 3);
    let mut event = json!({"exec": {"file": {"path": "/x"}}});
    info.write_into(&mut event);
    assert_eq!(event["exec"]["file"]["hash"]["sha256"], ABC);
    assert_eq!(event["exec"]["file"]["hash"]["status"], "hashed");
    assert_eq!(event["exec"]["file"]["hash"]["source"], "proc_exe");
    assert_eq!(event["exec"]["file"]["path"], "/x");
}

#[test]
fn a_second_exec_of_a_settled_file_is_a_cache_hit() {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("abc");
    write(&exe, b"abc");
    let (mut h, mut rx) = hasher(fake_proc(dir.path(), 42, &exe), Duration::ZERO);
    assert_eq!(
        hash_exec(&mut h, &mut rx, 42, "", None).status,
        Status::Hashed
    );
    let again = h.begin(42, "", None);
    let Begin::Ready(info) = again else {
        panic!("expected a cache hit, got {again:?}");
    };
    assert_eq!(info.status, Status::Cached);
    assert_eq!(info.sha256_hex().as_deref(), Some(ABC));
    assert_eq!((h.cached(), h.pending()), (1, 0));
}

#[test]
fn a_file_rewritten_in_place_is_hashed_again() {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("prog");
    write(&exe, b"abc");
    let ino = fs::metadata(&exe).unwrap().ino();
    // The default settle time: a file changed within the last second is never cached, so a
    // rewrite within the same (coarse) timestamp tick cannot leave a stale hash behind.
    let (mut h, mut rx) = hasher(fake_proc(dir.path(), 7, &exe), HashConfig::default().settle);
    assert_eq!(
        hash_exec(&mut h, &mut rx, 7, "", None)
            .sha256_hex()
            .as_deref(),
        Some(ABC)
    );
    assert_eq!(h.cached(), 0, "a file changed just now is not cached");
    write(&exe, b"xyz");
    assert_eq!(fs::metadata(&exe).unwrap().ino(), ino, "rewritten in place");
    let info = hash_exec(&mut h, &mut rx, 7, "", None);
    assert_eq!(info.status, Status::Hashed);
    assert_eq!(
        info.sha256_hex().as_deref(),
        Some("3608bca1e44ea6c4d268eb6db02260269892c0b42b86bbf1e77a6fa16c3c9282")
    );
}

#[test]
fn a_changed_identity_invalidates_the_cache_key() {
    // The cache is keyed by the whole identity: another ctime or size is another entry.
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("abc");
    write(&exe, b"abc");
    let key = FileKey::of(&fs::metadata(&exe).unwrap());
    let mut cache = cache::HashCache::new(8);
    let hashed = Hashed {
        sha256: [1; 32],
        bytes: 3,
    };
    cache.insert(key, hashed);
    assert_eq!(cache.get(&key), Some(hashed));
    for changed in [
        FileKey {
            ctime_nsec: key.ctime_nsec ^ 1,
            ..key
        },
        FileKey {
            size: key.size + 1,
            ..key
        },
        FileKey {
            ino: key.ino + 1,
            ..key
        },
    ] {
        assert_eq!(cache.get(&changed), None);
    }
}

#[test]
fn the_cache_stays_bounded_and_keeps_recent_entries() {
    let mut cache = cache::HashCache::new(4);
    let key = |i: u64| FileKey {
        dev: 1,
        ino: i,
        ctime_sec: 0,
        ctime_nsec: 0,
        mtime_sec: 0,
        mtime_nsec: 0,
        size: 0,
    };
    let v = Hashed {
        sha256: [0; 32],
        bytes: 0,
    };
    for i in 0..100 {
        cache.insert(key(i), v);
        // Entry 0 is used all along: it survives.
        assert!(cache.get(&key(0)).is_some(), "entry 0 evicted at {i}");
        assert!(cache.len() <= 4, "{} entries", cache.len());
    }
    assert!(cache.get(&key(1)).is_none(), "old, unused entries go");
}

#[test]
fn files_over_the_cap_are_not_hashed() {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("big");
    write(&exe, &[0u8; 4096]);
    let (mut h, _rx) = ExecHasher::start(HashConfig {
        proc_root: fake_proc(dir.path(), 9, &exe),
        max_size: 4095,
        ..HashConfig::default()
    })
    .unwrap();
    let Begin::Ready(info) = h.begin(9, "", None) else {
        panic!("a file over the cap must not be queued");
    };
    assert_eq!(
        info.result,
        Err(Unavailable::TooLarge {
            size: 4096,
            cap: 4095
        })
    );
    let mut event = json!({"exec": {"file": {}}});
    info.write_into(&mut event);
    assert_eq!(event["exec"]["file"]["hash"]["status"], "unavailable");
    assert_eq!(
        event["exec"]["file"]["hash"]["reason"],
        "too large: 4096 bytes, cap 4095"
    );
    assert!(event["exec"]["file"]["hash"].get("sha256").is_none());
}

#[test]
fn the_byte_budget_refuses_files_it_cannot_pay_for() {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("f");
    write(&exe, &[1u8; 1000]);
    let (mut h, mut rx) = ExecHasher::start(HashConfig {
        proc_root: fake_proc(dir.path(), 9, &exe),
        bytes_per_s: 1,
        burst_bytes: 1500,
        settle: Duration::from_secs(3600),
        ..HashConfig::default()
    })
    .unwrap();
    assert_eq!(
        hash_exec(&mut h, &mut rx, 9, "", None).status,
        Status::Hashed
    );
    let info = hash_exec(&mut h, &mut rx, 9, "", None);
    assert_eq!(info.result, Err(Unavailable::Budget));
}

#[test]
fn a_gone_process_falls_back_to_its_path_only_when_the_kernel_identity_matches() {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("abc");
    write(&exe, b"abc");
    let path = exe.to_str().unwrap();
    let root = dir.path().join("empty-proc");
    fs::create_dir_all(&root).unwrap();
    let (mut h, mut rx) = hasher(root, Duration::ZERO);
    // No identity from the kernel: the path proves nothing.
    let info = hash_exec(&mut h, &mut rx, 5, path, None);
    assert!(matches!(info.result, Err(Unavailable::Gone(_))), "{info:?}");
    let meta = fs::metadata(&exe).unwrap();
    let same = KernelIdentity {
        dev: meta.dev(),
        ino: meta.ino(),
        ctime_sec: meta.ctime(),
        ctime_nsec: u32::try_from(meta.ctime_nsec()).unwrap(),
    };
    let info = hash_exec(&mut h, &mut rx, 5, path, Some(&same));
    assert_eq!(info.source, Some(Source::Path));
    assert_eq!(info.sha256_hex().as_deref(), Some(ABC));
    // The path now names another version (or file) than the one executed.
    let other = KernelIdentity {
        ctime_nsec: same.ctime_nsec ^ 1,
        ..same
    };
    let info = hash_exec(&mut h, &mut rx, 5, path, Some(&other));
    assert_eq!(
        info.result,
        Err(Unavailable::Gone(
            "exited, and its exec path now names another file"
        ))
    );
    let info = hash_exec(&mut h, &mut rx, 5, "abc", Some(&same));
    assert!(matches!(info.result, Err(Unavailable::Gone(_))), "relative");
}

#[test]
fn a_file_that_changed_since_it_was_opened_gives_no_hash() {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("abc");
    write(&exe, b"abc");
    let mut file = fs::File::open(&exe).unwrap();
    let key = FileKey::of(&file.metadata().unwrap());
    let stale = FileKey {
        ctime_sec: key.ctime_sec - 1,
        ..key
    };
    assert_eq!(
        digest::sha256_file(&mut file, &stale, 1 << 20),
        Err(Unavailable::Changed)
    );
    let mut file = fs::File::open(&exe).unwrap();
    assert_eq!(
        hex(&digest::sha256_file(&mut file, &key, 1 << 20)
            .unwrap()
            .sha256),
        ABC
    );
}
