//! What a name may be, and when two names are the same.
//!
//! A name starts every line its owner sends, so it must be seen (no blank or
//! mark-only names), typed (letters, digits, `_`, `-`: no spaces or `:` to
//! forge a notice or another user's line) and told apart (no two online that
//! read alike, none that reads as the server's).
//!
//! Deliberately left out: cleaning the text first (`text::sanitize`, which
//! runs before [`validate_name`]); who is online (the server's room);
//! normalisation (std has none, so `é` precomposed and `e` + U+0301 stay two
//! names); and the rarer look-alikes of `confusables.txt` (`rn` for `m`,
//! Greek and Cyrillic letters beyond the common ones below).
//!
//! All of this is beyond the student's report, which says nothing of what a
//! name may be (`examples/report_server.py` takes any line as a name).

use crate::text;

/// The longest name, in characters (not bytes: a name in Greek or Japanese
/// gets as many letters as one in English). 24 fits a first and last name and
/// keeps `/who` readable.
pub const MAX_NAME_CHARS: usize = 24;

/// Names kept for the server, compared by their letters alone after
/// [`fold_name`] (`Server_1`, `ADMIN`, `ｓｅｒｖｅｒ` and `adm1n` are kept too):
/// a user called `server` saying `server: the room closes now` would pass for
/// the server.
pub const RESERVED_NAMES: [&str; 5] = ["server", "chatroom", "console", "system", "admin"];

/// Why a name was refused. Each is answered with `! ` and the user tries again.
#[derive(Debug, PartialEq, Eq)]
pub enum NameError {
    /// Not a single letter: empty, or only digits, `_`, `-` (and marks).
    Empty,
    /// A name the room would read as the server's (see [`RESERVED_NAMES`]).
    Reserved,
    TooLong,
    /// A character a name may not hold, or not there: a mark with no letter
    /// before it, a letter that looks like punctuation, an invisible one.
    BadChar(char),
    /// Latin, Greek and Cyrillic letters mixed: `аlice` with a Cyrillic `а`.
    MixedScripts,
}

/// Checks a (sanitised) name: 1 to [`MAX_NAME_CHARS`] characters, each a letter
/// or digit of any script, `_` or `-`, or a combining mark after a letter
/// (some keyboards type `é` as `e` then U+0301; Hindi needs its vowel signs
/// and virama); at least one a letter; no letter that looks like punctuation;
/// at most one of the three scripts that look alike, Latin, Greek and Cyrillic.
///
/// Letters of every script are allowed because a class is not only English
/// speakers, and scripts other than those three may mix (`Zoë_日本`).
pub fn validate_name(name: &str) -> Result<(), NameError> {
    if !name.chars().any(|c| c.is_alphabetic() && !is_mark(c)) {
        return Err(NameError::Empty);
    }
    // Digits read as letters (`adm1n`), yet a digit after a name is a suffix
    // (`Server_1`): either reading may not give a reserved name.
    let letters = |s: &str| -> String { s.chars().filter(|c| c.is_alphabetic()).collect() };
    let readings = [fold_name(&letters(name)), letters(&fold_name(name))];
    if RESERVED_NAMES.iter().any(|reserved| readings.contains(&fold_name(reserved))) {
        return Err(NameError::Reserved);
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(NameError::TooLong);
    }
    let (mut previous, mut scripts) = (' ', 0u8);
    for c in name.chars() {
        // A mark draws on the letter before it: alone it shows nothing, or
        // sits on the `:` after the name.
        let after_letter = previous.is_alphabetic() || is_mark(previous);
        let allowed =
            if is_mark(c) { after_letter } else { c.is_alphanumeric() || "_-".contains(c) };
        if !allowed || looks_like_punctuation(c) || text::is_invisible(c) {
            return Err(NameError::BadChar(c));
        }
        scripts |= script(c);
        previous = c;
    }
    if scripts.count_ones() > 1 {
        return Err(NameError::MixedScripts);
    }
    Ok(())
}

/// Checks a cleaned, trimmed name, and gives the key that keeps names
/// unique: two names with one key read alike, and cannot both be online.
pub fn check(name: &str) -> Result<String, NameError> {
    validate_name(name).map(|()| key(name))
}

