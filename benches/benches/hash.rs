//! The executable hasher: a cache hit (the cost every exec of a known file pays in the daemon,
//! goal <= 50 ns), the whole look-up of a cached exec (open `/proc/<pid>/exe` + fstat + cache),
//! and SHA-256 throughput of a file in the page cache (SHA-NI where the CPU has it).
//! Run: `cargo bench -p enforcer-benches --bench hash -- --warm-up-time 1 --measurement-time 3`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{hint::black_box, io::Write as _, time::Duration};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use enforcer::hash::{
    Begin, ExecHasher, FileKey, HashConfig, Hashed, cache::HashCache, digest::sha256_file,
};

fn key(i: u64) -> FileKey {
    FileKey {
        dev: 0x801,
        ino: 1_000_000 + i,
        ctime_sec: 1_700_000_000 + i as i64,
        ctime_nsec: (i * 7919 % 1_000_000_000) as u32,
        mtime_sec: 1_700_000_000,
        mtime_nsec: 0,
        size: 40_000 + i,
    }
}

fn cache_hit(c: &mut Criterion) {
    let mut cache = HashCache::new(16_384);
    let v = Hashed {
        sha256: [7; 32],
        bytes: 1,
    };
    for i in 0..8_000 {
        cache.insert(key(i), v);
    }
    let probe = key(4_321);
    c.bench_function("hash_cache_hit_8k_entries", |b| {
        b.iter(|| black_box(cache.get(black_box(&probe))))
    });
    let miss = key(99_999);
    c.bench_function("hash_cache_miss_8k_entries", |b| {
        b.iter(|| black_box(cache.get(black_box(&miss))))
    });
}

fn cached_exec(c: &mut Criterion) {
    // This process's own executable, through the real /proc: open + fstat + cache hit.
    let (mut hasher, mut results) = ExecHasher::start(HashConfig {
        settle: Duration::ZERO,
        ..HashConfig::default()
    })
    .unwrap();
    let pid = std::process::id();
    if let Begin::Queued(_) = hasher.begin(pid, "", None) {
        hasher.finish(results.blocking_recv().unwrap());
    }
    c.bench_function("hash_begin_cached_proc_exe", |b| {
        b.iter(|| match hasher.begin(black_box(pid), "", None) {
            Begin::Ready(info) => black_box(info),
            Begin::Queued(_) => panic!("not cached"),
        })
    });
}

fn throughput(c: &mut Criterion) {
    const SIZE: usize = 16 << 20;
    let mut file = tempfile::NamedTempFile::new().unwrap();
    let block: Vec<u8> = (0..1 << 20).map(|i: u32| (i * 31 % 251) as u8).collect();
    for _ in 0..SIZE >> 20 {
        file.write_all(&block).unwrap();
    }
    file.flush().unwrap();
    let path = file.path().to_owned();
    let mut group = c.benchmark_group("sha256_file");
    group.throughput(Throughput::Bytes(SIZE as u64));
    group.sample_size(20);
    group.bench_function("16MiB_page_cache", |b| {
        b.iter(|| {
            let mut f = std::fs::File::open(&path).unwrap();
            let k = FileKey::of(&f.metadata().unwrap());
            black_box(sha256_file(&mut f, &k, u64::MAX).unwrap())
        })
    });
    group.finish();
}

criterion_group!(benches, cache_hit, cached_exec, throughput);
criterion_main!(benches);
