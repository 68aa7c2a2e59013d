//! The web UI's terminal view: its emulator (`static/term.js`), run in node
//! by `tests/tools/term-screen.js`, against crafted output, every case fed
//! whole and in chunks of 1, 2, 3 and 7 bytes (so characters and escape
//! sequences arrive split) with the same result; its key and paste
//! encodings; random bytes; and a real shell session's output through the
//! daemon. (`agents.rs` checks a real Claude Code screen with it too.)

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::terminal::{Term, create, shell_world};

fn driver() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/tools/term-screen.js")
}

fn node(args: &[String], stdin: &[u8]) -> Value {
    let mut child = Command::new("node")
        .arg(driver())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running node (tests/setup.sh installs it): {e}"));
    let mut pipe = child.stdin.take().unwrap();
    let input = stdin.to_vec();
    let writer = std::thread::spawn(move || pipe.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success(), "term-screen.js: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// What the emulator shows after `bytes` on a `cols` x `rows` screen, then
/// (`then`) a resize and more output. Fed whole and in small chunks: every
/// way must give the same view.
fn view_then(bytes: &[u8], cols: u16, rows: u16, then: Option<(u16, u16, &str)>) -> Value {
    let mut args = vec![cols.to_string(), rows.to_string(), "0,1,2,3,7".to_string()];
    if let Some((c, r, more)) = then {
        args.extend([c.to_string(), r.to_string(), more.to_string()]);
    }
    let views = node(&args, bytes);
    let views = views.as_array().unwrap();
    for (i, chunk) in [1, 2, 3, 7].iter().enumerate() {
        assert_eq!(views[i + 1], views[0], "fed {chunk} bytes at a time, for {bytes:?}");
    }
    views[0].clone()
}

/// [`view_then`] without the resize.
pub(crate) fn view(bytes: &[u8], cols: u16, rows: u16) -> Value {
    view_then(bytes, cols, rows, None)
}

/// The screen's lines after `bytes`, fed once (a cheaper [`view`] for
/// tests that poll a live screen, like `agents.rs` reading Claude Code's).
pub(crate) fn screen_lines(bytes: &[u8], cols: u16, rows: u16) -> Vec<String> {
    let views = node(&[cols.to_string(), rows.to_string(), "0".to_string()], bytes);
    lines(&views[0])
}

/// The screen's lines (trailing blanks cut).
pub(crate) fn lines(view: &Value) -> Vec<String> {
    view["lines"].as_array().unwrap().iter().map(|l| l.as_str().unwrap().to_string()).collect()
}

fn cursor(view: &Value) -> (u64, u64) {
    (view["cursor"]["x"].as_u64().unwrap(), view["cursor"]["y"].as_u64().unwrap())
}

fn screen(bytes: &str, cols: u16, rows: u16) -> (Vec<String>, (u64, u64)) {
    let v = view(bytes.as_bytes(), cols, rows);
    (lines(&v), cursor(&v))
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// The run of row `y` whose text is `text` (or that and blanks after it):
/// (fg, bg, flags).
fn attrs_of(view: &Value, y: usize, text: &str) -> (i64, i64, i64) {
    let runs = view["runs"][y].as_array().unwrap();
    let run = runs.iter().find(|r| {
        let t = r["text"].as_str().unwrap();
        t == text || t.trim_end() == text
    });
    let run = run.unwrap_or_else(|| panic!("no run {text:?} in row {y}: {runs:?}"));
    (run["fg"].as_i64().unwrap(), run["bg"].as_i64().unwrap(), run["fl"].as_i64().unwrap())
}

const RGB: i64 = 1 << 24;
const BOLD: i64 = 1;
const DIM: i64 = 2;
const ITALIC: i64 = 4;
const UNDERLINE: i64 = 8;
const INVERSE: i64 = 32;
const STRIKE: i64 = 128;

#[test]
fn text_wraps_late_and_control_characters_act() {
    // The last column holds the wrap until the next character.
    assert_eq!(screen("abcde", 5, 3), (strings(&["abcde", "", ""]), (4, 0)));
    assert_eq!(screen("abcde\r\nx", 5, 3), (strings(&["abcde", "x", ""]), (1, 1)));
    assert_eq!(screen("abcdef", 5, 3), (strings(&["abcde", "f", ""]), (1, 1)));
    assert_eq!(screen("abcde\x08x", 5, 3), (strings(&["abcxe", "", ""]), (4, 0)));
    // Without autowrap (?7l) the last column is overwritten.
    assert_eq!(screen("\x1b[?7labcdefg", 5, 3), (strings(&["abcdg", "", ""]), (4, 0)));
    assert_eq!(screen("ab\x08\x08c\tx\r\nl\x07", 20, 2), (strings(&["cb      x", "l"]), (1, 1)));
    assert_eq!(view(b"\x07\x07", 5, 1)["bells"], 2);
    // LNM: LF is CR LF. IRM: characters push the line right.
    assert_eq!(screen("ab\x1b[20h\ncd", 6, 3), (strings(&["ab", "cd", ""]), (2, 1)));
    assert_eq!(screen("abc\x1b[1G\x1b[4hXY\x1b[4lZ", 6, 1), (strings(&["XYZbc"]), (3, 0)));
}

#[test]
fn the_cursor_moves_as_told_and_stays_on_the_screen() {
    let out = "\x1b[3;4HA\x1b[2DB\x1b[AC\x1b[2BD\x1b[99CE\x1b[EF\x1b[2FG\x1b[5GH\x1b[1dI\x1b[8`J\
               \x1b[2;9fK\x1b[99;99H\x1b[0;0H\x1b[5;3H";
    let want = strings(&["     I J", "   C    K", "G BAH", "    D    E", "F"]);
    assert_eq!(screen(out, 10, 5), (want, (2, 4)));
    assert_eq!(screen("\x1b[99;99H", 10, 5).1, (9, 4));
    assert_eq!(screen("\x1b[3;3H\x1b[9A\x1b[9D", 10, 5).1, (0, 0));
    // ESC 7 / ESC 8 and CSI s / CSI u.
    let (saved, _) = screen("ab\x1b7\x1b[3;5Hx\x1b8c\x1b[s\x1b[2;2Hy\x1b[uz", 10, 3);
    assert_eq!(saved, strings(&["abcz", " y", "    x"]));
    // Tab stops: set (ESC H), cleared (CSI 3 g), forward and back (CSI I, Z).
    assert_eq!(
        screen("\x1b[3g\x1b[5G\x1bH\x1b[1Ga\tb\x1b[1G\x1b[2Ic", 20, 1).0,
        ["a   b              c"]
    );
    assert_eq!(screen("a\tb\tc\x1b[Zd\x1b[2Ze", 20, 1).0, ["a       e       d"]);
    // Origin mode counts from the region's top, and so does the report.
    let v = view(b"\x1b[2;4r\x1b[?6h\x1b[1;1HA\x1b[9;1HB\x1b[6n", 6, 5);
    assert_eq!(
        (lines(&v), v["replies"].as_str()),
        (strings(&["", "A", "", "B", ""]), Some("\x1b[3;2R"))
    );
}

#[test]
fn erase_insert_and_delete() {
    let abc = "aaaaa\r\nbbbbb\r\nccccc\x1b[2;3H";
    assert_eq!(screen(&format!("{abc}\x1b[J"), 5, 3).0, ["aaaaa", "bb", ""]);
    assert_eq!(screen(&format!("{abc}\x1b[1J"), 5, 3).0, ["", "   bb", "ccccc"]);
    assert_eq!(screen(&format!("{abc}\x1b[2J"), 5, 3), (strings(&["", "", ""]), (2, 1)));
    assert_eq!(screen(&format!("{abc}\x1b[K"), 5, 3).0, ["aaaaa", "bb", "ccccc"]);
    assert_eq!(screen(&format!("{abc}\x1b[1K"), 5, 3).0, ["aaaaa", "   bb", "ccccc"]);
    assert_eq!(screen(&format!("{abc}\x1b[2K"), 5, 3).0, ["aaaaa", "", "ccccc"]);
    // ED 3 clears the scrollback only.
    let v = view(b"1\r\n2\r\n3\r\n4", 5, 3);
    assert_eq!(v["scrollback"], json!(["1"]));
    let v = view(b"1\r\n2\r\n3\r\n4\x1b[3J", 5, 3);
    assert_eq!((lines(&v), v["scrollback"].clone()), (strings(&["2", "3", "4"]), json!([])));
    // ECH, ICH, DCH.
    assert_eq!(screen("abcdef\x1b[1;2H\x1b[2X", 6, 1), (strings(&["a  def"]), (1, 0)));
    assert_eq!(screen("abcdef\x1b[1;2H\x1b[2@", 6, 1), (strings(&["a  bcd"]), (1, 0)));
    assert_eq!(screen("abcdef\x1b[1;2H\x1b[2P", 6, 1), (strings(&["adef"]), (1, 0)));
    // IL and DL: within the scroll region, from the cursor's line.
    let five = "1\r\n2\r\n3\r\n4\r\n5";
    assert_eq!(screen(&format!("{five}\x1b[2;1H\x1b[L"), 3, 5).0, ["1", "", "2", "3", "4"]);
    assert_eq!(
        screen(&format!("{five}\x1b[2;1H\x1b[2M"), 3, 5),
        (strings(&["1", "4", "5", "", ""]), (0, 1))
    );
    assert_eq!(
        screen(&format!("{five}\x1b[2;4r\x1b[3;2H\x1b[L"), 3, 5),
        (strings(&["1", "2", "", "3", "5"]), (0, 2))
    );
    assert_eq!(
        screen(&format!("{five}\x1b[2;4r\x1b[3;2H\x1b[5M"), 3, 5).0,
        ["1", "2", "", "", "5"]
    );
    assert_eq!(
        screen(&format!("{five}\x1b[2;4r\x1b[5;1H\x1b[L"), 3, 5).0,
        ["1", "2", "3", "4", "5"]
    );
    // REP repeats the last character.
    assert_eq!(screen("a\x1b[3b", 10, 1), (strings(&["aaaa"]), (4, 0)));
}

#[test]
fn scroll_regions_keep_the_rest_of_the_screen() {
    let five = "1\r\n2\r\n3\r\n4\r\n5";
    // LF at the region's bottom scrolls the region only, and nothing from
    // a region below the top reaches the scrollback.
    let v = view(format!("{five}\x1b[2;4r\x1b[4;1Hx\ny\n").as_bytes(), 5, 5);
    assert_eq!((lines(&v), cursor(&v)), (strings(&["1", "x", " y", "", "5"]), (2, 3)));
    assert_eq!(v["scrollback"], json!([]));
    // RI at the region's top scrolls it down.
    assert_eq!(
        screen(&format!("{five}\x1b[2;4r\x1b[2;1H\x1bMz"), 5, 5).0,
        ["1", "z", "2", "3", "5"]
    );
    // SU and SD; IND (ESC D) and NEL (ESC E).
    let v = view(b"1\r\n2\r\n3\x1b[S", 5, 3);
    assert_eq!((lines(&v), v["scrollback"].clone()), (strings(&["2", "3", ""]), json!(["1"])));
    assert_eq!(screen("1\r\n2\r\n3\x1b[2T", 5, 3).0, ["", "", "1"]);
    assert_eq!(screen("ab\x1bEc\x1bDd", 5, 3), (strings(&["ab", "c", " d"]), (2, 2)));
    // A full-screen scroll sends lines to the scrollback, oldest first.
    let v = view(b"1\r\n2\r\n3\r\n4", 5, 2);
    assert_eq!((lines(&v), v["scrollback"].clone()), (strings(&["3", "4"]), json!(["1", "2"])));
}

#[test]
fn the_alternate_screen_comes_and_goes_with_the_cursor() {
    let v = view(b"main1\r\nmain2\x1b[?1049h\x1b[Halt\r\n1\r\n2\r\n3", 10, 3);
    assert_eq!((lines(&v), v["alt"].as_bool()), (strings(&["1", "2", "3"]), Some(true)));
    assert_eq!(v["scrollback"], json!([]), "the alternate screen has no scrollback");
    let v = view(b"main1\r\nmain2\x1b[?1049h\x1b[Halt\r\n1\r\n2\r\n3\x1b[?1049lX", 10, 3);
    assert_eq!((lines(&v), cursor(&v)), (strings(&["main1", "main2X", ""]), (6, 1)));
    assert_eq!(v["alt"], false);
    // ?1049 clears the alternate screen on entry; ?47 keeps it and the cursor.
    let v = view(b"\x1b[?1049hold\x1b[?1049l\x1b[?1049h", 10, 3);
    assert_eq!(lines(&v), strings(&["", "", ""]));
    assert_eq!(screen("m\x1b[?47hA\x1b[?47l", 5, 3), (strings(&["m", "", ""]), (2, 0)));
    assert_eq!(screen("m\x1b[?47hA\x1b[?47l\x1b[?47h", 5, 3).0, [" A", "", ""]);
    // ?1047 clears it on the way out.
    assert_eq!(screen("m\x1b[?1047hA\x1b[?1047l\x1b[?47h", 5, 3).0, ["", "", ""]);
}

#[test]
fn wide_and_combining_characters_take_their_cells() {
    assert_eq!(screen("中文x", 10, 1), (strings(&["中文x"]), (5, 0)));
    // No room for the second half in the last column: it wraps.
    assert_eq!(screen("ab中文x", 5, 2), (strings(&["ab中", "文x"]), (3, 1)));
    assert_eq!(screen("😀!", 6, 1), (strings(&["😀!"]), (3, 0)));
    // Overwriting half of one blanks the other half.
    assert_eq!(screen("中文\x1b[1;2Hx", 6, 1).0, [" x文"]);
    assert_eq!(screen("中文\x1b[1;3Hx", 6, 1).0, ["中x"]);
    // A combining accent joins the character before it.
    assert_eq!(screen("e\u{301}x", 5, 1), (strings(&["e\u{301}x"]), (2, 0)));
    let v = view("a中".as_bytes(), 5, 1);
    assert_eq!(v["runs"][0][1]["text"], "中");
    assert_eq!(v["runs"][0][1]["wide"], true);
    // Invalid UTF-8 is shown as U+FFFD, one cell each, and does no harm.
    assert_eq!(view(b"a\xff\xfeb", 5, 1)["lines"], json!(["a\u{fffd}\u{fffd}b"]));
}

#[test]
fn sgr_sets_attributes_and_all_colour_forms() {
    let out = "\x1b[1;31mA\x1b[22;91mB\x1b[38;5;196mC\x1b[38;2;1;2;3mD\x1b[38:2::4:5:6mE\
               \x1b[48:5:17mF\x1b[0;7;9;3;4mG\x1b[23;24;27;29mH\x1b[2mI\x1b[mJ\
               \x1b[48;2;10;20;30mK\x1b[49;39;103mL\x1b[0;38:5:208;4mM\x1b[4:0;38:2:7:8:9mN\
               \x1b[0;31m\x1b[>4;2mO";
    let v = view(out.as_bytes(), 30, 1);
    let a = |t| attrs_of(&v, 0, t);
    assert_eq!(a("A"), (1, -1, BOLD));
    assert_eq!(a("B"), (9, -1, 0));
    assert_eq!(a("C"), (196, -1, 0));
    assert_eq!(a("D"), (RGB | 0x010203, -1, 0));
    assert_eq!(a("E"), (RGB | 0x040506, -1, 0));
    assert_eq!(a("F"), (RGB | 0x040506, 17, 0));
    assert_eq!(a("G"), (-1, -1, INVERSE | STRIKE | ITALIC | UNDERLINE));
    assert_eq!(a("H"), (-1, -1, 0));
    assert_eq!(a("I"), (-1, -1, DIM));
    assert_eq!(a("J"), (-1, -1, 0));
    assert_eq!(a("K"), (-1, RGB | 0x0a141e, 0));
    assert_eq!(a("L"), (-1, 11, 0));
    assert_eq!(a("M"), (208, -1, UNDERLINE));
    assert_eq!(a("N"), (RGB | 0x070809, -1, 0));
    // CSI > 4;2 m is modifyOtherKeys, not SGR.
    assert_eq!(a("O"), (1, -1, 0));
    // Erasing fills with the current background.
    let v = view(b"\x1b[44m\x1b[2J\x1b[0mx", 3, 1);
    assert_eq!(attrs_of(&v, 0, "  "), (-1, 4, 0));
}

#[test]
fn queries_are_answered() {
    let v = view(
        b"\x1b[3;4H\x1b[6n\x1b[5n\x1b[c\x1b[>c\x1b[?6n\x1b[18t\x1b]11;?\x07\x1b]10;?\x1b\\",
        10,
        5,
    );
    assert_eq!(
        v["replies"],
        "\x1b[3;4R\x1b[0n\x1b[?62;22c\x1b[>1;10;0c\x1b[?3;4R\x1b[8;5;10t\
         \x1b]11;rgb:1e1e/1e1e/1e1e\x07\x1b]10;rgb:d4d4/d4d4/d4d4\x1b\\"
    );
    assert_eq!(lines(&v), strings(&["", "", "", "", ""]), "nothing printed");
    // DECRQM: modes known and set, known and reset, unknown.
    let v = view(b"\x1b[?2004h\x1b[?2004$p\x1b[?2026$p\x1b[?7777$p", 10, 1);
    assert_eq!(v["replies"], "\x1b[?2004;1$y\x1b[?2026;2$y\x1b[?7777;0$y");
}

#[test]
fn strings_titles_and_unknown_sequences_leave_no_trace() {
    let out = "\x1b]0;first\x07\x1b]2;second\x1b\\\x1b]8;;http://x/\x1b\\link\x1b]8;;\x1b\\ \
               \x1b]52;c;aGVsbG8=\x07\x1b]133;A\x07\x1bP1$r0m\x1b\\\x1b_Gf=1;AAAA\x1b\\\
               \x1b^pm\x1b\\\x1bXsos\x1b\\\x1b[?1000h\x1b[?1002h\x1b[?1006h\x1b[?1004h\
               \x1b[?2026h\x1b[?2026l\x1b[>1u\x1b[?u\x1b[<u\x1b[=1;1u\x1b[>0q\x1b[22;0t\
               \x1b[1 q\x1b%G\x1b#3\x1b[99;99;99z\x1b[?99999y\x1bZ\x1b)Bend";
    let v = view(out.as_bytes(), 20, 2);
    assert_eq!(lines(&v), strings(&["link end", ""]));
    assert_eq!(v["title"], "second");
    // An OSC cut short by another escape sequence ends there.
    assert_eq!(screen("\x1b]0;t\x1b[31mx", 5, 1).0, ["x"]);
    // Line drawing (DEC special graphics), in G0 and through SO/SI in G1.
    assert_eq!(screen("\x1b(0lqqk\x1b(Bq", 10, 1).0, ["┌──┐q"]);
    assert_eq!(screen("\x1b)0a\x0eq\x0fq", 10, 1).0, ["a─q"]);
    // ESC c resets everything: screen, modes, charsets, attributes.
    let v = view(b"\x1b[31m\x1b[?1049h\x1b(0\x1b[?7l\x1b[?25lab\x1bcqq", 6, 2);
    assert_eq!((lines(&v), v["alt"].as_bool()), (strings(&["qq", ""]), Some(false)));
    assert_eq!(
        (v["cursor"]["visible"].as_bool(), attrs_of(&v, 0, "qq")),
        (Some(true), (-1, -1, 0))
    );
}

#[test]
fn modes_the_view_reads() {
    let v = view(b"\x1b[?1h\x1b[?2004h\x1b[?25l", 5, 1);
    assert_eq!(v["modes"], json!({"appCursor": true, "bracketedPaste": true, "autowrap": true}));
    assert_eq!(v["cursor"]["visible"], false);
    let v = view(b"\x1b[?1h\x1b[?2004h\x1b[?25l\x1b[?1l\x1b[?2004l\x1b[?25h", 5, 1);
    assert_eq!(v["modes"], json!({"appCursor": false, "bracketedPaste": false, "autowrap": true}));
    assert_eq!(v["cursor"]["visible"], true);
}

#[test]
fn resize_keeps_the_content_in_place() {
    // Fewer rows: the lines above the cursor go to the scrollback.
    let v = view_then(b"1\r\n2\r\n3\r\n4", 10, 4, Some((5, 2, "\x1b[Hz")));
    assert_eq!((lines(&v), cursor(&v)), (strings(&["z", "4"]), (1, 0)));
    assert_eq!(v["scrollback"], json!(["1", "2"]));
    // Fewer rows below the cursor: the empty ones go.
    let v = view_then(b"top\x1b[H", 10, 4, Some((10, 2, "")));
    assert_eq!((lines(&v), v["scrollback"].clone()), (strings(&["top", ""]), json!([])));
    // Narrower: cut (a wide character cut in half goes); wider: padded.
    let v = view_then("ab中".as_bytes(), 5, 1, Some((3, 1, "")));
    assert_eq!((lines(&v), cursor(&v)), (strings(&["ab"]), (2, 0)));
    let v = view_then(b"abcde", 5, 2, Some((8, 3, "fg")));
    assert_eq!((lines(&v), cursor(&v)), (strings(&["abcdefg", "", ""]), (7, 0)));
}

#[test]
fn random_bytes_never_throw_and_a_reset_recovers() {
    // xorshift: the same bytes every run. Pieces of sequences (introducers,
    // parameters, finals, terminators, split UTF-8) in random order, and
    // random bytes between them.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let pieces: [&[u8]; 30] = [
        b"\x1b[",
        b"\x1b[",
        b"\x1b[?",
        b"\x1b[>",
        b"\x1b]",
        b"\x1b]0;",
        b"\x1bP",
        b"\x1b_",
        b"\x1b",
        b"\x1b\\",
        b"\x07",
        b"\x18",
        b"\r\n",
        b"\x08\t",
        b";",
        b":",
        b"1",
        b"5",
        b"38",
        b"2;",
        b"99999",
        b"1049",
        b"0",
        b"\xe4\xb8",
        b"\xad",
        b"\xf0\x9f",
        b"\x98\x80",
        b"(",
        b"#",
        b" $!",
    ];
    let finals = b"@ABCDEFGHIJKLMPSTXZ`abcdefghlmnpqrstuxyz78c0";
    let mut bytes = Vec::new();
    while bytes.len() < 150_000 {
        let r = next();
        match r % 4 {
            0 => bytes.push((r >> 8) as u8),
            1 => bytes.push(finals[(r >> 16) as usize % finals.len()]),
            _ => bytes.extend_from_slice(pieces[(r >> 16) as usize % pieces.len()]),
        }
    }
    let garbage = view(&bytes, 30, 8);
    assert_eq!(lines(&garbage).len(), 8);
    let (x, y) = cursor(&garbage);
    assert!(x < 30 && y < 8, "{x} {y}");
    bytes.extend_from_slice(b"\x18\x1bcok");
    let v = view(&bytes, 30, 8);
    assert_eq!((lines(&v), cursor(&v)), (strings(&["ok", "", "", "", "", "", "", ""]), (2, 0)));
}

#[test]
fn keys_and_pastes_are_sent_as_xterm_sends_them() {
    let keys = json!([
        [{"key": "a"}, false],
        [{"key": "A", "shiftKey": true}, false],
        [{"key": "Enter"}, false],
        [{"key": "Backspace"}, false],
        [{"key": "Tab"}, false],
        [{"key": "Tab", "shiftKey": true}, false],
        [{"key": "Escape"}, false],
        [{"key": "ArrowUp"}, false],
        [{"key": "ArrowUp"}, true],
        [{"key": "ArrowLeft", "ctrlKey": true}, true],
        [{"key": "Home"}, false],
        [{"key": "End"}, true],
        [{"key": "PageUp"}, false],
        [{"key": "PageDown"}, false],
        [{"key": "Insert"}, false],
        [{"key": "Delete"}, false],
        [{"key": "F1"}, false],
        [{"key": "F5"}, false],
        [{"key": "F12"}, false],
        [{"key": "c", "ctrlKey": true}, false],
        [{"key": "с", "code": "KeyC", "ctrlKey": true}, false],
        [{"key": "[", "ctrlKey": true}, false],
        [{"key": "x", "altKey": true}, false],
        [{"key": "Enter", "altKey": true}, false],
        [{"key": "@", "ctrlKey": true, "altKey": true, "altGraph": true}, false],
        [{"key": "é"}, false],
        [{"key": "C", "ctrlKey": true, "shiftKey": true}, false],
        [{"key": "V", "ctrlKey": true, "shiftKey": true}, false],
        [{"key": "v", "metaKey": true}, false],
        [{"key": "Insert", "shiftKey": true}, false],
        [{"key": "Shift", "shiftKey": true}, false],
        [{"key": "Dead"}, false],
    ]);
    let sent = node(&["--keys".to_string()], keys.to_string().as_bytes());
    let want = json!([
        "a",
        "A",
        "\r",
        "\x7f",
        "\t",
        "\x1b[Z",
        "\x1b",
        "\x1b[A",
        "\x1bOA",
        "\x1b[1;5D",
        "\x1b[H",
        "\x1bOF",
        "\x1b[5~",
        "\x1b[6~",
        "\x1b[2~",
        "\x1b[3~",
        "\x1bOP",
        "\x1b[15~",
        "\x1b[24~",
        "\x03",
        "\x03",
        "\x1b",
        "\x1bx",
        "\x1b\r",
        "@",
        "é",
        null,
        null,
        null,
        null,
        null,
        null
    ]);
    assert_eq!(sent, want);
    let pastes =
        json!([["one\ntwo\r\n", false], ["one\ntwo", true], ["a\x1b[201~rm -rf ~\n", true]]);
    let sent = node(&["--paste".to_string()], pastes.to_string().as_bytes());
    assert_eq!(
        sent,
        json!(["one\rtwo\r", "\x1b[200~one\rtwo\x1b[201~", "\x1b[200~arm -rf ~\r\x1b[201~"])
    );
}

/// The real thing: a shell in a daemon-owned terminal, resized by this
/// client as the view does it, its output through the emulator.
#[test]
fn a_shell_session_through_the_daemon_shows_as_typed() {
    let env = shell_world("web-term");
    let (addr, token) = env.http();
    let info = create(&env, addr, &token, json!({"cols": 80, "rows": 24}));
    let id = info["id"].as_str().unwrap().to_string();
    let mut t = Term::open(addr, &token, &id);
    t.say(r#"{"type":"resize","cols":100,"rows":30}"#);
    t.type_in("printf '\\033[31mred\\033[0m\\n'; stty size; echo do''ne\n");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !String::from_utf8_lossy(&t.seen).contains("done\r\n$ ") {
        assert!(Instant::now() < deadline, "{}", String::from_utf8_lossy(&t.seen));
        t.pump();
    }
    let v = view(&t.seen, 100, 30);
    let shown = lines(&v);
    let at = shown.iter().position(|l| l == "red").unwrap_or_else(|| panic!("{shown:#?}"));
    assert!(shown[at - 1].ends_with("echo do''ne"), "the echoed command: {shown:#?}");
    assert_eq!(shown[at + 1..at + 4], strings(&["30 100", "done", "$"]), "{shown:#?}");
    assert_eq!(cursor(&v), (2, at as u64 + 3), "after the prompt");
    assert_eq!(attrs_of(&v, at, "red"), (1, -1, 0));
    // The escape sequence left no text: `[31m` is only in the typed line.
    assert!(shown.iter().all(|l| !l.contains('\x1b')), "{shown:#?}");
    assert_eq!(shown.iter().filter(|l| l.contains("[31m")).count(), 1, "{shown:#?}");
}
