//! Shell completion: `ringlet completions bash|zsh|fish` prints a script
//! generated from the command table ([`super::commands::ROOT`]), and the
//! hidden `ringlet __complete <kind>` prints the live names the scripts
//! cannot know in advance (profiles, agents, providers, terminal sessions).
//!
//! The scripts carry the whole tree as data (commands, options, which
//! options take a value, their choices, what each positional is), so
//! completing a command or an option starts no process at all. Each script
//! has the same small walker: it reads the words before the cursor, follows
//! subcommands, skips options and their values, counts positionals, and
//! then offers subcommands, options, an option's values or a positional's.
//!
//! `__complete` reads profile names from the profile files, always (the
//! fastest source: see [`names`]); for the other kinds it asks the daemon
//! only when one already runs (it dials the socket itself, with a short
//! timeout, and never starts one: a TAB must not leave a daemon behind),
//! otherwise it reads what it can from disk (the manifests). It prints `name<TAB>description` lines,
//! nothing on stderr, and always exits 0: a completion has no one to tell.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::time::Duration;

use anyhow::Result;
use serde_json::Value;

use super::commands::{Arg, Cmd, Kind};
use super::{Ctx, Invocation, Out};
use crate::paths::Paths;
use crate::protocol::{PROTOCOL_VERSION, Request, RequestFrame};

/// An option every command accepts (parsed in `parse.rs`, not in the table).
pub struct GlobalOpt {
    pub long: &'static str,
    pub short: Option<char>,
    /// The value's metavar, for options that take one.
    pub metavar: Option<&'static str>,
    pub choices: &'static [&'static str],
    pub help: &'static str,
    /// Only meaningful on `ringlet` itself (`--version`).
    pub root_only: bool,
}

/// The global options, for the completion scripts and the man page.
pub const GLOBALS: &[GlobalOpt] = &[
    GlobalOpt {
        long: "json",
        short: None,
        metavar: None,
        choices: &[],
        help: "Print machine-readable JSON",
        root_only: false,
    },
    GlobalOpt {
        long: "color",
        short: None,
        metavar: Some("WHEN"),
        choices: &["auto", "always", "never"],
        help: "Colour: auto (on a terminal), always or never",
        root_only: false,
    },
    GlobalOpt {
        long: "log-level",
        short: None,
        metavar: Some("LEVEL"),
        choices: &["error", "warn", "info", "debug"],
        help: "error, warn, info or debug",
        root_only: false,
    },
    GlobalOpt {
        long: "help",
        short: Some('h'),
        metavar: None,
        choices: &[],
        help: "Print help",
        root_only: false,
    },
    GlobalOpt {
        long: "version",
        short: Some('V'),
        metavar: None,
        choices: &[],
        help: "Print version",
        root_only: true,
    },
];

/// The kinds of live names `__complete` prints (its choices in the table).
#[cfg(test)]
const LIVE: &[&str] = &["profiles", "agents", "providers", "sessions"];

/// What completes an option's value or a positional argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Values {
    /// Nothing to offer (free text: a model name, a number).
    Free,
    Choices(&'static [&'static str]),
    /// Names from `ringlet __complete <kind>` (one of [`LIVE`]).
    Live(&'static str),
    /// File names, completed by the shell itself.
    Files,
}

