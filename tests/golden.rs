//! Golden tests: every built-in script against a representative provider of
//! each type it supports renders exactly the checked-in files, env and
//! arguments in `tests/golden/<agent>-<provider>.json` (a `--dry-run
//! --json`, key redacted, the temp home written as `$HOME`). A change to a
//! script shows up here as a diff to review; `UPDATE_GOLDEN=1 cargo test
//! golden` rewrites the files after a deliberate change.

use std::fs;
use std::path::Path;

use crate::util::Env;

/// (agent, provider): each provider type each agent supports.
const CASES: &[(&str, &str)] = &[
    ("claude", "anthropic"),
    ("claude", "minimax"),
    ("claude", "self"),
    ("codex", "openai"),
    ("codex", "zai-openai"),
    ("codex", "self"),
    ("opencode", "anthropic"),
    ("opencode", "zai"),
    ("opencode", "openai"),
    ("opencode", "openrouter"),
    ("opencode", "self"),
    ("grok", "openai"),
    ("grok", "minimax-openai"),
    ("droid", "anthropic"),
    ("droid", "minimax"),
    ("droid", "openai"),
    ("droid", "openrouter"),
];

fn render(env: &Env, agent: &str, provider: &str) -> serde_json::Value {
    let alias = format!("{agent}-{provider}");
    let out = env
        .cmd(&["profiles", "create", agent, &alias, "-p", provider, "--dry-run", "--json"])
        .output();
    let text =
        String::from_utf8_lossy(&out.stdout).replace(&env.home.display().to_string(), "$HOME");
    let mut value: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!("{alias}: {e}\n{text}\n{}", String::from_utf8_lossy(&out.stderr))
    });
    // Only what the script decides; the profile's timestamps vary.
    if let Some(obj) = value.as_object_mut() {
        obj.remove("profile");
        obj.remove("notices");
    }
    value
}

#[test]
fn every_builtin_script_renders_its_golden_output() {
    let env = Env::new("golden");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut failures = Vec::new();
    for (agent, provider) in CASES {
        let got = render(&env, agent, provider);
        let path = dir.join(format!("{agent}-{provider}.json"));
        let pretty = serde_json::to_string_pretty(&got).unwrap() + "\n";
        if update {
            fs::write(&path, &pretty).unwrap();
            continue;
        }
        match fs::read_to_string(&path) {
            Ok(want) if want == pretty => {}
            Ok(want) => {
                failures.push(format!("{}:\n--- want\n{want}\n--- got\n{pretty}", path.display()))
            }
            Err(e) => failures.push(format!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display())),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