/// The key of any text, valid name or not (for `/msg` and `/kick`).
pub fn key(name: &str) -> String {
    fold_name(name)
}

/// The form names are sorted by, in `/who` and the welcome.
pub fn sort_key(name: &str) -> String {
    lower_case(name)
}

/// The form of a name used to compare names: names that read the same are the
/// same person, so they may not both be online.
///
/// In order: Latin letters in another style become plain ([`unstyled`]); upper
/// case then lower, so `ß` becomes `SS` then `ss` (`Straße` meets `STRASSE`),
/// dotless `ı` becomes `I` then `i`, and `ﬃ` becomes `ffi`; then look-alikes
/// become one letter ([`LOOKALIKES`]): `i`, `l` and `1` are `l`, `0` is `o`,
/// and small capitals and the common Greek and Cyrillic look-alikes are the
/// Latin letter.
///
/// Why `i`, `l` and `1` together: `confusables.txt` of Unicode 15.0
/// (unicode.org/Public/security/15.0.0) reads `I` and `1` as `l`, and names
/// compare without case, so `I` is also `i`: only the whole class is
/// consistent (`aIice`, `a1ice` and `alice` are one name). Likewise `0` is
/// `O` there, hence `o`. The cost is that `Iris` and `lris` cannot both be
/// online; nothing is refused by it.
pub fn fold_name(name: &str) -> String {
    let plain: String = name.chars().map(unstyled).collect();
    lower_case(&plain).chars().map(latin_lookalike).collect()
}

/// A name in lower case (`to_uppercase`, then `to_lowercase`: `Straße` and
/// `STRASSE` meet), the order names are listed in.
pub fn lower_case(name: &str) -> String {
    name.to_uppercase().to_lowercase()
}

/// A Latin letter or digit written in another style, as the plain one:
/// the fullwidth forms U+FF01 to U+FF5E (their `<wide>` decomposition in
/// `UnicodeData.txt` of Unicode 15.0 is U+0021 to U+007E, one for one) and the
/// Mathematical Alphanumeric Symbols (U+1D400 to U+1D7FF, `UnicodeData.txt`
/// and the block's chart): thirteen styles of 26 capitals then 26 small
/// letters from U+1D400, five styles of ten digits from U+1D7CE. The holes in
/// the letters (U+1D455, whose italic `h` is U+210E in Letterlike Symbols) are
/// unassigned, so no name holds them; the Letterlike ones stay unfolded, as do
/// the mathematical Greek letters.
fn unstyled(c: char) -> char {
    let code = c as u32;
    let plain = |first: u8, offset: u32| char::from(first + offset as u8);
    match code {
        0xFF01..=0xFF5E => plain(b'!', code - 0xFF01),
        0x1D400..=0x1D6A3 => plain(b'a', (code - 0x1D400) % 26),
        0x1D7CE..=0x1D7FF => plain(b'0', (code - 0x1D7CE) % 10),
        _ => c,
    }
}

/// Pairs of (look-alike, Latin letter), after case folding: `i`, `1` and `0`,
/// then Latin small capitals (`ᴀʟɪᴄᴇ`), Cyrillic and Greek. From
/// `confusables.txt` of Unicode 15.0, where the small or the capital form
/// (`Т` for `T`) is the Latin letter's prototype; names compare without case,
/// so the small letter of a look-alike capital folds with it.
const LOOKALIKES: &str = "il1l0o\
    ᴀaʙbᴄcᴅdᴇeꜰfɢgʜhɪlᴊjᴋkʟlᴍmɴnᴏoᴘpꞯqʀrꜱsᴛtᴜuᴠvᴡwʏyᴢz\
    аaвbеeкkмmнhоoрpсcтtуyхxѕsіlјjһhԁdӏlүyԛqԝw\
    αaβbεeζzηhιlκkμmνnοoρpτtυyχx";

/// The Latin letter that `c` is read as, by [`LOOKALIKES`]; or `c`.
fn latin_lookalike(c: char) -> char {
    let mut pairs = LOOKALIKES.chars();
    while let (Some(lookalike), Some(latin)) = (pairs.next(), pairs.next()) {
        if lookalike == c {
            return latin;
        }
    }
    c
}

