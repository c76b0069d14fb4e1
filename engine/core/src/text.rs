//! Text from outside, made safe to show: control characters (newlines, terminal escape
//! sequences, NUL) written as Rust escapes, so a record cannot forge log lines or move a
//! terminal's cursor. Used wherever untrusted text reaches a log or a terminal.

use std::borrow::Cow;

/// `text` with every control character escaped; borrowed when there is none.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert!(matches!(printable("c-42 é"), Cow::Borrowed("c-42 é")));
        assert_eq!(printable("e-1\n2026 INFO forged"), "e-1\\n2026 INFO forged");
        assert_eq!(printable("\u{1b}[2J\0"), "\\u{1b}[2J\\u{0}");
    }
}
