//! Text made safe to show on another person's terminal (beyond the report:
//! its chat relays every byte as it came). Used by the server on every line
//! and name it relays, and by the client on every line it prints.
//!
//! Not here: what a name may be (`names.rs`), reading lines (`protocol.rs`).

/// Makes text safe to print on another person's terminal, and trims its end
/// (its start is kept: pasted code keeps its indentation).
///
/// Control characters (U+0000 to U+001F and U+007F to U+009F, exactly what
/// `char::is_control` matches) are removed: among them is ESC, which starts
/// the escape sequences that move the cursor, change colours, clear the screen
/// or retitle the window. A tab becomes a space instead, because people do
/// paste text with tabs in it and mean a gap. The invisible characters of
/// [`is_invisible`] are removed too.
pub fn sanitize(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .filter_map(|c| match c {
            '\t' => Some(' '),
            c if c.is_control() || is_invisible(c) => None,
            c => Some(c),
        })
        .collect();
    cleaned.trim_end().to_string()
}

/// Characters that show nothing by themselves: removed, so that what you
/// read is what was sent.
///
/// This is Unicode's `Default_Ignorable_Code_Point` property, copied from
/// `DerivedCoreProperties.txt` of Unicode 15.0 (unicode.org/Public/15.0.0/ucd),
/// with neighbouring ranges merged. Among them:
///
/// | characters | what they do |
/// |---|---|
/// | U+061C, U+200E, U+200F, U+202A to U+202E, U+2066 to U+2069 | bidi controls: U+202E shows `txt.exe` as `exe.txt` |
/// | U+200B to U+200D, U+2060, U+FEFF | zero-width characters: hide text, split words so filters miss them |
/// | U+115F, U+1160, U+3164, U+FFA0 | Hangul fillers: letters that look like nothing, so a name of them looks blank |
/// | U+00AD, U+034F, U+180E, U+2061 to U+2064 | soft hyphen, grapheme joiner, invisible operators |
/// | U+FE00 to U+FE0F, U+E0100 to U+E01EF | variation selectors (an emoji's colour form loses its selector) |
/// | U+E0000 to U+E0FFF | tags: a whole invisible message can be spelled in them |
///
/// Left in on purpose: letters from other scripts that look like Latin ones
/// (Cyrillic `а` for Latin `a`). They are real text that a class writing in
/// Russian needs; see the README's "What this leaves out".
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFF8}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}
