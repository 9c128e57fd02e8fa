//! The arrows of `docs/architecture.md` that the compiler cannot see. Crate boundaries
//! already keep the `ews` wire crate and `common` free of the daemon (they do not
//! depend on it); these checks cover the rest: the presence core and the API never name
//! the wire, and nothing of the daemon's library names the simulator (only the
//! binary's `demo` and `simulate` commands, tests and benchmarks do), and the engine's
//! state machines read no clock and do no I/O (their drivers do).

mod support;

use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    support::files_ending(dir, "rs")
}

/// Lines of code (comments left out) in `files` that name any of `crates` as a path
/// root: `ews::…`, `use ews;`, `ews_sim::…`.
fn naming(files: &[PathBuf], crates: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).expect("readable source");
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for name in crates {
                let named = code.match_indices(name).any(|(at, _)| {
                    let before = code[..at].chars().next_back();
                    let after = &code[at + name.len()..];
                    // A path root: not the tail of another name or path.
                    let starts =
                        before.is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == ':'));
                    starts && (after.starts_with("::") || after.starts_with(';'))
                });
                if named {
                    found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
                }
            }
        }
    }
    found
}

#[test]
fn the_presence_core_and_the_api_never_name_the_wire() {
    let mut files = rust_files(&root().join("src/presence"));
    files.extend(rust_files(&root().join("src/api")));
    assert!(files.len() > 15, "{} files read", files.len());
    let found = naming(&files, &["ews", "ews_sim", "sip", "graph"]);
    assert!(
        found.is_empty(),
        "the wire named outside the sources:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_library_never_names_the_simulator() {
    let files: Vec<_> = rust_files(&root().join("src"))
        .into_iter()
        .filter(|f| !f.starts_with(root().join("src/cli")) && !f.ends_with("src/main.rs"))
        .collect();
    assert!(files.len() > 40, "{} files read", files.len());
    let found = naming(&files, &["ews_sim"]);
    assert!(
        found.is_empty(),
        "the simulator named by the library:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_scan_finds_what_it_looks_for() {
    // The binary's demo command does use the simulator: the scan must see it there.
    let found = naming(&[root().join("src/cli/demo.rs")], &["ews_sim"]);
    assert!(
        !found.is_empty(),
        "the scan missed ews_sim in src/cli/demo.rs"
    );
    // A comment or a longer name is not a use.
    let dir = std::env::temp_dir().join(format!("ews-presence-arch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temporary directory");
    let file = dir.join("sample.rs");
    std::fs::write(&file, "// ews::x\nlet a = my_ews::x;\nuse ews::y;\n").expect("write");
    let found = naming(&[file], &["ews"]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].ends_with("use ews::y;"), "{found:?}");
}

/// The workspace crates below the daemon depend on nothing above them.
#[test]
fn the_wire_and_common_crates_depend_on_nothing_of_the_daemon() {
    for (manifest, forbidden) in [
        (
            "crates/common/Cargo.toml",
            &["ews", "ews-sim", "ews-presence"][..],
        ),
        ("crates/ews/Cargo.toml", &["ews-sim", "ews-presence"][..]),
        ("crates/ews-sim/Cargo.toml", &["ews-presence"][..]),
        (
            "crates/sip/Cargo.toml",
            &["ews", "ews-sim", "ews-presence"][..],
        ),
        (
            "crates/graph/Cargo.toml",
            &["ews", "ews-sim", "ews-presence", "sip"][..],
        ),
    ] {
        let text = std::fs::read_to_string(root().join(manifest)).expect("manifest");
        let value: toml::Table = toml::from_str(&text).expect("manifest parses");
        let deps = value
            .get("dependencies")
            .and_then(toml::Value::as_table)
            .expect("a [dependencies] table");
        for name in forbidden {
            assert!(!deps.contains_key(*name), "{manifest} depends on {name}");
        }
    }
}

/// Lines of code (comments left out) of `text`, read from `file`, that contain any of
/// `needles`; the test module at the end of a file is left out.
fn containing(file: &Path, needles: &[&str]) -> Vec<String> {
    let text = std::fs::read_to_string(file).expect("readable source");
    let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
    code.lines()
        .enumerate()
        .filter(|(_, line)| {
            let code = line.split("//").next().unwrap_or("");
            needles.iter().any(|needle| code.contains(needle))
        })
        .map(|(n, line)| format!("{}:{}: {}", file.display(), n + 1, line.trim()))
        .collect()
}

#[test]
fn the_state_machines_read_no_clock_and_do_no_io() {
    // The group loop and the refresh side, with what their state is made of: time
    // comes in as an argument, effects go out as outputs for their drivers.
    let files = [
        "src/engine/group/state.rs",
        "src/engine/group/subscriptions.rs",
        "src/engine/refresh/state.rs",
        "src/engine/refresh/dirty.rs",
        "src/engine/refresh/due.rs",
        "src/engine/refresh/quiet.rs",
        "src/engine/refresh/pacer.rs",
        "src/engine/refresh/tips.rs",
        "src/publish/state.rs",
        "crates/sip/src/transaction.rs",
    ];
    let forbidden = [
        "Instant::now(",
        "Timestamp::now(",
        "SystemTime",
        ".await",
        "spawn(",
        "tracing::",
        "metrics::",
        "std::fs",
        "tokio::net",
        "Mutex",
    ];
    let found: Vec<String> = files
        .iter()
        .flat_map(|f| containing(&root().join(f), &forbidden))
        .collect();
    assert!(
        found.is_empty(),
        "a state machine reads the clock or does I/O:\n{}",
        found.join("\n")
    );
    // The check sees what it looks for: the drivers are where effects happen.
    for driver in [
        "src/engine/refresh/driver.rs",
        "src/engine/group/driver.rs",
        "src/publish/driver.rs",
        "crates/sip/src/client.rs",
    ] {
        assert!(
            !containing(&root().join(driver), &forbidden).is_empty(),
            "{driver}"
        );
    }
}
