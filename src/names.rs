//! What a name may be, and when two names read alike: decided by Unicode's
//! own data, looked up here.
//!
//! A name starts every line its owner sends, so it must be seen (no blank or
//! mark-only names), typed (letters, digits, `_`, `-`: no spaces or `:` to
//! forge a notice or another user's line) and told apart (no two online that
//! read alike, none that reads as the server's).
//!
//! The tables are data files in `src/names/`, made from Unicode 15.0's own
//! files by `src/names/generate.py`, whose header says how and what each
//! holds: `keys.txt` (how each character reads: UTS #39's `confusables.txt`,
//! case folding, compatibility forms), `punctuation.txt` (letters that read
//! as punctuation), `scripts.txt` (`Scripts.txt`) and `marks.txt`
//! (`UnicodeData.txt`).
//!
//! Deliberately left out: cleaning the text first (`text::sanitize`, which
//! runs before [`check`]); who is online (the server's room); and, in keys,
//! the order of several marks on one letter (std has no normalisation, so
//! `e` + U+0323 + U+0301 and `e` + U+0301 + U+0323 stay two names).
//!
//! All of this is beyond the student's report, which says nothing of what a
//! name may be (`examples/report_server.py` takes any line as a name).

use crate::text::{self, Table};

/// The longest name, in characters (not bytes: a name in Greek or Japanese
/// gets as many letters as one in English). 24 fits a first and last name and
/// keeps `/who` readable.
pub const MAX_NAME_CHARS: usize = 24;

/// Names kept for the server, compared by key and by their letters alone
/// (`Server_1`, `ADMIN`, `𝕊𝔼ℝ𝕍𝔼ℝ` and `adm1n` are kept too): a user called
/// `server` saying `server: the room closes now` would pass for the server.
pub const RESERVED_NAMES: [&str; 5] = ["server", "chatroom", "console", "system", "admin"];

/// The scripts one name may mix, besides one script alone: UTS #39's "highly
/// restrictive" level, where Latin goes with the scripts of Japanese, Chinese
/// and Korean. Characters of no one script (digits, `_`, most marks: Common
/// and Inherited) go with any.
const SCRIPT_MIXES: [&[&str]; 3] = [
    &["Latin", "Han", "Hiragana", "Katakana"],
    &["Latin", "Han", "Bopomofo"],
    &["Latin", "Han", "Hangul"],
];

/// How each character a name may hold reads, where not as itself.
static KEYS: Table = Table::new(include_str!("names/keys.txt"));
/// The letters that read as ASCII punctuation or hold a space (`ǃ`, `ː`).
static PUNCTUATION: Table = Table::new(include_str!("names/punctuation.txt"));
/// The script of each letter or digit, but Common and Inherited ones.
static SCRIPTS: Table = Table::new(include_str!("names/scripts.txt"));
/// The combining marks: General_Category Mn, Mc and Me.
static MARKS: Table = Table::new(include_str!("names/marks.txt"));

/// Why a name was refused. Each is answered with `! ` and the user tries again.
#[derive(Debug, PartialEq, Eq)]
pub enum NameError {
    /// Not a single letter: empty, or only digits, `_`, `-` (and marks).
    Empty,
    /// A name the room would read as the server's (see [`RESERVED_NAMES`]).
    Reserved,
    TooLong,
    /// A character a name may not hold, or not there: a mark with no letter
    /// before it, a letter that reads as punctuation, an invisible one.
    BadChar(char),
    /// Scripts mixed beyond [`SCRIPT_MIXES`]: `аlice` with a Cyrillic `а`.
    MixedScripts,
}

