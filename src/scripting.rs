//! Profile scripts: the Rhai engine that turns a profile into an agent's
//! config files, environment and arguments (design.md §6, scripts/README.md).
//!
//! A script gets one constant map `ctx` and returns `#{files, env, args}`.
//! The engine is sandboxed by Rhai itself (no file, process or network
//! access) and bounded here: operations, call depth, expression depth and the
//! sizes of strings, arrays and maps, so an endless loop or a runaway string
//! in a user script is an error naming the script and line, and the daemon
//! keeps serving. The engine is built once, lazily: paths that never run a
//! script never pay for it.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{Result, anyhow, bail};
use rhai::{AST, Dynamic, Engine, EvalAltResult, ParseError, Position, Scope};
use serde_json::Value;

use crate::paths::Paths;

/// The built-in scripts, embedded; a user or registry script of the same
/// name replaces one.
pub(crate) const BUILTIN: &[(&str, &str)] = &[
    ("claude.rhai", include_str!("../scripts/claude.rhai")),
    ("codex.rhai", include_str!("../scripts/codex.rhai")),
    ("opencode.rhai", include_str!("../scripts/opencode.rhai")),
    ("grok.rhai", include_str!("../scripts/grok.rhai")),
    ("droid.rhai", include_str!("../scripts/droid.rhai")),
];

/// Limits a script runs under (scripts/README.md documents them).
const MAX_OPERATIONS: u64 = 1_000_000;
const MAX_CALL_LEVELS: usize = 32;
const MAX_STRING_BYTES: usize = 1 << 20;
const MAX_COLLECTION_ITEMS: usize = 10_000;

/// A script's source text and where it came from.
#[derive(Debug, Clone)]
pub struct Script {
    /// File name, e.g. `claude.rhai`.
    pub name: String,
    /// Where it was found: a file path, or `built-in`.
    pub origin: String,
    pub text: String,
}

impl Script {
    /// How errors name the script: the user's file path, or `claude.rhai (built-in)`.
    fn label(&self) -> String {
        if self.origin == "built-in" {
            format!("{} (built-in)", self.name)
        } else {
            self.origin.clone()
        }
    }
}

/// What a script produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rendered {
    /// Path relative to the profile home -> file text (placeholders intact).
    pub files: BTreeMap<String, String>,
    pub env: BTreeMap<String, String>,
    pub args: Vec<String>,
    /// Path of a rendered `.json`/`.toml` file -> the records of the agent's
    /// own state in it that survive a render, as key paths (`projects.*.x`).
    /// Every other file is Ringlet's alone: what is on disk is replaced.
    pub keep: BTreeMap<String, Vec<String>>,
    /// Paths relative to the profile home removed (a directory with all it
    /// holds) at every render: places where an agent keeps things a later
    /// run executes or obeys unasked (Codex's approved-command rules,
    /// OpenCode's plugins), which no file of `files` can reset.
    pub remove: Vec<String>,
}