/// What completes `arg` of the command at `path`. Decided here, from the
/// argument's name and metavar, rather than in the table: the table stays
/// about the command line, and the unit test below makes sure every
/// positional of the table is decided on purpose.
pub fn values(path: &[&str], arg: &Arg) -> Values {
    if !arg.choices.is_empty() {
        return Values::Choices(arg.choices);
    }
    match arg.kind {
        Kind::Flag => Values::Free,
        Kind::Value(metavar) => match arg.name {
            "profile" => Values::Live("profiles"),
            "agent" => Values::Live("agents"),
            "provider" => Values::Live("providers"),
            _ if metavar.contains("DIR")
                || metavar.contains("FILE")
                || metavar.contains("PATH") =>
            {
                Values::Files
            }
            _ => Values::Free,
        },
        Kind::Positional => match (arg.name, path.first().copied()) {
            ("alias", _) => Values::Live("profiles"),
            ("agent", _) | ("id", Some("agents")) => Values::Live("agents"),
            ("provider", _) | ("id", Some("providers")) => Values::Live("providers"),
            ("id", Some("terminal")) => Values::Live("sessions"),
            ("file" | "dir", _) => Values::Files,
            _ => Values::Free,
        },
    }
}

/// One command of the tree, as the scripts see it.
struct Node {
    /// `profiles create`; empty for `ringlet` itself.
    key: String,
    path: Vec<&'static str>,
    cmd: &'static Cmd,
}

/// Every visible command, `ringlet` first, depth first.
fn nodes() -> Vec<Node> {
    super::parse::command_paths(false)
        .into_iter()
        .map(|(path, cmd)| Node { key: path.join(" "), path, cmd })
        .collect()
}

/// One option as the scripts see it: `--long`, its short form, and values.
struct Opt {
    long: String,
    short: Option<String>,
    help: &'static str,
    takes_value: bool,
    values: Values,
}

/// The options of `node`: its own visible ones, then the global ones.
fn options(node: &Node) -> Vec<Opt> {
    let mut out: Vec<Opt> = node
        .cmd
        .args
        .iter()
        .filter(|a| a.kind != Kind::Positional && !a.hidden)
        .map(|a| Opt {
            long: format!("--{}", a.name),
            short: a.short.map(|c| format!("-{c}")),
            help: a.help,
            takes_value: matches!(a.kind, Kind::Value(_)),
            values: values(&node.path, a),
        })
        .collect();
    for g in GLOBALS.iter().filter(|g| !g.root_only || node.path.is_empty()) {
        out.push(Opt {
            long: format!("--{}", g.long),
            short: g.short.map(|c| format!("-{c}")),
            help: g.help,
            takes_value: g.metavar.is_some(),
            values: if g.choices.is_empty() { Values::Free } else { Values::Choices(g.choices) },
        });
    }
    out
}

fn positionals(node: &Node) -> Vec<Values> {
    node.cmd
        .args
        .iter()
        .filter(|a| a.kind == Kind::Positional)
        .map(|a| values(&node.path, a))
        .collect()
}

