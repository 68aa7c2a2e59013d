//! "Did you mean `profiles`?": the closest of a few known names to a
//! mistyped one, for commands, options, option values and profile names.
//!
//! An optimal-string-alignment distance (Levenshtein plus swapped
//! neighbours, the commonest typo) over characters; a name is offered only
//! when it is close enough that the guess is likely right, so a wild word
//! gets no suggestion rather than a silly one.

/// The known name closest to `typed`, if one is close enough: at most one
/// edit for short words, a third of the length for longer ones. A typed
/// prefix of exactly one name (`prof` for `profiles`) counts too. Ties go
/// to the first in `known`.
pub fn closest<'a>(typed: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let typed_len = typed.chars().count();
    if typed_len == 0 {
        return None;
    }
    let limit = (typed_len / 3).max(1);
    let mut best: Option<(usize, &str)> = None;
    let mut prefixed: Vec<&str> = Vec::new();
    for name in known {
        if name == typed {
            return None;
        }
        if typed_len >= 3 && name.starts_with(typed) {
            prefixed.push(name);
        }
        let d = distance(typed, name);
        if d <= limit && best.is_none_or(|(b, _)| d < b) {
            best = Some((d, name));
        }
    }
    match (best, prefixed.as_slice()) {
        (Some((_, name)), _) => Some(name),
        (None, [only]) => Some(only),
        _ => None,
    }
}

/// Optimal string alignment distance: insertions, deletions, substitutions
/// and transpositions of two neighbours each cost one.
pub fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Three rows are enough: a transposition looks two rows back.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current: Vec<usize> = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        current[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (previous[j] + 1).min(current[j - 1] + 1).min(previous[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(before[j - 2] + 1);
            }
            current[j] = d;
        }
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(distance("", ""), 0);
        assert_eq!(distance("abc", ""), 3);
        assert_eq!(distance("profile", "profiles"), 1);
        assert_eq!(distance("porfiles", "profiles"), 1);
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("ca", "abc"), 3);
        assert_eq!(distance("día", "dia"), 1);
    }

    #[test]
    fn close_names_are_suggested_and_wild_ones_are_not() {
        let commands = ["init", "agents", "providers", "profiles", "proxy", "usage", "stats"];
        assert_eq!(closest("profile", commands), Some("profiles"));
        assert_eq!(closest("porfiles", commands), Some("profiles"));
        assert_eq!(closest("usgae", commands), Some("usage"));
        assert_eq!(closest("prov", commands), Some("providers"));
        assert_eq!(closest("proxx", commands), Some("proxy"));
        assert_eq!(closest("frobnicate", commands), None);
        assert_eq!(closest("pro", commands), None, "a prefix of several names");
        assert_eq!(closest("x", commands), None);
        assert_eq!(closest("", commands), None);
        // The exact name is no mistake to correct.
        assert_eq!(closest("usage", commands), None);
        assert_eq!(closest("forse", ["force", "foreground"]), Some("force"));
        assert_eq!(closest("wrok", ["work", "home"]), Some("work"));
    }
}
