//! What `stack.yaml` text must pass before the YAML parser sees it (a nesting cap), and how
//! much of the text an error may show (the offending token, shortened; never a whole value
//! that could be a secret the file was linked to).

use std::borrow::Cow;

/// The deepest nesting `stack.yaml` may have. The deepest real value,
/// `build.target.test_data[].sdist`, sits at depth 5; the parser's own limit (128) comes far
/// too late, because its scanner is quadratic in unclosed `[`/`{` (a 400 KB `[[[...` file
/// took minutes).
pub const MAX_DEPTH: usize = 16;

/// The longest token an error shows in full.
const MAX_TOKEN: usize = 60;

/// Most `[` and `{` characters a `stack.yaml` may hold, wherever they are (real ones hold a
/// few). A second fence behind [`too_deep`] that no quoting can fool: the parser's cost grows
/// with the square of the open brackets, and 4096 of them parse in milliseconds.
pub const MAX_BRACKETS: usize = 4096;

/// Finds the first place (1-based line and column) where the text nests deeper than
/// `max`, or `None`. An upper bound for well-formed YAML: block indentation levels, `- `/`? `
/// indicators and open flow brackets all count, so a document that passes cannot nest
/// deeper in the parser. Quoted scalars, comments and block scalars (`|`, `>`) are skipped,
/// so brackets in a title or a description do not count.
pub fn too_deep(text: &str, max: usize) -> Option<(usize, usize)> {
    let mut indents: Vec<usize> = Vec::new();
    let mut flow = 0usize;
    let mut quote: Option<char> = None;
    let mut block_scalar: Option<usize> = None;
    for (i, line) in text.lines().enumerate() {
        let indent = line.len() - line.trim_start_matches(' ').len();
        let body = &line[indent..];
        if let Some(parent) = block_scalar {
            if body.trim().is_empty() || indent > parent {
                continue;
            }
            block_scalar = None;
        }
        if quote.is_none() && flow == 0 {
            if body.is_empty() || body.starts_with('#') {
                continue;
            }
            while indents.last().is_some_and(|&top| top >= indent) {
                indents.pop();
            }
            indents.push(indent);
            if indents.len() > max {
                return Some((i + 1, indent + 1));
            }
        }
        let mut indicators = 0;
        // Quotes, anchors and (in block context) brackets mean something only where a value
        // starts: at the line's start, after `: `, `- `, `? `, or inside a flow collection
        // after `[`, `{`, `,` or `:`.
        let mut token_start = quote.is_none();
        let mut pending = false;
        let mut property = false;
        let mut prev = ' ';
        let mut content_end = body.len();
        let mut chars = body.char_indices().peekable();
        while let Some((j, c)) = chars.next() {
            let next = chars.peek().map(|&(_, n)| n);
            let at = (i + 1, indent + j + 1);
            if let Some(q) = quote {
                match c {
                    '\'' if q == '\'' && next == Some('\'') => {
                        chars.next();
                    }
                    '\\' if q == '"' => {
                        chars.next();
                    }
                    _ if c == q => quote = None,
                    _ => {}
                }
                prev = c;
                continue;
            }
            if c == ' ' || c == '\t' {
                // An anchor or tag (`&a`, `!!seq`) comes before the value it names.
                if pending || property {
                    token_start = true;
                }
                pending = false;
                property = false;
                prev = c;
                continue;
            }
            if property {
                prev = c;
                continue;
            }
            if c == '#' && (prev == ' ' || prev == '\t') {
                content_end = j;
                break;
            }
            let start = std::mem::replace(&mut token_start, false);
            let followed_by_space = next.is_none_or(|n| n == ' ' || n == '\t');
            match c {
                '"' | '\'' if start => quote = Some(c),
                '&' | '!' if start => property = true,
                '[' | '{' if start || flow > 0 => {
                    flow += 1;
                    if indents.len() + indicators + flow > max {
                        return Some(at);
                    }
                    token_start = true;
                }
                ']' | '}' if flow > 0 => flow -= 1,
                ',' | ':' if flow > 0 => token_start = true,
                ':' if followed_by_space => pending = true,
                '-' | '?' if start && flow == 0 && followed_by_space => {
                    indicators += 1;
                    if indents.len() + indicators > max {
                        return Some(at);
                    }
                    pending = true;
                }
                _ => {}
            }
            prev = c;
        }
        if quote.is_none() && flow == 0 && opens_block_scalar(&body[..content_end]) {
            block_scalar = Some(indent);
        }
    }
    None
}

/// Whether a line ends in a block scalar indicator (`key: |`, `- >-`, `|2`).
fn opens_block_scalar(content: &str) -> bool {
    let t = content.trim_end();
    let head = t.trim_end_matches(|c: char| c == '+' || c == '-' || c.is_ascii_digit());
    let Some(before) = head.strip_suffix(['|', '>']) else {
        return false;
    };
    before.is_empty() || before.ends_with([' ', '\t'])
}

