//! The shell completions and the man page in `deploy/` are what the binary generates
//! from its own command-line definition (`ews-presence generate`), so they cannot drift
//! from it; and `--log-format` is accepted by every command.

use std::path::Path;
use std::process::Command;

fn generated(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_ews-presence"))
        .arg("generate")
        .args(args)
        .output()
        .expect("runs");
    assert!(output.status.success(), "{args:?}: {output:?}");
    String::from_utf8(output.stdout).expect("text")
}

fn committed(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}; write it with `ews-presence generate`"))
}

#[test]
fn completions_and_the_man_page_match_the_command_line() {
    for (shell, path) in [
        ("bash", "deploy/completions/ews-presence.bash"),
        ("zsh", "deploy/completions/_ews-presence"),
        ("fish", "deploy/completions/ews-presence.fish"),
    ] {
        let made = generated(&["completions", shell]);
        assert!(made.contains("ews-presence"), "{shell}");
        assert_eq!(
            made,
            committed(path),
            "{path} is stale: ews-presence generate completions {shell} > {path}"
        );
    }
    let man = generated(&["man"]);
    assert!(
        man.starts_with(".ie \\n(.g .ds Aq") || man.contains(".TH ews-presence"),
        "roff"
    );
    assert!(
        man.contains("check") && man.contains("\\-\\-log\\-format"),
        "every command and the global flag"
    );
    assert_eq!(
        man,
        committed("deploy/man/ews-presence.1"),
        "deploy/man/ews-presence.1 is stale: ews-presence generate man > deploy/man/ews-presence.1"
    );
}

#[test]
fn every_command_takes_log_format() {
    for command in ["run", "check", "discover", "demo", "simulate", "decode"] {
        let output = Command::new(env!("CARGO_BIN_EXE_ews-presence"))
            .args([command, "--log-format", "json", "--help"])
            .output()
            .expect("runs");
        assert!(
            output.status.success(),
            "{command} --log-format json: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
