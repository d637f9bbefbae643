//! The scripts shipped with the CLI, in the ways that can run without measuring anything.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root (two levels above this crate).
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace exists")
}

/// What `bench-runtime.sh --print-binary` prints when started in `cwd` with
/// `CARGO_TARGET_DIR` set to `target_dir` (or unset).
fn bench_binary(cwd: &Path, target_dir: Option<&str>) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/bench-runtime.sh");
    let mut command = Command::new("bash");
    command
        .arg(&script)
        .arg("--print-binary")
        .current_dir(cwd)
        .env("CARGO", env!("CARGO"))
        .env_remove("CARGO_BUILD_TARGET_DIR");
    match target_dir {
        Some(dir) => command.env("CARGO_TARGET_DIR", dir),
        None => command.env_remove("CARGO_TARGET_DIR"),
    };
    let o = command.output().expect("bash runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim_end().to_owned()
}

#[test]
fn bench_runtime_runs_the_binary_under_cargo_target_dir_from_any_directory() {
    let cwd = std::env::temp_dir().join(format!("ksalloc-scripts-{}", std::process::id()));
    std::fs::create_dir_all(&cwd).expect("temp dir");
    let cwd = cwd.canonicalize().expect("temp dir");
    // Absolute, and relative to the directory the script was started in (as for cargo).
    let absolute = cwd.join("abs-target");
    assert_eq!(
        bench_binary(&cwd, Some(&absolute.to_string_lossy())),
        absolute.join("release/ksalloc").to_string_lossy()
    );
    assert_eq!(
        bench_binary(&cwd, Some("rel/target")),
        cwd.join("rel/target/release/ksalloc").to_string_lossy()
    );
    // Unset: the workspace's target directory, wherever the script was started.
    for dir in [cwd.as_path(), &workspace().join("crates")] {
        assert_eq!(
            bench_binary(dir, None),
            workspace().join("target/release/ksalloc").to_string_lossy()
        );
    }
    std::fs::remove_dir_all(&cwd).expect("temp dir removed");
}