/// A value as an error shows it: whole when short, else its start and its length, so a
/// long value (a token, a pasted credential) is never printed in full.
pub fn token(s: &str) -> Cow<'_, str> {
    if s.chars().count() <= MAX_TOKEN {
        return Cow::Borrowed(s);
    }
    let start: String = s.chars().take(16).collect();
    Cow::Owned(format!("{start}... ({} characters)", s.chars().count()))
}

/// Rewrites a parser message so it shows no more than the offending token: serde's
/// `invalid type: string "<the whole value>", expected ...` loses the value (a `stack.yaml`
/// linked to a credentials file is one long string), and every quoted span is shortened.
pub fn sanitize(msg: &str) -> String {
    let mut msg = msg.to_string();
    for kind in ["invalid type: string \"", "invalid value: string \""] {
        if let Some(start) = msg.find(kind)
            && let Some(end) = msg.rfind("\", expected ")
            && end + 1 >= start + kind.len()
        {
            let label = kind.trim_end_matches(" string \"");
            msg = format!("{label} a string{}", &msg[end + 1..]);
            break;
        }
    }
    shorten_spans(&msg)
}

/// Shortens every `backtick` span in a message to [`token`].
fn shorten_spans(msg: &str) -> String {
    let parts: Vec<&str> = msg.split('`').collect();
    if parts.len() < 3 {
        return msg.to_string();
    }
    let mut out = String::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push('`');
        }
        // Odd parts sit between a pair of backticks (the last one only if it is closed).
        if i % 2 == 1 && i + 1 < parts.len() {
            out.push_str(&token(part));
        } else {
            out.push_str(part);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_is_measured_with_an_upper_bound() {
        let deep_flow = "series: ".to_string() + &"[".repeat(400_000);
        let deep_map = (0..40)
            .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
            .collect::<String>();
        let dashes = "series:\n".to_string() + &"- ".repeat(30) + "x\n";
        for (text, at) in [
            (deep_flow.as_str(), (1, 24)),
            (deep_map.as_str(), (17, 17)),
            (dashes.as_str(), (2, 31)),
            (
                "a: {b: [c, {d: [[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]}]}\n",
                (1, 28),
            ),
            ("a: [\n  [\n   [[[[[[[[[[[[[[\n", (3, 17)),
            // An anchor or a tag comes before the value: the brackets after it count.
            ("a: &x [[[[[[[[[[[[[[[[[[[[\n", (1, 22)),
            ("a: !!seq [[[[[[[[[[[[[[[[[[[[\n", (1, 25)),
            // JSON style: a quote after `:` in a flow collection starts a string.
            ("a: {\"b\":\"]]]]\", \"c\": [[[[[[[[[[[[[[[[[[[[\n", (1, 36)),
        ] {
            assert_eq!(too_deep(text, MAX_DEPTH), Some(at), "{:.60}", text);
        }
        let fine = [
            // Brackets in plain, quoted and block scalars and comments are not nesting.
            "title: Fix [[[[[[[[[[[[[[[[[[[[ in a title\n",
            "title: '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[['\n",
            "title: \"[[[[[[[[[[[[[[[[[[[[[[[[\\\"[[[[[\"\n",
            "# [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\nx: 1\n",
            "x: 1 # {{{{{{{{{{{{{{{{{{{{{{{{{{{{{{\n",
            "prs:\n  - name: a\n    body: |\n      [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n      {{{{{{{{{{{{{{{{{{{{{{{{\n    title: t\n",
            "body: >-\n  'unclosed [[[[[[[[[[[[[[[[[[[[[[[[\nnext: [a, b]\n",
            "title: it's [[[[[[[[[[[[[[[[[[[[[[[[[[\n",
            "series: [a.patch, b.patch]\nversion: 1\n",
            // A comma or a dash inside a plain value starts nothing.
            "title: a, 'b [[[[[[[[[[[[[[[[[[[[[[\nnext: 1\n",
            "title: a - 'b [[[[[[[[[[[[[[[[[[[[[[\nnext: 1\n",
        ];
        for text in fine {
            assert_eq!(too_deep(text, MAX_DEPTH), None, "{text}");
        }
        // The real shape, `build.target.test_data[].sdist`, is far from the cap.
        let real =
            "build:\n  target:\n    test_data:\n      - sdist: brotli==1.2.0\n        sha256: x\n";
        assert_eq!(too_deep(real, 5), None);
        assert_eq!(too_deep(real, 4), Some((4, 7)));
    }

    #[test]
    fn messages_show_only_a_short_token() {
        let secret = "https://user:ghp_0123456789abcdefghijklmnopqrstuvwxyz@github.com";
        let msg = format!("invalid type: string \"{secret}\", expected struct Stack");
        assert_eq!(
            sanitize(&msg),
            "invalid type: a string, expected struct Stack"
        );
        let msg = format!("unknown field `{secret}`, expected one of `upstream`, `track`");
        let got = sanitize(&msg);
        assert!(!got.contains("ghp_0123"), "{got}");
        assert!(
            got.starts_with("unknown field `https://user:ghp... (64 characters)`")
                && got.ends_with("`track`"),
            "{got}"
        );
        assert_eq!(sanitize("unknown field `colour`"), "unknown field `colour`");
        assert_eq!(token("short"), "short");
    }
}