/// A mark: combining (General_Category Mn, Me, and the Indic Mc) in the
/// scripts a class is likely to write, from `UnicodeData.txt` of Unicode 15.0.
/// The Indic blocks from Devanagari (U+0900) to Malayalam (U+0D7F) share one
/// layout, so their signs are taken by offset in the block: candrabindu to
/// visarga (0x00 to 0x03), nukta to virama but for the avagraha letter (0x3A
/// to 0x4F), stress and length marks (0x51 to 0x57), vowel signs (0x62, 0x63).
fn is_mark(c: char) -> bool {
    let (code, offset) = (c as u32, c as u32 % 0x80);
    let indic =
        matches!(offset, 0x00..=0x03 | 0x3A..=0x3C | 0x3E..=0x4F | 0x51..=0x57 | 0x62..=0x63);
    // The letters at those offsets: Tamil's aytham starts `ஃபாத்திமா`.
    let letter = matches!(
        code,
        0x0980 | 0x09CE | 0x0B83 | 0x0C80 | 0x0D3A | 0x0D4E..=0x0D4F | 0x0D54..=0x0D56
    );
    ((0x0900..=0x0D7F).contains(&code) && indic && !letter)
        || matches!(
            code,
            // Diacriticals and their extensions, Cyrillic
            0x0300..=0x036F | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x20D0..=0x20FF | 0xFE20..=0xFE2F
                | 0x0483..=0x0489
                // Hebrew points (not its punctuation), Arabic
                | 0x0591..=0x05BD | 0x05BF | 0x05C1..=0x05C2 | 0x05C4..=0x05C5 | 0x05C7
                | 0x0610..=0x061A | 0x064B..=0x065F | 0x0670 | 0x06D6..=0x06DC | 0x06DF..=0x06E4
                | 0x06E7..=0x06E8 | 0x06EA..=0x06ED
                // The Indic signs off the shared layout; Sinhala, Thai, Lao
                | 0x09FE | 0x0A70..=0x0A71 | 0x0A75 | 0x0AFA..=0x0AFF | 0x0C04 | 0x0CF3
                | 0x0D81..=0x0D83 | 0x0DCA..=0x0DDF | 0x0DF2..=0x0DF3
                | 0x0E31 | 0x0E34..=0x0E3A | 0x0E47..=0x0E4E
                | 0x0EB1 | 0x0EB4..=0x0EBC | 0x0EC8..=0x0ECE
        )
}

/// Letters that `confusables.txt` of Unicode 15.0 reads as ASCII punctuation:
/// the click letters `ǀ ǁ ǂ ǃ`, the glottal stops `Ɂ ɂ ʔ` (`?`), the whole
/// Spacing Modifier Letters block (`ʹ ʺ ʼ ˈ ː`: quotes and a colon), the Greek
/// numeral sign `ʹ` and ypogegrammeni `ͺ`, NKo's tone apostrophes, Lisu's tone
/// letters (`. , : ;`), and the modifier tone letters, `꞉` (a colon) and the
/// saltillo `ꞌ`.
fn looks_like_punctuation(c: char) -> bool {
    matches!(
        c as u32,
        0x01C0..=0x01C3 | 0x0241..=0x0242 | 0x0294 | 0x02B0..=0x02FF | 0x0374 | 0x037A
            | 0x07F4..=0x07F5 | 0xA4F8..=0xA4FD | 0xA700..=0xA721 | 0xA788..=0xA78C
    )
}

