//! The fuzz targets' committed inputs, replayed through the same entry points the fuzzer calls
//! (`keyward::fuzzing`, `keyward_hardware::fuzzing`), so every test run checks them without
//! cargo-fuzz: the seeds in `fuzz/seeds/<target>/` and every crash the fuzzer once found, kept in
//! `fuzz/regressions/<target>/` after its fix.

use std::path::{Path, PathBuf};

use keyward::fuzzing::{TARGETS, Target};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `target` on every file, naming the file that fails.
fn replay(name: &str, target: Target, files: &[PathBuf]) {
    for file in files {
        let data = std::fs::read(file).unwrap();
        let outcome = std::panic::catch_unwind(|| target(&data));
        assert!(
            outcome.is_ok(),
            "fuzz target {name} fails on {}: reproduce with \
             `cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run {name} {}`",
            file.display(),
            file.display()
        );
    }
}

#[test]
fn every_fuzz_target_passes_its_seed_corpus() {
    for &(name, target) in TARGETS {
        let seeds = files(&fuzz_dir().join("seeds").join(name));
        assert!(
            seeds.len() >= 3,
            "fuzz/seeds/{name} holds {} files; each target keeps a few realistic seeds",
            seeds.len()
        );
        replay(name, target, &seeds);
    }
}

#[test]
fn every_crash_the_fuzzer_found_stays_fixed() {
    let regressions = fuzz_dir().join("regressions");
    for &(name, target) in TARGETS {
        replay(name, target, &files(&regressions.join(name)));
    }
    // A crash filed under a name that is no target would never be replayed.
    for entry in std::fs::read_dir(&regressions).into_iter().flatten() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            TARGETS.iter().any(|(target, _)| *target == name),
            "fuzz/regressions/{name} is not a fuzz target's name"
        );
    }
}

#[test]
fn the_typed_data_seeds_parse_so_the_fuzzer_starts_past_the_parser() {
    for seed in files(&fuzz_dir().join("seeds").join("eip712")) {
        let text = std::fs::read_to_string(&seed).unwrap();
        if let Err(err) = keyward::eip712::parse(&text) {
            panic!("{} does not parse: {err}", seed.display());
        }
    }
}
