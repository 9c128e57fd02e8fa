//! `ews-presence run` start-up: the shipped example configuration loads, and a bad
//! configuration stops start-up with exit code 2 and one message naming the key or
//! line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use ews_presence::config::Config;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ews-presence-run-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn example() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/ews-presence.example.toml"),
    )
    .unwrap()
}

#[test]
fn the_example_configuration_loads() {
    let dir = scratch("example");
    std::fs::write(dir.join("ews-presence.toml"), example()).unwrap();
    std::fs::write(dir.join("exch1.password"), "secret\n").unwrap();
    std::fs::write(
        dir.join("mailboxes.txt"),
        "# team\nalice@example.test\nbob@example.test exch1\n",
    )
    .unwrap();
    let config = Config::load(&dir.join("ews-presence.toml"), &HashMap::new())
        .expect("the example is valid");
    assert_eq!(config.mailboxes.len(), 2);
    assert_eq!(
        config.gateways[0].max_connections, None,
        "no cap with impersonation"
    );
    assert!(matches!(
        &config.gateways[0].auth,
        ews::transport::Auth::Ntlm { username, .. } if username == "CONTOSO\\svc-presence"
    ));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_bad_configuration_exits_2_naming_the_key() {
    let dir = scratch("bad");
    std::fs::write(dir.join("exch1.password"), "secret\n").unwrap();
    std::fs::write(dir.join("mailboxes.txt"), "alice@example.test\n").unwrap();
    let cases = [
        (
            example().replace("debounce_ms", "debounce"),
            "mailboxes.txt",
            "unknown field `debounce`",
        ),
        (
            example().replace("exch1.password", "nowhere.password"),
            "",
            "gateway[0].password_file",
        ),
        (
            example().replace("https://exch1", "exch1"),
            "",
            "gateway[0].url",
        ),
        (
            example(),
            "alice@example.test\nALICE@example.test\n",
            "mailboxes.txt:2",
        ),
        (
            example(),
            "alice@example.test exch9\n",
            "mailboxes.txt:1: unknown gateway",
        ),
    ];
    for (toml, mailboxes, expected) in cases {
        std::fs::write(dir.join("ews-presence.toml"), &toml).unwrap();
        if !mailboxes.is_empty() && mailboxes != "mailboxes.txt" {
            std::fs::write(dir.join("mailboxes.txt"), mailboxes).unwrap();
        }
        let out = Command::new(env!("CARGO_BIN_EXE_ews-presence"))
            .args(["run", "--config"])
            .arg(dir.join("ews-presence.toml"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{expected}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "one message: {stderr}");
        assert!(
            stderr.contains(expected),
            "expected {expected:?} in {stderr}"
        );
        std::fs::write(dir.join("mailboxes.txt"), "alice@example.test\n").unwrap();
    }
    let _ = std::fs::remove_dir_all(dir);
}
