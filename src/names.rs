//! Names: what a name may be, and when two names are the same (beyond the
//! report: its server takes the first line as the name, whatever it is).
//!
//! Not here: cleaning the text first (`text.rs`).

/// The longest name, in characters (not bytes: a name in Greek or Japanese
/// gets as many letters as one in English). 24 fits a first and last name and
/// keeps `/who` readable.
pub const MAX_NAME_CHARS: usize = 24;

/// Why a name was refused. Each is answered with `! ` and the user tries again.
#[derive(Debug, PartialEq, Eq)]
pub enum NameError {
    /// Not a single letter: empty, or only digits, `_` and `-`.
    Empty,
    /// A name the room would read as the server's own (see [`RESERVED_NAMES`]).
    Reserved,
    TooLong,
    BadChar(char),
}

/// Checks a (sanitised) name: 1 to [`MAX_NAME_CHARS`] characters, each a letter
/// or digit of any script, `_` or `-`, or a combining mark after a letter
/// (some keyboards type `é` as `e` then U+0301); at least one a letter.
///
/// Why so strict: a name appears at the start of every line its owner sends,
/// so spaces or `:` would let someone impersonate a notice (`* server`) or
/// another user (`bob: hi`). Letters of every script are allowed because a
/// class is not only English speakers.
pub fn validate_name(name: &str) -> Result<(), NameError> {
    if !name.chars().any(char::is_alphabetic) {
        return Err(NameError::Empty);
    }
    let letters: String = fold_name(name).chars().filter(|c| c.is_alphabetic()).collect();
    if RESERVED_NAMES.contains(&letters.as_str()) {
        return Err(NameError::Reserved);
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(NameError::TooLong);
    }
    let mut previous = ' ';
    for c in name.chars() {
        let accent =
            is_combining_mark(c) && (previous.is_alphabetic() || is_combining_mark(previous));
        if !(c.is_alphanumeric() || c == '_' || c == '-' || accent) {
            return Err(NameError::BadChar(c));
        }
        previous = c;
    }
    Ok(())
}

/// Names kept for the server, compared by their letters alone (`Server_1`
/// and `ADMIN` are kept too): a user called `server` saying `server: the
/// room closes now` would pass for the server.
pub const RESERVED_NAMES: [&str; 5] = ["server", "chatroom", "console", "system", "admin"];

/// The combining diacritical marks: accents that sit on the letter before
/// them (U+0300 to U+036F, and the blocks that extend them).
pub fn is_combining_mark(c: char) -> bool {
    matches!(
        c,
        '\u{0300}'..='\u{036F}'
            | '\u{1AB0}'..='\u{1AFF}'
            | '\u{1DC0}'..='\u{1DFF}'
            | '\u{20D0}'..='\u{20FF}'
            | '\u{FE20}'..='\u{FE2F}'
    )
}

/// The form of a name used to compare names: `Alice` and `ALICE` are the same
/// person to a reader, so they may not both be online.
///
/// Upper case first, then lower: `ß` becomes `SS` then `ss`, so `Straße`
/// and `STRASSE` meet; the dotless `ı` becomes `I` then `i`, and the ligature
/// `ﬃ` becomes `FFI` then `ffi`. What this still misses, with no Unicode
/// tables beyond std's: the same letter written as one character or as a
/// letter plus a combining accent (no normalisation), and look-alikes from
/// other scripts.
pub fn fold_name(name: &str) -> String {
    name.to_uppercase().to_lowercase()
}