fn visible_subs(cmd: &'static Cmd) -> impl Iterator<Item = &'static Cmd> {
    cmd.subs.iter().filter(|s| !s.hidden)
}

/// How the scripts spell [`Values`]: `choices:a b`, `live:profiles`,
/// `files`, or empty.
fn spec(values: Values) -> String {
    match values {
        Values::Free => String::new(),
        Values::Choices(c) => format!("choices:{}", c.join(" ")),
        Values::Live(kind) => format!("live:{kind}"),
        Values::Files => "files".into(),
    }
}

/// `text` in single quotes for bash and zsh.
fn sh_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// `text` in single quotes for fish (which escapes `\` and `'` inside them).
fn fish_quote(text: &str) -> String {
    format!("'{}'", text.replace('\\', r"\\").replace('\'', r"\'"))
}

/// The script for `shell`, or `None` for a shell we do not know.
pub fn script(shell: &str) -> Option<String> {
    match shell {
        "bash" => Some(bash()),
        "zsh" => Some(zsh()),
        "fish" => Some(fish()),
        _ => None,
    }
}

/// `case` arms that set `subs`, `opts`, `vopts`, `pos` and `trail` for each
/// command path (bash and zsh share the shape; `describe` adds zsh's
/// descriptions to names).
fn spec_arms(out: &mut String, describe: bool) {
    let named = |name: &str, help: &str| {
        if describe {
            sh_quote(&format!("{}:{help}", name.replace(':', r"\:")))
        } else {
            sh_quote(name)
        }
    };
    for node in nodes() {
        let subs: Vec<String> = visible_subs(node.cmd).map(|s| named(s.name, s.about)).collect();
        let opts = options(&node);
        let mut words = Vec::new();
        let mut takes = Vec::new();
        for o in &opts {
            words.push(named(&o.long, o.help));
            if let Some(s) = &o.short {
                words.push(named(s, o.help));
            }
            if o.takes_value {
                takes.push(sh_quote(&o.long));
                if let Some(s) = &o.short {
                    takes.push(sh_quote(s));
                }
            }
        }
        let pos: Vec<String> = positionals(&node).into_iter().map(|v| sh_quote(&spec(v))).collect();
        let _ = writeln!(
            out,
            "    {})\n      subs=({})\n      opts=({})\n      vopts=({})\n      pos=({})\n      trail={} ;;",
            sh_quote(&node.key),
            subs.join(" "),
            words.join(" "),
            takes.join(" "),
            pos.join(" "),
            u8::from(node.cmd.trailing.is_some()),
        );
    }
}

/// `(<path>|<option>, spec)` for every option value that completes.
fn value_specs() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for node in nodes() {
        for o in options(&node).iter().filter(|o| o.takes_value) {
            let s = spec(o.values);
            if s.is_empty() {
                continue;
            }
            out.push((format!("{}|{}", node.key, o.long), s.clone()));
            if let Some(short) = &o.short {
                out.push((format!("{}|{short}", node.key), s));
            }
        }
    }
    out
}

/// [`value_specs`] as `case` arms for bash and zsh.
fn value_arms() -> String {
    let mut out = String::new();
    for (key, s) in value_specs() {
        let _ = writeln!(out, "    {}) val={} ;;", sh_quote(&key), sh_quote(&s));
    }
    out
}

fn bash() -> String {
    BASH.replace("@TABLE@", &sh_table(false))
}

fn zsh() -> String {
    // zsh's `case` takes `pattern)` as well as `(pattern)`, so both shells
    // read the same table functions.
    ZSH.replace("@TABLE@", &sh_table(true))
}

/// The command table as the two shell functions bash and zsh share
/// ([`SH_TABLE`]); `describe` adds zsh's descriptions to names.
fn sh_table(describe: bool) -> String {
    let mut arms = String::new();
    spec_arms(&mut arms, describe);
    SH_TABLE
        .trim_end()
        .replace("@SPEC@", arms.trim_end())
        .replace("@VALUES@", value_arms().trim_end())
}

/// `_ringlet_spec` and `_ringlet_value`, the same in bash and zsh.
const SH_TABLE: &str = r#"# Sets subs and opts (in zsh as name:description), vopts (options that take
# a value), pos and trail for the command path $1.
_ringlet_spec() {
  subs=() opts=() vopts=() pos=() trail=0
  case "$1" in
@SPEC@
  esac
}

# Sets val to what completes option $2 of command path $1.
_ringlet_value() {
  val=
  case "$1|$2" in
@VALUES@
  esac
}
"#;