/// Checks a cleaned, trimmed name, and gives the key that keeps names
/// unique: two names with one key read alike, and cannot both be online.
///
/// A name is 1 to [`MAX_NAME_CHARS`] characters, each a letter or digit of
/// any script, `_` or `-`, or a combining mark after a letter (some keyboards
/// type `é` as `e` then U+0301; Hindi needs its vowel signs and virama); at
/// least one a letter; no letter that reads as punctuation; scripts mixed
/// only as [`SCRIPT_MIXES`] allows. Letters of every script are allowed
/// because a class is not only English speakers.
pub fn check(name: &str) -> Result<String, NameError> {
    if !name.chars().any(|c| c.is_alphabetic() && !is_mark(c)) {
        return Err(NameError::Empty);
    }
    // Digits read as letters (`adm1n`), yet a digit after a name is a suffix
    // (`Server_1`): either reading may not give a reserved name.
    let letters = |s: &str| -> String { s.chars().filter(|c| c.is_alphabetic()).collect() };
    let readings = [key(&letters(name)), letters(&key(name))];
    if RESERVED_NAMES.iter().any(|reserved| readings.contains(&key(reserved))) {
        return Err(NameError::Reserved);
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(NameError::TooLong);
    }
    let mut previous = ' ';
    for c in name.chars() {
        // A mark draws on the letter before it: alone it shows nothing, or
        // sits on the `:` after the name.
        let after_letter = previous.is_alphabetic() || is_mark(previous);
        let allowed =
            if is_mark(c) { after_letter } else { c.is_alphanumeric() || "_-".contains(c) };
        if !allowed || PUNCTUATION.get(c).is_some() || text::is_invisible(c) {
            return Err(NameError::BadChar(c));
        }
        previous = c;
    }
    // One script, or a mix that UTS #39 allows.
    let scripts: Vec<&str> = name.chars().filter_map(|c| SCRIPTS.get(c)).collect();
    let in_mix = |mix: &&[&str]| scripts.iter().all(|script| mix.contains(script));
    if !scripts.windows(2).all(|two| two[0] == two[1]) && !SCRIPT_MIXES.iter().any(in_mix) {
        return Err(NameError::MixedScripts);
    }
    Ok(key(name))
}

/// Gives the key of any text, valid name or not (for `/msg` and `/kick`
/// lookups): each character as it reads ([`KEYS`]), one after the other.
///
/// So `Server`, `𝕊𝔼ℝ𝕍𝔼ℝ` (mathematical letters) and `ꓢꓰꓣꓦꓰꓣ` (Lisu) all
/// read `server`, `é` and `e` + U+0301 read alike, and so do `Straße` and
/// `STRASSE`. Capital `I` looks like `l` but is the capital of `i`, so `I`,
/// `l`, `1` and `i` read alike (`alice`, `ALICE`, `aIice`; also `Iris` and
/// `lris`). Where else a capital and its small letter look like two Latin
/// letters (Greek `Ν` like `N`, `ν` like `v`), each keeps its own reading:
/// `Dave` and `Dane` stay two names (`src/names/generate.py` says more).
pub fn key(name: &str) -> String {
    name.chars().map(|c| KEYS.get(c).map_or_else(|| c.to_string(), str::to_string)).collect()
}

/// Gives the form names are sorted by in `/who` and the welcome: upper case,
/// then lower (`Straße` and `STRASSE` meet), compared by code point.
pub fn sort_key(name: &str) -> String {
    name.to_uppercase().to_lowercase()
}

