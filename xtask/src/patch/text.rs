//! The text forms inside a patch: `[PATCH]` subject prefixes, RFC 2047 encoded headers, and
//! git's C-style quoting of path names.

pub(super) fn strip_patch_prefix(s: &str) -> &str {
    let t = s.trim();
    if t.starts_with("[PATCH")
        && let Some(end) = t.find(']')
    {
        return t[end + 1..].trim_start();
    }
    t
}

/// Decodes RFC 2047 `=?UTF-8?q?...?=` words as `git format-patch` writes them.
pub(super) fn decode_header(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    let mut last_was_word = false;
    while let Some(start) = rest.find("=?") {
        let (before, word) = rest.split_at(start);
        let Some(end) = word[2..].find("?=").map(|e| e + 4) else {
            break;
        };
        let encoded = &word[..end];
        match decode_word(encoded) {
            Some(text) => {
                if !(last_was_word && before.trim().is_empty()) {
                    out.push_str(before);
                }
                out.push_str(&text);
                last_was_word = true;
            }
            None => {
                out.push_str(before);
                out.push_str(encoded);
                last_was_word = false;
            }
        }
        rest = &word[end..];
    }
    out.push_str(rest);
    out
}

fn decode_word(word: &str) -> Option<String> {
    let inner = word.strip_prefix("=?")?.strip_suffix("?=")?;
    let mut parts = inner.splitn(3, '?');
    let (_charset, enc, text) = (parts.next()?, parts.next()?, parts.next()?);
    if !enc.eq_ignore_ascii_case("q") {
        return None;
    }
    let mut bytes = Vec::new();
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'_' => bytes.push(b' '),
            b'=' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok()?;
                bytes.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            c => bytes.push(c),
        }
        i += 1;
    }
    String::from_utf8(bytes).ok()
}

/// Splits the rest of a `diff --git` line into its two (possibly quoted) paths.
pub(super) fn split_diff_header(rest: &str) -> Option<(String, String)> {
    if rest.starts_with('"') {
        let end = quoted_end(rest)?;
        let (a, b) = rest.split_at(end);
        return Some((unquote(a), unquote(b.trim_start())));
    }
    if rest.ends_with('"') {
        let start = rest.rfind(" \"")?;
        return Some((rest[..start].to_string(), unquote(&rest[start + 1..])));
    }
    // Unquoted: both sides have the same length after their prefixes unless it is a rename,
    // in which case the rename lines carry the names anyway.
    let mid = rest.find(" b/")?;
    Some((rest[..mid].to_string(), rest[mid + 1..].to_string()))
}

fn quoted_end(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// Undoes git's C-style quoting of unusual path names.
pub(super) fn unquote(s: &str) -> String {
    let s = s.split('\t').next().unwrap_or(s);
    let Some(inner) = s.strip_prefix('"').and_then(|s| s.strip_suffix('"')) else {
        return s.to_string();
    };
    let mut bytes = Vec::new();
    let b = inner.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            i += 1;
            match b[i] {
                b'n' => bytes.push(b'\n'),
                b't' => bytes.push(b'\t'),
                b'0'..=b'7' if i + 2 < b.len() => {
                    let oct = std::str::from_utf8(&b[i..i + 3]).unwrap_or("0");
                    bytes.push(u8::from_str_radix(oct, 8).unwrap_or(b'?'));
                    i += 2;
                }
                c => bytes.push(c),
            }
        } else {
            bytes.push(b[i]);
        }
        i += 1;
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

pub(super) fn strip_side(p: &str, side: &str) -> Option<String> {
    p.strip_prefix(side).map(str::to_string)
}