fn fish() -> String {
    let mut arms = String::new();
    for node in nodes() {
        let _ = writeln!(arms, "        case {}", fish_quote(&node.key));
        let subs: Vec<String> = visible_subs(node.cmd)
            .map(|s| format!("{}\\t{}", s.name, fish_quote(s.about)))
            .collect();
        let mut words = Vec::new();
        let mut takes = Vec::new();
        for o in options(&node) {
            words.push(format!("{}\\t{}", o.long, fish_quote(o.help)));
            if let Some(s) = &o.short {
                words.push(format!("{s}\\t{}", fish_quote(o.help)));
            }
            if o.takes_value {
                takes.push(o.long.clone());
                takes.extend(o.short.clone());
            }
        }
        let pos: Vec<String> =
            positionals(&node).into_iter().map(|v| fish_quote(&spec(v))).collect();
        let list = |items: &[String]| {
            if items.is_empty() { String::new() } else { format!(" {}", items.join(" ")) }
        };
        let _ = writeln!(arms, "            set subs{}", list(&subs));
        let _ = writeln!(arms, "            set opts{}", list(&words));
        let _ = writeln!(arms, "            set vopts{}", list(&takes));
        let _ = writeln!(arms, "            set pos{}", list(&pos));
        let _ = writeln!(arms, "            set trail {}", u8::from(node.cmd.trailing.is_some()));
    }
    let mut vals = String::new();
    for (key, s) in value_specs() {
        let _ = writeln!(
            vals,
            "        case {}\n            set val {}",
            fish_quote(&key),
            fish_quote(&s)
        );
    }
    FISH.replace("@SPEC@", arms.trim_end()).replace("@VALUES@", vals.trim_end())
}

const BASH: &str = r#"# bash completion for ringlet, generated by `ringlet completions bash`
# from ringlet's own command table. Install: put it in
# ~/.local/share/bash-completion/completions/ringlet (or source it).

@TABLE@

# Adds the candidates of spec $1 (choices:..., live:..., files) matching $2.
_ringlet_add() {
  local name rest
  case "$1" in
    choices:*)
      for name in ${1#choices:}; do
        [[ $name == "$2"* ]] && COMPREPLY+=("$name")
      done ;;
    live:*)
      while IFS=$'\t' read -r name rest; do
        [[ -n $name && $name == "$2"* ]] && COMPREPLY+=("$name")
      done < <("$_ringlet_bin" __complete "${1#live:}" 2>/dev/null) ;;
    files)
      compopt -o filenames 2>/dev/null
      while IFS= read -r name; do
        COMPREPLY+=("$name")
      done < <(compgen -f -- "$2") ;;
  esac
}

