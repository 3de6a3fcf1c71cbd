//! The corpus replay: every committed file of `fuzz/corpus/TARGET/` through its target's
//! function, so that `cargo test` checks the seeds and past findings without a fuzzer.

use std::path::PathBuf;

/// A target's name and the function it fuzzes.
type Target = (&'static str, fn(&[u8]));

/// Each target with its function.
const TARGETS: [Target; 5] = [
    ("pi", super::pi),
    ("ids", super::ids),
    ("bodies", super::bodies),
    ("assertion", super::assertion),
    ("jwe_decrypt", super::jwe),
];

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a corpus entry").path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).expect("a corpus file");
            (path, bytes)
        })
        .collect()
}

#[test]
fn every_corpus_file_replays_through_its_target() {
    for (target, run) in TARGETS {
        let files = corpus(target);
        assert!(files.len() >= 3, "{target}: only {} seeds", files.len());
        for (path, bytes) in files {
            let outcome = std::panic::catch_unwind(|| run(&bytes));
            assert!(outcome.is_ok(), "{target}: {} fails", path.display());
        }
    }
}