/// Finds script `name`: the user's `scripts/`, then the synced registry,
/// then the built-in copy.
pub fn resolve(paths: &Paths, name: &str) -> Result<Script> {
    if name.is_empty()
        || !name.ends_with(".rhai")
        || name.contains('/')
        || name.contains('\\')
        || name.starts_with('.')
    {
        bail!("script name `{name}` must be a plain file name ending in .rhai");
    }
    // The registry's copy through the commit `current` names, so errors
    // and `origin` say which commit the script came from. It is confined
    // like any other: what it renders goes through the same checks (paths
    // relative to the profile home, no `..`, written beneath it).
    let registry = crate::registry::current_dir(paths)
        .map(|dir| crate::registry::artifact_path(&dir, crate::registry::Kind::Script, name));
    let candidates = std::iter::once(paths.config_dir.join("scripts").join(name)).chain(registry);
    for path in candidates {
        match fs::read_to_string(&path) {
            Ok(text) => {
                return Ok(Script {
                    name: name.to_string(),
                    origin: path.display().to_string(),
                    text,
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => bail!("reading {}: {e}", path.display()),
        }
    }
    match BUILTIN.iter().find(|(n, _)| *n == name) {
        Some((_, text)) => {
            Ok(Script { name: name.to_string(), origin: "built-in".into(), text: text.to_string() })
        }
        None => bail!(
            "no script `{name}`: not in {}, not in the registry, and not built in",
            paths.config_dir.join("scripts").display()
        ),
    }
}

/// Runs `script` with `ctx` and checks the shape of its result.
pub fn render(script: &Script, ctx: &Value) -> Result<Rendered> {
    let engine = engine();
    let label = script.label();
    let ctx = rhai::serde::to_dynamic(ctx).map_err(|e| anyhow!("{label}: building ctx: {e}"))?;
    let mut scope = Scope::new();
    scope.push_constant("ctx", ctx);
    let ast = compiled(engine, &scope, &script.text).map_err(|e| {
        let line = e.1.line().map(|l| format!(":{l}")).unwrap_or_default();
        anyhow!("{label}{line}: syntax error: {}", e.0)
    })?;
    let out: Dynamic =
        engine.eval_ast_with_scope(&mut scope, &ast).map_err(|e| script_error(&label, *e))?;
    decode_output(&label, out)
}

/// How many compiled scripts [`compiled`] keeps (the built-ins plus a few
/// user or registry scripts; the oldest goes first).
const COMPILED_KEPT: usize = 16;

/// `text` compiled against `scope`, from a cache keyed by the whole text:
/// every render of a profile compiled its script anew, and tokenizing the
/// commented built-ins was most of a render's CPU time. The AST depends on
/// the text alone: the scope only tells strict variables that `ctx` exists
/// (always the one name), and with rhai's `no_optimize` no value of the
/// scope is folded into it. A changed file is a different text, so an
/// edited or synced script is compiled afresh; errors are not kept.
fn compiled(engine: &Engine, scope: &Scope, text: &str) -> Result<Arc<AST>, ParseError> {
    static CACHE: Mutex<Vec<(String, Arc<AST>)>> = Mutex::new(Vec::new());
    let lock = || CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, ast)) = lock().iter().find(|(t, _)| t == text) {
        return Ok(Arc::clone(ast));
    }
    // Compiled outside the lock: two threads may both compile a new text,
    // and the second result replaces nothing (the first is found below).
    let ast = Arc::new(engine.compile_with_scope(scope, text)?);
    let mut cache = lock();
    if let Some((_, kept)) = cache.iter().find(|(t, _)| t == text) {
        return Ok(Arc::clone(kept));
    }
    if cache.len() >= COMPILED_KEPT {
        cache.remove(0);
    }
    cache.push((text.to_string(), Arc::clone(&ast)));
    Ok(ast)
}

/// One line: `<script>:<line>: <message>`.
fn script_error(label: &str, mut err: EvalAltResult) -> anyhow::Error {
    let pos = innermost_position(&err);
    let _ = err.take_position();
    let line = pos.line().map(|l| format!(":{l}")).unwrap_or_default();
    let message = err.to_string().replace('\n', " ");
    anyhow!("{label}{line}: {message}")
}

/// The position inside the script that failed; for an error raised inside a
/// called function that is the line in the function, which is where the fix goes.
fn innermost_position(err: &EvalAltResult) -> Position {
    match err {
        EvalAltResult::ErrorInFunctionCall(_, _, inner, pos) => {
            let inner_pos = innermost_position(inner);
            if inner_pos.is_none() { *pos } else { inner_pos }
        }
        other => other.position(),
    }
}

fn decode_output(label: &str, out: Dynamic) -> Result<Rendered> {
    let value: Value = rhai::serde::from_dynamic(&out)
        .map_err(|e| anyhow!("{label}: the result is not plain data: {e}"))?;
    let Value::Object(map) = value else {
        bail!("{label}: must end with a map #{{files, env, args}}, not {}", kind(&value));
    };
    let mut rendered = Rendered::default();
    for (key, value) in map {
        match key.as_str() {
            "files" => {
                for (path, text) in object(label, "files", value)? {
                    let Value::String(text) = text else {
                        bail!(
                            "{label}: files[\"{path}\"] must be a string (use json_encode_pretty or toml_encode), not {}",
                            kind(&text)
                        );
                    };
                    rendered.files.insert(path, text);
                }
            }
            "env" => {
                for (name, value) in object(label, "env", value)? {
                    if name.is_empty() || name.contains('=') || name.contains('\0') {
                        bail!("{label}: env name `{name}` is not a valid variable name");
                    }
                    rendered
                        .env
                        .insert(name.clone(), scalar(label, &format!("env.{name}"), value)?);
                }
            }
            "args" => {
                let Value::Array(items) = value else {
                    bail!("{label}: args must be an array of strings, not {}", kind(&value));
                };
                for (i, item) in items.into_iter().enumerate() {
                    rendered.args.push(scalar(label, &format!("args[{i}]"), item)?);
                }
            }
            "remove" => {
                let Value::Array(items) = value else {
                    bail!("{label}: remove must be an array of paths, not {}", kind(&value));
                };
                for (i, item) in items.into_iter().enumerate() {
                    rendered.remove.push(scalar(label, &format!("remove[{i}]"), item)?);
                }
            }
            "keep" => {
                for (path, patterns) in object(label, "keep", value)? {
                    let Value::Array(items) = patterns else {
                        bail!("{label}: keep[\"{path}\"] must be an array of key paths");
                    };
                    let mut list = Vec::new();
                    for (i, item) in items.into_iter().enumerate() {
                        let pattern = scalar(label, &format!("keep[\"{path}\"][{i}]"), item)?;
                        if pattern.split('.').any(str::is_empty) {
                            bail!(
                                "{label}: keep[\"{path}\"]: `{pattern}` is not a key path like `projects.*.name`"
                            );
                        }
                        list.push(pattern);
                    }
                    rendered.keep.insert(path, list);
                }
            }
            other => bail!(
                "{label}: unknown key `{other}` in the result (expected files, env, args, keep, remove)"
            ),
        }
    }
    for path in rendered.keep.keys() {
        if !rendered.files.contains_key(path) {
            bail!("{label}: keep names `{path}`, which is not among the files");
        }
        if !path.ends_with(".json") && !path.ends_with(".toml") {
            bail!("{label}: keep names `{path}`; only .json and .toml files keep records");
        }
    }
    Ok(rendered)
}

fn object(label: &str, what: &str, value: Value) -> Result<serde_json::Map<String, Value>> {
    match value {
        Value::Object(map) => Ok(map),
        Value::Null => Ok(Default::default()),
        other => bail!("{label}: {what} must be a map, not {}", kind(&other)),
    }
}

fn scalar(label: &str, what: &str, value: Value) -> Result<String> {
    match value {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => bail!("{label}: {what} must be a string, not {}", kind(&other)),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "()",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "a map",
    }
}

/// The shared engine, built on first use. `Engine` is `Sync` (rhai's `sync`
/// feature), so every daemon thread uses this one.
///
/// Rhai's standard library less two packages a config script has no use
/// for, blobs (byte buffers) and bit fields: about 60 KB of the binary.
/// Strings, arrays (with sorting), maps, iteration, logic and integer math
/// stay, as `Engine::new` has them.
fn engine() -> &'static Engine {
    use rhai::packages::{
        BasicArrayPackage, BasicMapPackage, BasicMathPackage, CorePackage, LogicPackage,
        MoreStringPackage, Package,
    };
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut engine = Engine::new_raw();
        engine.register_global_module(CorePackage::new().as_shared_module());
        engine.register_global_module(LogicPackage::new().as_shared_module());
        engine.register_global_module(BasicMathPackage::new().as_shared_module());
        engine.register_global_module(BasicArrayPackage::new().as_shared_module());
        engine.register_global_module(BasicMapPackage::new().as_shared_module());
        engine.register_global_module(MoreStringPackage::new().as_shared_module());
        // As `Engine::new` does: map keys and property names are interned.
        engine.set_max_strings_interned(256);
        engine.set_max_operations(MAX_OPERATIONS);
        engine.set_max_call_levels(MAX_CALL_LEVELS);
        engine.set_max_expr_depths(64, 32);
        engine.set_max_string_size(MAX_STRING_BYTES);
        engine.set_max_array_size(MAX_COLLECTION_ITEMS);
        engine.set_max_map_size(MAX_COLLECTION_ITEMS);
        // A typo in a variable name is an error at compile time, not `()`.
        engine.set_strict_variables(true);
        // The daemon's stdout is /dev/null; a script's print goes to the log.
        engine.on_print(|text| crate::debug!("script print: {text}"));
        engine.on_debug(|text, _, _| crate::debug!("script debug: {text}"));
        engine.register_fn("json_encode", json_encode);
        engine.register_fn("json_encode_pretty", json_encode_pretty);
        engine.register_fn("toml_encode", toml_encode);
        engine.register_fn("indent", indent);
        engine.register_fn("trim_lines", trim_lines);
        engine
    })
}