_ringlet() {
  COMPREPLY=()
  local cur=${COMP_WORDS[COMP_CWORD]} prev=
  ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD-1]}
  local _ringlet_bin=${COMP_WORDS[0]}
  _ringlet_bin=${_ringlet_bin/#\~/$HOME}
  local cmdpath= npos=0 dd=0 skip=0 i w val w2
  local -a subs opts vopts pos
  local trail
  _ringlet_spec ""
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=${COMP_WORDS[i]}
    if ((skip)); then
      # `--opt=value` arrives as three words: `--opt`, `=`, `value`.
      [[ $w == = ]] || skip=0
      continue
    fi
    ((dd)) && continue
    case $w in
      --) dd=1 ;;
      -*=*) ;;
      -*)
        for w2 in "${vopts[@]}"; do
          [[ $w == "$w2" ]] && skip=1
        done ;;
      *)
        if ((npos == 0)); then
          for w2 in "${subs[@]}"; do
            if [[ $w == "$w2" ]]; then
              cmdpath=${cmdpath:+$cmdpath }$w
              _ringlet_spec "$cmdpath"
              continue 2
            fi
          done
        fi
        ((npos++)) ;;
    esac
  done

  # The value of an option: `--opt <TAB>`, `--opt=<TAB>`, `--opt=v<TAB>`.
  local opt=
  if [[ $cur == = ]]; then
    opt=$prev cur=
  elif [[ $prev == = ]] && ((COMP_CWORD > 1)); then
    opt=${COMP_WORDS[COMP_CWORD-2]}
  elif ((!dd)); then
    for w2 in "${vopts[@]}"; do
      [[ $prev == "$w2" ]] && opt=$prev
    done
  fi
  if [[ -n $opt ]]; then
    _ringlet_value "$cmdpath" "$opt"
    _ringlet_add "$val" "$cur"
    return 0
  fi
  if ((dd)); then
    _ringlet_add files "$cur"
    return 0
  fi
  if [[ $cur == -* ]]; then
    for w2 in "${opts[@]}"; do
      [[ $w2 == "$cur"* ]] && COMPREPLY+=("$w2")
    done
    return 0
  fi
  if ((npos == 0 && ${#subs[@]} > 0)); then
    for w2 in "${subs[@]}"; do
      [[ $w2 == "$cur"* ]] && COMPREPLY+=("$w2")
    done
  fi
  if ((npos < ${#pos[@]})); then
    _ringlet_add "${pos[npos]}" "$cur"
  fi
  return 0
}

complete -F _ringlet ringlet
"#;

const ZSH: &str = r#"#compdef ringlet
# zsh completion for ringlet, generated by `ringlet completions zsh` from
# ringlet's own command table. Install: save it as `_ringlet` in a directory
# of $fpath (before `compinit` runs), or source it after `compinit`.

@TABLE@

# Offers the candidates of spec $1 (choices:..., live:..., files).
_ringlet_add() {
  local -a names
  local line
  case $1 in
    (choices:*)
      names=(${=1#choices:})
      compadd -a names ;;
    (live:*)
      for line in ${(f)"$($_ringlet_bin __complete ${1#live:} 2>/dev/null)"}; do
        names+=("${${line%%$'\t'*}//:/\\:}:${line#*$'\t'}")
      done
      _describe -t ${1#live:} ${1#live:} names ;;
    (files)
      _files ;;
  esac
}

_ringlet() {
  local _ringlet_bin=${(Q)words[1]}
  _ringlet_bin=${_ringlet_bin/#\~/$HOME}
  local cmdpath= npos=0 dd=0 skip=0 i w val w2 trail
  local -a subs opts vopts pos
  _ringlet_spec ""
  for ((i = 2; i < CURRENT; i++)); do
    w=${words[i]}
    if ((skip)); then
      skip=0
      continue
    fi
    ((dd)) && continue
    case $w in
      (--) dd=1 ;;
      (-*=*) ;;
      (-*) ((${vopts[(Ie)$w]})) && skip=1 ;;
      (*)
        if ((npos == 0)) && ((${subs[(I)$w:*]})); then
          cmdpath=${cmdpath:+$cmdpath }$w
          _ringlet_spec "$cmdpath"
          continue
        fi
        ((npos++)) ;;
    esac
  done

  local cur=${words[CURRENT]} prev=${words[CURRENT-1]}
  if ((!dd)) && [[ $cur == -*=* ]]; then
    local opt=${cur%%=*}
    compset -P '*='
    _ringlet_value "$cmdpath" "$opt"
    _ringlet_add "$val"
    return
  fi
  if ((!dd)) && ((${vopts[(Ie)$prev]})); then
    _ringlet_value "$cmdpath" "$prev"
    _ringlet_add "$val"
    return
  fi
  if ((dd)); then
    _files
    return
  fi
  if [[ $cur == -* ]]; then
    _describe -t options option opts
    return
  fi
  if ((npos == 0 && $#subs > 0)); then
    _describe -t commands command subs
  fi
  if ((npos < $#pos)); then
    _ringlet_add "${pos[npos+1]}"
  fi
}

if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
  _ringlet "$@"
else
  compdef _ringlet ringlet
fi
"#;

const FISH: &str = r#"# fish completion for ringlet, generated by `ringlet completions fish`
# from ringlet's own command table. Install: save it as
# ~/.config/fish/completions/ringlet.fish (or source it).

# Prints the candidates (name<TAB>description) for the command line so far.
function __ringlet_complete
    set -l words (commandline -opc)
    set -l cur (commandline -ct)
    set -l bin $words[1]
    set -l cmdpath ''
    set -l npos 0
    set -l dd 0
    set -l skip 0
    set -l subs
    set -l opts
    set -l vopts
    set -l pos
    set -l trail 0
    set -l val
    __ringlet_spec ''
    for w in $words[2..-1]
        if test $skip = 1
            set skip 0
            continue
        end
        test $dd = 1; and continue
        switch $w
            case --
                set dd 1
            case '-*=*'
            case '-*'
                contains -- $w $vopts; and set skip 1
            case '*'
                if test $npos = 0
                    set -l names (string replace -r '\t.*' '' -- $subs)
                    if contains -- $w $names
                        set cmdpath (string trim -- "$cmdpath $w")
                        __ringlet_spec $cmdpath
                        continue
                    end
                end
                set npos (math $npos + 1)
        end
    end

    set -l prev $words[-1]
    if test $dd = 0; and string match -q -- '-*=*' $cur
        set -l opt (string replace -r '=.*' '' -- $cur)
        __ringlet_value $cmdpath $opt
        for c in (__ringlet_values $bin $val)
            echo "$opt=$c"
        end
        return
    end
    if test $dd = 0; and test (count $words) -gt 1; and contains -- $prev $vopts
        __ringlet_value $cmdpath $prev
        __ringlet_values $bin $val
        return
    end
    if test $dd = 1
        __fish_complete_path $cur
        return
    end
    if string match -q -- '-*' $cur
        printf '%s\n' $opts
        return
    end
    if test $npos = 0
        printf '%s\n' $subs
    end
    if test $npos -lt (count $pos)
        __ringlet_values $bin $pos[(math $npos + 1)]
    end
end

# Sets subs, opts, vopts, pos and trail (in the caller) for command path $argv[1].
function __ringlet_spec --no-scope-shadowing
    switch "$argv[1]"
@SPEC@
    end
end

# Sets val (in the caller) to what completes option $argv[2] of path $argv[1].
function __ringlet_value --no-scope-shadowing
    set val ''
    switch "$argv[1]|$argv[2]"
@VALUES@
    end
end

# Prints the candidates of spec $argv[2] (choices:..., live:..., files).
function __ringlet_values
    switch "$argv[2]"
        case 'choices:*'
            string split ' ' -- (string replace 'choices:' '' -- $argv[2])
        case 'live:*'
            $argv[1] __complete (string replace 'live:' '' -- $argv[2]) 2>/dev/null
        case files
            __fish_complete_path (commandline -ct)
    end
end

complete -c ringlet -f -a '(__ringlet_complete)'
"#;

// ---------------------------------------------------------------------------
// Live names

/// How long a completion waits for a running daemon before it reads the
/// disk instead: a wedged daemon must not hang the user's TAB.
const DAEMON_WAIT: Duration = Duration::from_millis(1500);
/// The most of a reply a completion reads.
const REPLY_CAP: u64 = 16 << 20;

/// `ringlet completions <shell>`.
pub fn print_script(inv: &Invocation) -> Result<()> {
    let shell = inv.arg("shell").unwrap_or_default();
    // The parser checks the choices of options, not of positionals: a
    // shell we have no script for is a usage error here.
    let text = script(shell).ok_or_else(|| {
        super::UsageError(format!("unknown shell `{shell}` (one of: bash, zsh, fish)"))
    })?;
    let mut out = Out::new();
    out.line(text.trim_end())?;
    out.finish()?;
    Ok(())
}

/// `ringlet __complete <kind>`: the names, one `name<TAB>description` per
/// line. Never fails loudly: whatever it cannot read, it leaves out.
pub fn live(ctx: &Ctx, inv: &Invocation) -> Result<()> {
    let kind = inv.arg("kind").unwrap_or_default();
    let names = match ctx.paths() {
        Ok(paths) => names(&paths, kind),
        Err(_) => Vec::new(),
    };
    let mut out = Out::new();
    for (name, about) in names {
        // A tab or newline inside a name would split it; such a name is no
        // name a command would take anyway.
        if name.is_empty() || name.contains(['\t', '\n']) {
            continue;
        }
        out.line(format_args!("{name}\t{}", about.replace(['\t', '\n'], " ")))?;
    }
    out.finish()?;
    Ok(())
}

/// The names of `kind`: profiles from their files, always (see below);
/// the others from the running daemon, else from disk.
///
/// Profiles: the daemon reads the same files, and its `ProfilesList` builds
/// each profile's full view (key checks included) for a list the TAB only
/// needs names from; dialing it was 8 of a TAB's 12 ms. The files are small
/// JSON read in well under a millisecond, with or without a daemon.
fn names(paths: &Paths, kind: &str) -> Vec<(String, String)> {
    let request = match kind {
        "profiles" => return profiles_on_disk(paths),
        "agents" => Request::AgentsList,
        "providers" => Request::ProvidersList,
        "sessions" => Request::TerminalList,
        _ => return Vec::new(),
    };
    if let Some(data) = ask_daemon(paths, request) {
        return from_reply(kind, &data);
    }
    match kind {
        "agents" => {
            let catalog = crate::manifests::Catalog::load(paths);
            catalog
                .agents
                .iter()
                .map(|a| (a.manifest.id.clone(), a.manifest.name.clone()))
                .collect()
        }
        "providers" => {
            let catalog = crate::manifests::Catalog::load(paths);
            catalog
                .providers
                .iter()
                .map(|p| (p.manifest.id.clone(), p.manifest.name.clone()))
                .collect()
        }
        // Sessions live only in the daemon: none runs, so none exists.
        _ => Vec::new(),
    }
}

/// Sends one request to a daemon that is already running; `None` when none
/// answers in time (or it answers with an error). Never starts one.
fn ask_daemon(paths: &Paths, request: Request) -> Option<Value> {
    let mut stream = crate::client::connect(paths).ok()?;
    stream.set_read_timeout(Some(DAEMON_WAIT)).ok()?;
    stream.set_write_timeout(Some(DAEMON_WAIT)).ok()?;
    let mut line = serde_json::to_vec(&RequestFrame { version: PROTOCOL_VERSION, request }).ok()?;
    line.push(b'\n');
    stream.write_all(&line).ok()?;
    stream.shutdown(std::net::Shutdown::Write).ok()?;
    let mut reply = String::new();
    BufReader::new(stream.take(REPLY_CAP)).read_line(&mut reply).ok()?;
    crate::client::decode_reply(&reply).ok()
}

/// Names and descriptions from the daemon's reply to the list request of `kind`.
fn from_reply(kind: &str, data: &Value) -> Vec<(String, String)> {
    let text = |v: &Value, key: &str| v[key].as_str().unwrap_or_default().to_string();
    let (list, id) = match kind {
        "agents" => ("agents", "id"),
        "providers" => ("providers", "id"),
        _ => ("", "id"),
    };
    let items = if list.is_empty() { data.as_array() } else { data[list].as_array() };
    items
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|v| {
            let about = match kind {
                "agents" if v["installed"] == Value::Bool(false) => {
                    format!("{} (not installed)", text(v, "name"))
                }
                "sessions" => format!("{}, {}", text(v, "profile"), text(v, "state")),
                _ => text(v, "name"),
            };
            (text(v, id), about)
        })
        .collect()
}

/// The profiles as their files say, read the way the daemon reads them.
fn profiles_on_disk(paths: &Paths) -> Vec<(String, String)> {
    let store = crate::profiles::Store::new(paths.config_dir.join("profiles"));
    let Ok((profiles, _broken)) = store.list() else { return Vec::new() };
    profiles
        .into_iter()
        .map(|p| {
            let about = format!("{}, {}, {}", p.agent, p.provider, p.model);
            (p.alias, about)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_positional_is_decided_on_purpose() {
        // A new positional gets no completion by accident only if it is
        // free text on purpose: name it here, or teach `values` about it.
        let free = [
            "proxy route add name",
            "proxy route add condition",
            "proxy route add target",
            "proxy route remove name",
            "proxy route move name",
            "proxy alias set from",
            "proxy alias set to",
            "proxy alias remove from",
            "hooks add event",
            "hooks add command",
            "hooks remove event",
            "hooks remove index",
            "terminal signal signal",
            "env setup task",
            "registry pin ref",
        ];
        for node in nodes() {
            for arg in node.cmd.args.iter().filter(|a| a.kind == Kind::Positional) {
                let here = format!("{} {}", node.key, arg.name);
                let decided = values(&node.path, arg);
                assert_eq!(
                    decided == Values::Free,
                    free.contains(&here.as_str()),
                    "{here}: completes as {decided:?}"
                );
            }
        }
    }

    #[test]
    fn names_and_ids_complete_from_the_right_list() {
        let find = |path: &[&str], name: &str| {
            let node = nodes().into_iter().find(|n| n.path == path).unwrap();
            let arg = node.cmd.args.iter().find(|a| a.name == name).unwrap();
            values(path, arg)
        };
        assert_eq!(find(&["profiles", "run"], "alias"), Values::Live("profiles"));
        assert_eq!(find(&["agents", "inspect"], "id"), Values::Live("agents"));
        assert_eq!(find(&["providers", "inspect"], "id"), Values::Live("providers"));
        assert_eq!(find(&["terminal", "attach"], "id"), Values::Live("sessions"));
        assert_eq!(find(&["profiles", "create"], "provider"), Values::Live("providers"));
        assert_eq!(find(&["usage"], "profile"), Values::Live("profiles"));
        assert_eq!(find(&["usage", "import-claude"], "claude-dir"), Values::Files);
        assert_eq!(
            find(&["usage"], "period"),
            Values::Choices(
                super::super::commands::ROOT.subs.iter().find(|c| c.name == "usage").unwrap().args
                    [0]
                .choices
            )
        );
        assert_eq!(find(&["hooks", "import"], "file"), Values::Files);
    }

    #[test]
    fn scripts_carry_every_visible_command_and_no_hidden_one() {
        for shell in ["bash", "zsh", "fish"] {
            let text = script(shell).unwrap();
            for node in nodes().iter().skip(1) {
                assert!(text.contains(&format!("'{}'", node.key)), "{shell}: {}", node.key);
            }
            // The scripts run `__complete`; they never offer it, nor any
            // other hidden command or option.
            let hidden_words = [
                "manpage",
                "'__complete",
                "__complete\\t",
                "'proxy serve'",
                "'serve",
                "serve\\t",
                "'registry index'",
                "'index",
                "index\\t",
                "log-file",
            ];
            for hidden in hidden_words {
                assert!(!text.contains(hidden), "{shell} offers hidden {hidden}");
            }
        }
        assert!(script("tcsh").is_none());
    }

    #[test]
    fn live_kinds_are_the_hidden_commands_choices() {
        let cmd = crate::cli::commands::ROOT.subs.iter().find(|c| c.name == "__complete").unwrap();
        assert!(cmd.hidden && cmd.ready);
        assert_eq!(cmd.args[0].choices, LIVE);
        for node in nodes() {
            for a in node.cmd.args {
                if let Values::Live(kind) = values(&node.path, a) {
                    assert!(LIVE.contains(&kind), "{kind}");
                }
            }
        }
    }

    #[test]
    fn replies_become_names() {
        let data = serde_json::json!({"agents": [
            {"id": "codex", "name": "Codex", "installed": false}
        ]});
        assert_eq!(from_reply("agents", &data), [("codex".into(), "Codex (not installed)".into())]);
        let data = serde_json::json!([{"id": "t1", "profile": "work", "state": "running"}]);
        assert_eq!(from_reply("sessions", &data), [("t1".into(), "work, running".into())]);
        assert!(from_reply("agents", &serde_json::json!({"oops": 1})).is_empty());
    }
}