/// Tells whether `c` is a combining mark, drawn on the character before it.
fn is_mark(c: char) -> bool {
    MARKS.get(c).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_of_24_chars_is_accepted() {
        assert!(check(&"a".repeat(24)).is_ok());
    }

    #[test]
    fn name_of_25_chars_is_refused() {
        assert_eq!(check(&"a".repeat(25)), Err(NameError::TooLong));
    }

    #[test]
    fn name_length_counts_characters_not_bytes() {
        assert!(check(&"è".repeat(24)).is_ok());
    }

    #[test]
    fn empty_name_is_refused() {
        assert_eq!(check(""), Err(NameError::Empty));
    }

    #[test]
    fn name_in_any_script_with_underscore_and_dash_is_accepted() {
        assert!(check("Zoë_日本-42").is_ok());
        for name in ["Иван", "Ελένη", "नमस्ते", "สมชาย", "مریم", "שרה", "Kɔfi", "Nguyễn"]
        {
            assert!(check(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn name_with_space_or_colon_is_refused() {
        assert_eq!(check("a b"), Err(NameError::BadChar(' ')));
        assert_eq!(check("bob:"), Err(NameError::BadChar(':')));
    }

    #[test]
    fn name_of_hangul_fillers_is_refused_as_blank() {
        let blank = text::sanitize("\u{115F}\u{1160}\u{3164}\u{FFA0}");
        assert_eq!(check(&blank), Err(NameError::Empty));
    }

    #[test]
    fn invisible_characters_are_refused_even_unsanitised() {
        assert_eq!(check("bo\u{3164}b"), Err(NameError::BadChar('\u{3164}')));
        assert_eq!(check("क्\u{200D}ष"), Err(NameError::BadChar('\u{200D}')));
    }

    #[test]
    fn name_without_a_letter_is_refused() {
        assert_eq!(check("42"), Err(NameError::Empty));
        assert_eq!(check("_-_"), Err(NameError::Empty));
        assert!(check("r2d2").is_ok());
    }

    #[test]
    fn names_that_read_the_same_fold_the_same() {
        assert_eq!(key("Straße"), key("STRASSE"));
        assert_eq!(key("ıvan"), key("Ivan"));
        assert_eq!(key("oﬃce"), key("office"));
    }

    #[test]
    fn names_compare_case_insensitively() {
        assert_eq!(key("ALICE"), key("alice"));
        assert_eq!(key("ÉLODIE"), key("élodie"));
        assert_eq!(key("ИВАН"), key("иван"));
        assert_eq!(key("ΣΟΦΙΑ"), key("σοφια"));
    }

    #[test]
    fn a_combining_accent_after_a_letter_is_part_of_a_name() {
        assert!(check("Jose\u{301}").is_ok());
        assert!(check("e\u{301}\u{323}va").is_ok());
        assert_eq!(check("\u{301}eva"), Err(NameError::BadChar('\u{301}')));
        assert_eq!(check("a_\u{301}"), Err(NameError::BadChar('\u{301}')));
    }

    #[test]
    fn a_name_may_not_start_with_a_combining_mark() {
        // Each is alphabetic to std, and was once a whole name: `: I am nobody`.
        for mark in ['\u{0345}', '\u{064B}', '\u{05B0}', '\u{0E31}', '\u{093F}', '\u{094D}'] {
            assert_eq!(check(&mark.to_string()), Err(NameError::Empty), "{mark:?}");
            let name = format!("{mark}bob");
            assert_eq!(check(&name), Err(NameError::BadChar(mark)), "{mark:?}");
            assert_eq!(check(&format!("4{mark}b")), Err(NameError::BadChar(mark)));
        }
    }

    #[test]
    fn marks_after_a_letter_are_allowed_in_every_script() {
        // Sinhala ශ්‍රී (Sri) is written here without its ZWJ: a name holds none.
        let names = ["नमस्ते", "क्षत्रिय", "ਪੰਜਾਬ", "தமிழ்", "ශ්රී", "ศึกษา", "מֹשֶׁה", "مُحَمَّد"];
        for name in names {
            assert!(check(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn fullwidth_math_and_small_capital_letters_fold_to_plain() {
        for name in ["ａｌｉｃｅ", "ＡＬＩＣＥ", "𝖺𝗅𝗂𝖼𝖾", "𝐀𝐥𝐢𝐜𝐞", "𝒂𝒍𝒊𝒄𝒆", "𝚊𝚕𝚒𝚌𝚎", "ᴀʟɪᴄᴇ"]
        {
            assert_eq!(key(name), key("alice"), "{name}");
            assert!(check(name).is_ok(), "{name}");
        }
        assert_eq!(key("𝟘𝟙𝟚"), key("012"));
        // confusables.txt reads ʙ, ʀ, ᴜ, ᴏ as b, r, u, o, but has no reading
        // for the small capital ɴ: it is no n, so ʙʀᴜɴᴏ (and ᴀᴅᴍɪɴ) is a
        // name of its own.
        assert_ne!(key("ʙʀᴜɴᴏ"), key("bruno"));
    }

    #[test]
    fn styled_server_names_are_reserved() {
        for name in ["𝗌𝖾𝗋𝗏𝖾𝗋", "ｓｅｒｖｅｒ", "ᴀᴅᴍɪn", "𝐒𝐲𝐬𝐭𝐞𝐦", "adm1n", "c0ns0le", "ЅҮЅТЕМ"]
        {
            assert_eq!(check(name), Err(NameError::Reserved), "{name}");
        }
    }

    #[test]
    fn capital_i_small_l_and_digit_one_fold_together() {
        assert_eq!(key("aIice"), key("alice"));
        assert_eq!(key("a1ice"), key("alice"));
        assert_eq!(key("bob0"), key("BOBO"));
        assert_ne!(key("bob"), key("bod"));
    }

    #[test]
    fn latin_mixed_with_cyrillic_is_refused() {
        assert_eq!(check("\u{0430}lice"), Err(NameError::MixedScripts));
        assert_eq!(check("Ива\u{006E}"), Err(NameError::MixedScripts));
        // Mixed and reserved: refused either way.
        assert!(check("\u{0410}DMIN").is_err());
        assert!(check("\u{0455}erver").is_err());
    }

    #[test]
    fn latin_mixed_with_greek_or_greek_with_cyrillic_is_refused() {
        assert_eq!(check("b\u{03BF}b"), Err(NameError::MixedScripts));
        assert_eq!(check("Ив\u{03B1}н"), Err(NameError::MixedScripts));
        // Mathematical letters are of no script (Common): `𝖺` with a Cyrillic
        // `а` is one script, and reads as `aa`, so it cannot meet `aa` online.
        assert_eq!(check("𝖺\u{0430}"), Ok(key("aa")));
    }

    #[test]
    fn look_alikes_across_whole_scripts_fold_together() {
        assert_eq!(key("сосо"), key("coco"));
        assert_eq!(key("ТОМ"), key("том"));
        assert_eq!(key("ТОМ"), key("tom"));
    }

    #[test]
    fn letters_that_look_like_punctuation_are_refused() {
        for c in ['ǃ', 'ʹ', 'ʺ', 'ʼ', 'ː', '꞉', 'ʔ', 'ꓽ', 'ꞌ', 'Ɂ'] {
            assert_eq!(check(&format!("bob{c}")), Err(NameError::BadChar(c)), "{c}");
        }
    }

    #[test]
    fn names_that_pass_for_the_server_are_kept() {
        for name in ["server", "Server_1", "CHATROOM", "con-sole", "System2", "admin", "ADMIN"] {
            assert_eq!(check(name), Err(NameError::Reserved), "{name}");
        }
        assert!(check("servant").is_ok());
    }
    #[test]
    fn look_alikes_of_reserved_words_in_any_script_or_style_are_kept() {
        // Lisu, Cherokee, double-struck, script, Fraktur, bold Greek and math
        // capitals, Latin alpha, Armenian o: each reads as a reserved word.
        let names =
            ["ꓢꓰꓣꓦꓰꓣ", "ᏚᎬᎡᏙᎬᎡ", "𝕊𝔼ℝ𝕍𝔼ℝ", "𝓈ℯ𝓇𝓋ℯ𝓇", "ℭ𝔥𝔞𝔱𝔯𝔬𝔬𝔪", "𝚨𝐃𝐌𝐈𝐍", "ɑdmin", "cօnsօle"];
        for name in names {
            assert_eq!(check(name), Err(NameError::Reserved), "{name}");
        }
    }

    #[test]
    fn confusable_names_have_one_key() {
        let pairs = [
            ("alice", "ɑlice"),
            ("alice", "aℓice"),
            ("alice", "aⅼice"),
            ("bob", "bօb"),
            ("bob", "b०b"),
            ("eva", "ενα"),
            ("coco", "ϲοϲο"),
            ("tom", "t𝛐m"),
            ("ANNA", "𝚨NN𝚨"),
        ];
        for (name, look_alike) in pairs {
            assert_eq!(key(name), key(look_alike), "{name} and {look_alike}");
        }
    }

    #[test]
    fn precomposed_and_combined_accents_have_one_key() {
        assert_eq!(key("José"), key("Jose\u{301}"));
        assert_eq!(key("Ελένη"), key("Ελε\u{301}νη"));
    }

    #[test]
    fn letters_that_read_as_letters_are_letters() {
        // confusables.txt reads the click letters ǀ and ǁ as l and ll, and the
        // Greek ypogegrammeni ͺ as i: no punctuation, and one key with those.
        assert_eq!(check("bobǀ"), Ok(key("bobl")));
        assert_eq!(check("bobǁ"), Ok(key("bobll")));
        assert_eq!(check("ͺ"), Ok(key("i")));
    }

    #[test]
    fn a_letter_of_another_script_in_a_latin_name_is_refused() {
        // ᐟ (Canadian syllabics) reads as itself, but may not join Latin.
        assert_eq!(check("bobᐟeve"), Err(NameError::MixedScripts));
    }

    #[test]
    fn letters_that_read_as_punctuation_in_their_own_script_are_letters() {
        // Hebrew yod reads as `'` and Katakana ノ as `/`, but among letters
        // of their own script they are letters: Daniel, Noah.
        assert_eq!(check("דניאל").map(drop), Ok(()));
        assert_eq!(check("ノア").map(drop), Ok(()));
    }

    #[test]
    fn latin_with_the_scripts_of_japanese_chinese_and_korean_may_mix() {
        for name in ["Kenji_けんじ", "Mei_美ベイ", "Li_李ㄌㄧ", "Minjun_민준金"] {
            assert_eq!(check(name).map(drop), Ok(()), "{name}");
        }
        assert_eq!(check("けんじ민준"), Err(NameError::MixedScripts));
        assert_eq!(check("Omar_عمر"), Err(NameError::MixedScripts));
    }

    #[test]
    fn capitals_and_small_letters_that_read_as_two_latin_letters_stay_two() {
        // Greek capital Ν reads N, its small ν reads v: ΝΙΝΑ meets NINA and
        // νινα meets viva, but n and v stay apart, so Dave and Dane do too.
        assert_eq!(key("ΝΙΝΑ"), key("NINA"));
        assert_eq!(key("νινα"), key("viva"));
        assert_ne!(key("ΝΙΝΑ"), key("νινα"));
        assert_ne!(key("Dave"), key("Dane"));
    }
}