/// Which of the three scripts whose letters look alike `c` is in, as a bit
/// (Latin 1, Greek 2, Cyrillic 4; 0 for any other), from `Scripts.txt` of
/// Unicode 15.0: Latin is ASCII, Latin-1 to IPA Extensions, the phonetic small
/// capitals, Latin Extended Additional, -C and -D; Greek is Greek and Coptic,
/// Greek Extended; Cyrillic is Cyrillic, its Supplement and Extended-B. A
/// letter in another style counts as its plain letter (mathematical letters
/// are Common there, but read as Latin).
fn script(c: char) -> u8 {
    let code = unstyled(c) as u32;
    let latin = matches!(
        code,
        0x41..=0x5A | 0x61..=0x7A | 0xAA..=0x02AF | 0x1D00..=0x1D25 | 0x1E00..=0x1EFF
            | 0x2C60..=0x2C7F | 0xA720..=0xA7FF
    );
    let greek = matches!(code, 0x0370..=0x03FF | 0x1F00..=0x1FFF);
    let cyrillic = matches!(code, 0x0400..=0x052F | 0xA640..=0xA69F);
    u8::from(latin) + 2 * u8::from(greek) + 4 * u8::from(cyrillic)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_of_24_chars_is_accepted() {
        assert_eq!(validate_name(&"a".repeat(24)), Ok(()));
    }

    #[test]
    fn name_of_25_chars_is_refused() {
        assert_eq!(validate_name(&"a".repeat(25)), Err(NameError::TooLong));
    }

    #[test]
    fn name_length_counts_characters_not_bytes() {
        assert_eq!(validate_name(&"è".repeat(24)), Ok(()));
    }

    #[test]
    fn empty_name_is_refused() {
        assert_eq!(validate_name(""), Err(NameError::Empty));
    }

    #[test]
    fn name_in_any_script_with_underscore_and_dash_is_accepted() {
        assert_eq!(validate_name("Zoë_日本-42"), Ok(()));
        for name in ["Иван", "Ελένη", "नमस्ते", "สมชาย", "مریم", "שרה", "Kɔfi", "Nguyễn"]
        {
            assert_eq!(validate_name(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn name_with_space_or_colon_is_refused() {
        assert_eq!(validate_name("a b"), Err(NameError::BadChar(' ')));
        assert_eq!(validate_name("bob:"), Err(NameError::BadChar(':')));
    }

    #[test]
    fn name_of_hangul_fillers_is_refused_as_blank() {
        let blank = text::sanitize("\u{115F}\u{1160}\u{3164}\u{FFA0}");
        assert_eq!(validate_name(&blank), Err(NameError::Empty));
    }

    #[test]
    fn invisible_characters_are_refused_even_unsanitised() {
        assert_eq!(validate_name("bo\u{3164}b"), Err(NameError::BadChar('\u{3164}')));
        assert_eq!(validate_name("क्\u{200D}ष"), Err(NameError::BadChar('\u{200D}')));
    }

    #[test]
    fn name_without_a_letter_is_refused() {
        assert_eq!(validate_name("42"), Err(NameError::Empty));
        assert_eq!(validate_name("_-_"), Err(NameError::Empty));
        assert_eq!(validate_name("r2d2"), Ok(()));
    }

    #[test]
    fn names_that_read_the_same_fold_the_same() {
        assert_eq!(fold_name("Straße"), fold_name("STRASSE"));
        assert_eq!(fold_name("ıvan"), fold_name("Ivan"));
        assert_eq!(fold_name("oﬃce"), fold_name("office"));
    }

    #[test]
    fn names_compare_case_insensitively() {
        assert_eq!(fold_name("ALICE"), fold_name("alice"));
        assert_eq!(fold_name("ÉLODIE"), fold_name("élodie"));
        assert_eq!(fold_name("ИВАН"), fold_name("иван"));
        assert_eq!(fold_name("ΕΛΕΝΗ"), fold_name("ελενη"));
    }

    #[test]
    fn a_combining_accent_after_a_letter_is_part_of_a_name() {
        assert_eq!(validate_name("Jose\u{301}"), Ok(()));
        assert_eq!(validate_name("e\u{301}\u{323}va"), Ok(()));
        assert_eq!(validate_name("\u{301}eva"), Err(NameError::BadChar('\u{301}')));
        assert_eq!(validate_name("a_\u{301}"), Err(NameError::BadChar('\u{301}')));
    }

    #[test]
    fn a_name_may_not_start_with_a_combining_mark() {
        // Each is alphabetic to std, and was once a whole name: `: I am nobody`.
        for mark in ['\u{0345}', '\u{064B}', '\u{05B0}', '\u{0E31}', '\u{093F}', '\u{094D}'] {
            assert_eq!(validate_name(&mark.to_string()), Err(NameError::Empty), "{mark:?}");
            let name = format!("{mark}bob");
            assert_eq!(validate_name(&name), Err(NameError::BadChar(mark)), "{mark:?}");
            assert_eq!(validate_name(&format!("4{mark}b")), Err(NameError::BadChar(mark)));
        }
    }

    #[test]
    fn marks_after_a_letter_are_allowed_in_every_script() {
        // Sinhala ශ්‍රී (Sri) is written here without its ZWJ: a name holds none.
        let names = ["नमस्ते", "क्षत्रिय", "ਪੰਜਾਬ", "தமிழ்", "ශ්රී", "ศึกษา", "מֹשֶׁה", "مُحَمَّد"];
        for name in names {
            assert_eq!(validate_name(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn fullwidth_math_and_small_capital_letters_fold_to_plain() {
        for name in ["ａｌｉｃｅ", "ＡＬＩＣＥ", "𝖺𝗅𝗂𝖼𝖾", "𝐀𝐥𝐢𝐜𝐞", "𝒂𝒍𝒊𝒄𝒆", "𝚊𝚕𝚒𝚌𝚎", "ᴀʟɪᴄᴇ"]
        {
            assert_eq!(fold_name(name), fold_name("alice"), "{name}");
            assert_eq!(validate_name(name), Ok(()), "{name}");
        }
        assert_eq!(fold_name("𝟘𝟙𝟚"), fold_name("012"));
        assert_eq!(fold_name("ʙʀᴜɴᴏ"), fold_name("bruno"));
    }

    #[test]
    fn styled_server_names_are_reserved() {
        for name in ["𝗌𝖾𝗋𝗏𝖾𝗋", "ｓｅｒｖｅｒ", "ᴀᴅᴍɪɴ", "𝐒𝐲𝐬𝐭𝐞𝐦", "adm1n", "c0ns0le", "ЅҮЅТЕМ"]
        {
            assert_eq!(validate_name(name), Err(NameError::Reserved), "{name}");
        }
    }

    #[test]
    fn capital_i_small_l_and_digit_one_fold_together() {
        assert_eq!(fold_name("aIice"), fold_name("alice"));
        assert_eq!(fold_name("a1ice"), fold_name("alice"));
        assert_eq!(fold_name("bob0"), fold_name("BOBO"));
        assert_ne!(fold_name("bob"), fold_name("bod"));
    }

    #[test]
    fn latin_mixed_with_cyrillic_is_refused() {
        assert_eq!(validate_name("\u{0430}lice"), Err(NameError::MixedScripts));
        assert_eq!(validate_name("Ива\u{006E}"), Err(NameError::MixedScripts));
        // Mixed and reserved: refused either way.
        assert!(validate_name("\u{0410}DMIN").is_err());
        assert!(validate_name("\u{0455}erver").is_err());
    }

    #[test]
    fn latin_mixed_with_greek_or_greek_with_cyrillic_is_refused() {
        assert_eq!(validate_name("b\u{03BF}b"), Err(NameError::MixedScripts));
        assert_eq!(validate_name("Ив\u{03B1}н"), Err(NameError::MixedScripts));
        assert_eq!(validate_name("𝖺\u{0430}"), Err(NameError::MixedScripts));
    }

    #[test]
    fn look_alikes_across_whole_scripts_fold_together() {
        assert_eq!(fold_name("сосо"), fold_name("coco"));
        assert_eq!(fold_name("ТОМ"), fold_name("том"));
        assert_eq!(fold_name("ТОМ"), fold_name("tom"));
    }

    #[test]
    fn letters_that_look_like_punctuation_are_refused() {
        for c in ['ǃ', 'ǀ', 'ǁ', 'ǂ', 'ʹ', 'ʺ', 'ʼ', 'ː', '꞉', 'ʔ', 'ͺ'] {
            assert_eq!(validate_name(&format!("bob{c}")), Err(NameError::BadChar(c)), "{c}");
        }
    }

    #[test]
    fn names_that_pass_for_the_server_are_kept() {
        for name in ["server", "Server_1", "CHATROOM", "con-sole", "System2", "admin", "ADMIN"] {
            assert_eq!(validate_name(name), Err(NameError::Reserved), "{name}");
        }
        assert_eq!(validate_name("servant"), Ok(()));
    }
}