type FnResult<T> = std::result::Result<T, Box<EvalAltResult>>;

fn to_json(value: &Dynamic) -> FnResult<Value> {
    rhai::serde::from_dynamic(value)
}

fn json_encode(value: Dynamic) -> FnResult<String> {
    serde_json::to_string(&to_json(&value)?).map_err(|e| e.to_string().into())
}

fn json_encode_pretty(value: Dynamic) -> FnResult<String> {
    let mut text = serde_json::to_string_pretty(&to_json(&value)?).map_err(|e| e.to_string())?;
    text.push('\n');
    Ok(text)
}

fn toml_encode(value: Dynamic) -> FnResult<String> {
    let json = to_json(&value)?;
    if !json.is_object() {
        return Err("toml_encode needs a map".into());
    }
    toml::to_string(&json).map_err(|e| format!("toml_encode: {e}").into())
}

fn indent(text: &str, n: i64) -> String {
    let pad = " ".repeat(n.clamp(0, 64) as usize);
    let mut out = String::with_capacity(text.len() + pad.len() * 8);
    for line in text.split_inclusive('\n') {
        if !line.trim().is_empty() {
            out.push_str(&pad);
        }
        out.push_str(line);
    }
    out
}

fn trim_lines(text: &str) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    let start = lines.iter().position(|l| !l.is_empty()).unwrap_or(lines.len());
    let end = lines.iter().rposition(|l| !l.is_empty()).map_or(start, |i| i + 1);
    let mut out = lines[start..end].join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

