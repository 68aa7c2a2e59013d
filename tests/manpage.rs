//! The man page (issue 15 item 6): `ringlet manpage` prints one complete
//! `ringlet.1` generated from the command table, which `mandoc -T lint`
//! passes without a single message (style included), which names every
//! command `--help` lists, and whose exit status table is the CLI's.

use std::fs;
use std::process::Command;

use crate::util::Env;

#[test]
fn the_man_page_is_lint_clean_and_complete() {
    let env = Env::new("manpage");
    let page = env.cmd(&["manpage"]).ok();
    let file = env.root.join("ringlet.1");
    fs::write(&file, &page).unwrap();
    let lint = Command::new("mandoc")
        .args(["-T", "lint", "-W", "style"])
        .arg(&file)
        .output()
        .expect("mandoc (tests/setup.sh installs it)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&lint.stdout),
        String::from_utf8_lossy(&lint.stderr)
    );
    assert!(lint.status.success() && said.is_empty(), "mandoc -T lint:\n{said}");

    for section in
        ["NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "ENVIRONMENT", "FILES", "EXIT STATUS"]
    {
        assert!(page.contains(&format!(".SH {section}\n")), "no {section}");
    }
    assert!(page.contains(".SH \"SEE ALSO\"\n") || page.contains(".SH SEE ALSO\n"));
    // Every command `ringlet --help` and each group's help list has a section.
    let help = env.cmd(&["--help"]).ok();
    let commands = listed(&help);
    assert!(commands.contains(&"profiles".to_string()) && commands.len() > 10, "{help}");
    for group in &commands {
        assert!(page.contains(&format!(".SS \"ringlet {group}\"\n")), "no section for {group}");
        for sub in listed(&env.cmd(&[group, "--help"]).ok()) {
            let heading = format!(".SS \"ringlet {group} {}\"\n", sub.replace('-', r"\-"));
            assert!(page.contains(&heading), "no section for {group} {sub}");
        }
    }
    // Options as the CLI spells them, and the exit status table.
    assert!(page.contains(r"\fB\-p\fR, \fB\-\-provider\fR \fIID\fR"), "profiles create -p");
    assert!(page.contains(r"\fB\-\-color\fR \fIWHEN\fR"));
    let status = &page[page.find(".SH EXIT STATUS").unwrap()..];
    for code in ["0", "1", "2", "3"] {
        assert!(status.contains(&format!(".B {code}\n")), "exit status {code}");
    }
    assert!(!page.contains("__complete") && !page.contains("log\\-file"), "hidden parts shown");
    // Rendering it needs nothing but the page: no config, no daemon.
    assert!(!env.config.exists() && env.daemon_processes().is_empty());
}

/// The command names a help screen's `Commands:` section lists.
fn listed(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .collect()
}