/// The built-in scripts, by file name (`registry inspect` compares the
/// synced ones with them).
pub fn builtins() -> &'static [(&'static str, &'static str)] {
    BUILTIN
}

/// Names of the built-in scripts (for tests and `--template` help).
#[cfg(test)]
pub fn builtin_names() -> Vec<&'static str> {
    BUILTIN.iter().map(|(n, _)| *n).collect()
}

/// A script that is not a file on disk (tests, and `--dry-run` previews).
#[cfg(test)]
pub fn inline(name: &str, text: &str) -> Script {
    Script { name: name.into(), origin: name.into(), text: text.into() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(text: &str) -> Result<Rendered> {
        render(&inline("t.rhai", text), &json!({"profile": {"alias": "a", "model": "m"}}))
    }

    #[test]
    fn output_shape() {
        let r = run(r#"#{ files: #{ "a/b.json": json_encode(#{x: 1}) }, env: #{ K: "v", N: 3 }, args: ["--x"] }"#)
            .unwrap();
        assert_eq!(r.files["a/b.json"], r#"{"x":1}"#);
        assert_eq!(r.env["K"], "v");
        assert_eq!(r.env["N"], "3");
        assert_eq!(r.args, vec!["--x"]);
    }

    #[test]
    fn ctx_is_visible_and_constant() {
        let r = run(r#"#{ env: #{ A: ctx.profile.alias + "-" + ctx.profile.model } }"#).unwrap();
        assert_eq!(r.env["A"], "a-m");
        let e = run("ctx.profile.alias = \"x\"; #{}").unwrap_err().to_string();
        assert!(e.contains("t.rhai:1"), "{e}");
    }

    #[test]
    fn errors_name_script_and_line() {
        let e = run("let x = 1;\nlet y = ;\n#{}").unwrap_err().to_string();
        assert!(e.starts_with("t.rhai:2: syntax error"), "{e}");
        let e = run("let x = 1;\n\nlet y = x + \"a\" * 2;\n#{}").unwrap_err().to_string();
        assert!(e.starts_with("t.rhai:3: "), "{e}");
        let e = run("let x = 1;\nundefined_var\n").unwrap_err().to_string();
        assert!(e.starts_with("t.rhai:2: "), "{e}");
        let e = run("fn f() {\n  throw \"boom\";\n}\nf()").unwrap_err().to_string();
        assert!(e.starts_with("t.rhai:2: ") && e.contains("boom"), "{e}");
    }

    #[test]
    fn endless_loop_and_huge_string_are_errors() {
        let e = run("loop { }").unwrap_err().to_string();
        assert!(e.contains("t.rhai:1") && e.to_lowercase().contains("operations"), "{e}");
        let e = run("let s = \"x\"; while true { s += s; }").unwrap_err().to_string();
        assert!(e.to_lowercase().contains("length of string"), "{e}");
        let e = run("fn r(n) { r(n + 1) } r(0)").unwrap_err().to_string();
        assert!(e.contains("t.rhai:1"), "{e}");
        let e = run("let a = []; loop { a.push(1); }").unwrap_err().to_string();
        assert!(e.to_lowercase().contains("size of array"), "{e}");
    }

    #[test]
    fn bad_results_are_explained() {
        assert!(run("42").unwrap_err().to_string().contains("must end with a map"));
        assert!(run("#{ file: #{} }").unwrap_err().to_string().contains("unknown key `file`"));
        let e = run(r#"#{ files: #{ "x.json": #{} } }"#).unwrap_err().to_string();
        assert!(e.contains("json_encode_pretty"), "{e}");
        assert!(run(r#"#{ env: #{ "A=B": "x" } }"#).is_err());
        assert!(run(r#"#{ args: "x" }"#).is_err());
        let e = run(r#"#{ keep: #{ "x.json": ["a"] } }"#).unwrap_err().to_string();
        assert!(e.contains("not among the files"), "{e}");
        let e = run(r#"#{ files: #{ "x.txt": "" }, keep: #{ "x.txt": ["a"] } }"#).unwrap_err();
        assert!(e.to_string().contains("only .json and .toml"), "{e}");
        let e = run(r#"#{ files: #{ "x.json": "{}" }, keep: #{ "x.json": ["a..b"] } }"#);
        assert!(e.unwrap_err().to_string().contains("key path"));
        let r = run(r#"#{ files: #{ "x.json": "{}" }, keep: #{ "x.json": ["a", "p.*.t"] } }"#);
        assert_eq!(r.unwrap().keep["x.json"], ["a", "p.*.t"]);
        assert_eq!(run(r#"#{ remove: ["a/b"] }"#).unwrap().remove, ["a/b"]);
        assert!(run(r#"#{ remove: "a" }"#).unwrap_err().to_string().contains("array of paths"));
    }

    #[test]
    fn helpers() {
        assert_eq!(indent("a\n\nb\n", 2), "  a\n\n  b\n");
        assert_eq!(trim_lines("\n  \na  \nb\t\n\n"), "a\nb\n");
        let r = run(
            r#"#{ files: #{ "c.toml": toml_encode(#{ model: "m", features: #{ x: false }, list: [1, 2] }),
                             "p.json": json_encode_pretty(#{ a: [1] }) } }"#,
        )
        .unwrap();
        let parsed: toml::Table = toml::from_str(&r.files["c.toml"]).unwrap();
        assert_eq!(parsed["model"].as_str(), Some("m"));
        assert_eq!(parsed["features"]["x"].as_bool(), Some(false));
        assert_eq!(r.files["p.json"], "{\n  \"a\": [\n    1\n  ]\n}\n");
        assert!(run("toml_encode(1)").is_err());
    }

    /// The compiled-script cache is keyed by the whole text: a script
    /// edited under the same name renders its new text, a syntax error is
    /// reported every time (never cached), and a repeat is the same AST.
    #[test]
    fn compiled_scripts_follow_their_text() {
        let ctx = serde_json::json!({"n": 1});
        let one = inline("cache.rhai", r#"#{files: #{}, env: #{A: "one"}, args: []}"#);
        let two = inline("cache.rhai", r#"#{files: #{}, env: #{A: "two"}, args: []}"#);
        assert_eq!(render(&one, &ctx).unwrap().env["A"], "one");
        assert_eq!(render(&two, &ctx).unwrap().env["A"], "two");
        assert_eq!(render(&one, &ctx).unwrap().env["A"], "one");
        let mut scope = Scope::new();
        scope.push_constant("ctx", Dynamic::UNIT);
        let a = compiled(engine(), &scope, &one.text).unwrap();
        let b = compiled(engine(), &scope, &one.text).unwrap();
        assert!(Arc::ptr_eq(&a, &b), "a repeated text is compiled once");
        let broken = inline("cache.rhai", "#{files: ");
        for _ in 0..2 {
            let err = render(&broken, &ctx).unwrap_err().to_string();
            assert!(err.contains("syntax error"), "{err}");
        }
        // Strict variables still apply: only `ctx` is known.
        let unknown = inline("cache.rhai", "#{env: #{A: nope}}");
        assert!(render(&unknown, &ctx).is_err());
    }

    #[test]
    fn every_builtin_compiles() {
        for name in builtin_names() {
            let text = BUILTIN.iter().find(|(n, _)| *n == name).unwrap().1;
            let mut scope = Scope::new();
            scope.push_constant("ctx", Dynamic::UNIT);
            engine().compile_with_scope(&scope, text).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}
