//! Text cleaned so it is safe to show on another person's terminal, and the
//! reader of the Unicode tables that this file and `names.rs` look up.
//!
//! Every chat line, `/msg` and name passes through [`sanitize`] on the server,
//! and every line the client prints passes again (in case the server is not
//! ours): no line can move the cursor, recolour or clear the screen, forge a
//! line of its own, or hide words in characters that show nothing.
//!
//! Which characters are invisible, emoji or letters that need a joiner is
//! Unicode's data, not code: the tables in `src/text/` are made from Unicode
//! 15.0's own files by `src/text/generate.py` (its header says how), and read
//! by [`Table`].
//!
//! Deliberately left out: reading a line (its byte limit, bad UTF-8), what a
//! name may be (`names.rs`), look-alike letters of other scripts (real text
//! that a class writing in Russian needs) and normalisation (std has none).
//!
//! All of this is beyond the student's report, which does not say what is
//! done to a line (`examples/report_server.py` sends it on as it arrived).

use std::sync::OnceLock;

/// A Unicode table: a data file of lines `CODE ; VALUE` or `FIRST..LAST ;
/// VALUE` (code points in hexadecimal, in order; `#` starts a comment line),
/// built into the program with `include_str!` and parsed the first time it is
/// asked (a `OnceLock` holds the parsed ranges from then on).
pub struct Table {
    data: &'static str,
    ranges: OnceLock<Vec<(u32, u32, &'static str)>>,
}

impl Table {
    /// Makes a table of `data`, the text of its file, to be parsed when first
    /// asked.
    pub const fn new(data: &'static str) -> Table {
        Table { data, ranges: OnceLock::new() }
    }

    /// Looks `c` up: the value of the range that holds it, if one does (a
    /// binary search, as the ranges are in order).
    pub fn get(&self, c: char) -> Option<&'static str> {
        let ranges = self.ranges.get_or_init(|| self.data.lines().filter_map(range).collect());
        let i = ranges.partition_point(|&(_, last, _)| last < c as u32);
        ranges.get(i).filter(|&&(first, _, _)| first <= c as u32).map(|&(_, _, value)| value)
    }
}

/// Reads one line of a table as (first code point, last, value); nothing for
/// a comment. The files are ours, made by a script, so a line that does not
/// parse is skipped rather than reported.
fn range(line: &'static str) -> Option<(u32, u32, &'static str)> {
    let (codes, value) = line.split_once(" ; ").filter(|_| !line.starts_with('#'))?;
    let (first, last) = codes.split_once("..").unwrap_or((codes, codes));
    Some((u32::from_str_radix(first, 16).ok()?, u32::from_str_radix(last, 16).ok()?, value))
}

/// Makes text safe to print on another person's terminal, and trims its end
/// (its start is kept: pasted code keeps its indentation).
///
/// Removed: control characters (U+0000 to U+001F and U+007F to U+009F, what
/// `char::is_control` matches), among them ESC, which starts the sequences that
/// move the cursor, change colours, clear the screen or retitle the window;
/// the line and paragraph separators U+2028 and U+2029, which a reader such as
/// Python's `splitlines()` takes for a new line, so one message could forge a
/// second; and the characters of [`is_invisible`], unless [`is_kept_joiner`]
/// keeps one. A tab becomes a space: people paste text with tabs and mean a
/// gap.
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        // The joiner rules look at what was kept before and what comes next:
        // a run of joiners thus keeps at most one, and hides nothing.
        let (before, after) = (out.chars().next_back(), chars.peek().copied());
        match c {
            '\t' => out.push(' '),
            '\u{2028}' | '\u{2029}' => {}
            c if c.is_control() => {}
            c if is_invisible(c) && !is_kept_joiner(c, before, after) => {}
            c => out.push(c),
        }
    }
    out.truncate(out.trim_end().len());
    out
}

/// What the server relays of a line, and the client shows of its own:
/// cleaned ([`sanitize`]), its long gaps cut ([`cut_gaps`]).
pub fn clean(text: &str) -> String {
    cut_gaps(&sanitize(text))
}

/// A run of blanks inside a line is cut to this many. A line padded with a
/// screen's width of blanks wraps its rest onto a row of its own, where on
/// `nc` or `telnet` it could pass for the server's (`* bob left`); eight is
/// a wide gap still. Leading blanks, indentation, are kept whole.
const MAX_GAP: usize = 8;

/// Tells whether `c` is a blank: a space of any width, General_Category `Zs`
/// (the no-break space U+00A0, the em space U+2003, the ideographic space
/// U+3000, ...), or the braille blank U+2800, a symbol that shows as a space.
/// Once [`sanitize`] has removed the controls and U+2028 and U+2029, the `Zs`
/// characters are exactly what `char::is_whitespace` (White_Space) matches.
fn is_blank(c: char) -> bool {
    c.is_whitespace() || c == '\u{2800}'
}

/// `text` (already cleaned) with every run of blanks after its first word
/// cut: what the server relays, and what the client shows of its own line.
/// The client wraps lines itself (`terminal.rs`).
///
/// A run of up to [`MAX_GAP`] blanks is kept as typed (a French no-break
/// space, a Japanese ideographic space); a longer one becomes [`MAX_GAP`]
/// plain spaces, not the first eight of what was there: the cap is about
/// width on screen, and blanks differ in width (U+3000 takes two columns, so
/// eight of them would be sixteen), while eight spaces are eight columns on
/// every terminal.
pub fn cut_gaps(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let start = out.trim_end_matches(is_blank).len();
        if !is_blank(c) || start == 0 || out[start..].chars().count() < MAX_GAP {
            out.push(c);
        } else {
            out.truncate(start);
            out.push_str(&" ".repeat(MAX_GAP));
        }
    }
    out
}

/// The three invisible characters that some real text cannot do without, in
/// the one place each is needed:
///
/// - ZWNJ (U+200C) and ZWJ (U+200D) between two letters of Arabic (Persian
///   writes `می‌خواهم` with a ZWNJ) or of an Indic script (ZWJ after a virama
///   asks for a half form: `क्‍ष`). Unicode's UAX #31, section 2.3 "Layout
///   and Format Control Characters" (Unicode 15.0), allows the joiners in
///   identifiers only there (after a virama; ZWNJ between joining Arabic
///   letters); this rule is a little more generous: any letter of these
///   scripts, or a virama, on both sides.
/// - ZWJ between two emoji, which makes one picture of them (`👩‍💻` is
///   U+1F469 ZWJ U+1F4BB), and VS16 (U+FE0F) right after an emoji, which asks
///   for its colour form (`❤️` is U+2764 U+FE0F): UTS #51 (Unicode Emoji,
///   version 15.0), "Emoji ZWJ Sequences" and "Emoji Presentation Sequences".
///
/// Anywhere else they only hide text or split words, so they go.
fn is_kept_joiner(c: char, before: Option<char>, after: Option<char>) -> bool {
    let (before, after) = (before.unwrap_or(' '), after.unwrap_or(' '));
    let joins_letters = |c| JOINERS.get(c).is_some();
    let is_emoji = |c| EMOJI.get(c).is_some();
    match c {
        '\u{200C}' | '\u{200D}' if joins_letters(before) && joins_letters(after) => true,
        // A VS16 kept after an emoji still belongs to it: `❤️‍🔥`.
        '\u{200D}' => (is_emoji(before) || before == '\u{FE0F}') && is_emoji(after),
        '\u{FE0F}' => is_emoji(before),
        _ => false,
    }
}

/// The letters and viramas of Arabic and the Indic scripts from Devanagari
/// to Sinhala, between which ZWNJ and ZWJ are kept.
static JOINERS: Table = Table::new(include_str!("text/joiners.txt"));

/// The pictographs (Extended_Pictographic) and skin tones (Emoji_Modifier)
/// that a ZWJ may join into one picture.
static EMOJI: Table = Table::new(include_str!("text/emoji.txt"));

/// Unicode's `Default_Ignorable_Code_Point` (see [`is_invisible`]).
static INVISIBLE: Table = Table::new(include_str!("text/invisible.txt"));

/// Characters that show nothing by themselves: removed, so that what you
/// read is what was sent.
///
/// This is Unicode's `Default_Ignorable_Code_Point` property
/// (`src/text/invisible.txt`). Among them:
///
/// | characters | what they do |
/// |---|---|
/// | U+061C, U+200E, U+200F, U+202A to U+202E, U+2066 to U+2069 | bidi controls: U+202E shows `txt.exe` as `exe.txt` |
/// | U+200B to U+200D, U+2060, U+FEFF | zero-width characters: hide text, split words so filters miss them |
/// | U+115F, U+1160, U+3164, U+FFA0 | Hangul fillers: letters that look like nothing, so a name of them looks blank |
/// | U+00AD, U+034F, U+180E, U+2061 to U+2064 | soft hyphen, grapheme joiner, invisible operators |
/// | U+FE00 to U+FE0F, U+E0100 to U+E01EF | variation selectors |
/// | U+E0000 to U+E0FFF | tags: a whole invisible message can be spelled in them |
///
/// [`sanitize`] still keeps three of them where real text needs them: ZWNJ,
/// ZWJ and VS16 (see `is_kept_joiner`).
pub fn is_invisible(c: char) -> bool {
    INVISIBLE.get(c).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c0_control_characters_are_removed() {
        assert_eq!(sanitize("a\x00b\x07c\x1b[31md\x1f"), "abc[31md");
    }

    #[test]
    fn delete_and_c1_control_characters_are_removed() {
        assert_eq!(sanitize("a\u{7f}b\u{80}c\u{9b}d\u{9f}e"), "abcde");
    }

    #[test]
    fn line_and_paragraph_separators_are_removed() {
        // Python's `splitlines()` splits on both: a transcript showed a forged line.
        assert_eq!(sanitize("hi\u{2028}* server: closing\u{2029}!"), "hi* server: closing!");
    }

    /// The invisible characters of `is_invisible`, each on its own.
    const INVISIBLE: [char; 16] = [
        '\u{061C}', '\u{200B}', '\u{200C}', '\u{200D}', '\u{200E}', '\u{200F}', '\u{202A}',
        '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2060}', '\u{2066}', '\u{2067}',
        '\u{2068}', '\u{2069}',
    ];

    #[test]
    fn each_bidi_and_zero_width_character_is_removed() {
        for c in INVISIBLE.into_iter().chain(['\u{FEFF}']) {
            assert_eq!(sanitize(&format!("a{c}b")), "ab", "U+{:04X}", c as u32);
        }
    }

    /// Every range of Unicode 15.0's Default_Ignorable_Code_Point, as listed
    /// in DerivedCoreProperties.txt (unmerged), with a neighbour outside it.
    const IGNORABLE: [(u32, u32); 27] = [
        (0x00AD, 0x00AD),
        (0x034F, 0x034F),
        (0x061C, 0x061C),
        (0x115F, 0x1160),
        (0x17B4, 0x17B5),
        (0x180B, 0x180D),
        (0x180E, 0x180E),
        (0x180F, 0x180F),
        (0x200B, 0x200F),
        (0x202A, 0x202E),
        (0x2060, 0x2064),
        (0x2065, 0x2065),
        (0x2066, 0x206F),
        (0x3164, 0x3164),
        (0xFE00, 0xFE0F),
        (0xFEFF, 0xFEFF),
        (0xFFA0, 0xFFA0),
        (0xFFF0, 0xFFF8),
        (0x1BCA0, 0x1BCA3),
        (0x1D173, 0x1D17A),
        (0xE0000, 0xE0000),
        (0xE0001, 0xE0001),
        (0xE0002, 0xE001F),
        (0xE0020, 0xE007F),
        (0xE0080, 0xE00FF),
        (0xE0100, 0xE01EF),
        (0xE01F0, 0xE0FFF),
    ];

    #[test]
    fn every_default_ignorable_code_point_is_removed() {
        for (first, last) in IGNORABLE {
            for code in first..=last {
                let c = char::from_u32(code).unwrap();
                assert_eq!(sanitize(&format!("a{c}b")), "ab", "U+{code:04X}");
            }
        }
    }

    #[test]
    fn a_whole_message_in_tag_characters_disappears() {
        let hidden: String =
            "hi".chars().map(|c| char::from_u32(0xE0000 + c as u32).unwrap()).collect();
        assert_eq!(sanitize(&format!("ok{hidden}")), "ok");
    }

    #[test]
    fn right_to_left_override_cannot_reverse_a_file_name() {
        assert_eq!(sanitize("invoice\u{202E}fdp.exe"), "invoicefdp.exe");
    }

    #[test]
    fn visible_neighbours_of_invisible_ranges_are_kept() {
        // Just outside the ranges: real characters that must survive. U+2029,
        // the paragraph separator, was on this list until issue 19 asked for it
        // to go (see `line_and_paragraph_separators_are_removed`): it is a line
        // break to some readers, not a loss of real text.
        for c in [
            '\u{061B}',
            '\u{2010}',
            '\u{202F}',
            '\u{205F}',
            '\u{2070}',
            '\u{00AC}',
            '\u{00AE}',
            '\u{3163}',
            '\u{3165}',
            '\u{FE10}',
            '\u{FFA1}',
            '\u{E1000}',
        ] {
            assert_eq!(sanitize(&format!("a{c}b")).chars().count(), 3, "U+{:04X}", c as u32);
        }
    }

    #[test]
    fn zwj_is_kept_between_devanagari_letters() {
        // क्‍ष: KA, VIRAMA, ZWJ, SSA (a half form of KA); and ZWJ, ZWNJ right
        // between two letters.
        for kept in ["क्\u{200D}ष", "क\u{200D}ष", "क्\u{200C}ष", "ක්\u{200D}ය"]
        {
            assert_eq!(sanitize(kept), kept);
        }
    }

    #[test]
    fn zwnj_is_kept_between_arabic_letters() {
        let persian = "می\u{200C}خواهم";
        assert_eq!(sanitize(persian), persian);
    }

    #[test]
    fn zwj_is_kept_between_emoji() {
        for kept in
            ["👩\u{200D}💻", "👩🏽\u{200D}💻", "❤\u{FE0F}\u{200D}🔥", "👨\u{200D}👩\u{200D}👧"]
        {
            assert_eq!(sanitize(kept), kept);
        }
    }

    #[test]
    fn vs16_after_an_emoji_is_kept() {
        assert_eq!(sanitize("I \u{2764}\u{FE0F} Rust"), "I \u{2764}\u{FE0F} Rust");
        assert_eq!(sanitize("\u{1F44D}\u{FE0F}"), "\u{1F44D}\u{FE0F}");
    }

    #[test]
    fn joiners_are_removed_anywhere_else() {
        // Latin, one side only, at the ends, next to a space or a digit, and
        // any run of them: at most one survives, and only between two letters.
        let cases = [
            ("a\u{200D}b", "ab"),
            ("a\u{200C}b", "ab"),
            ("क\u{200D}b", "कb"),
            ("\u{200D}क", "क"),
            ("क\u{200D}", "क"),
            ("क \u{200D}ष", "क ष"),
            ("क\u{200D}१", "क१"),
            ("क\u{200D}\u{200D}\u{200D}ष", "क\u{200D}ष"),
            ("👩\u{200C}💻", "👩💻"),
            ("👩\u{200D}a", "👩a"),
            ("a\u{FE0F}", "a"),
            ("\u{2764}\u{FE0F}\u{FE0F}\u{FE0F}", "\u{2764}\u{FE0F}"),
            ("\u{2764}\u{FE0E}", "\u{2764}"),
            ("\u{FE0F}\u{2764}", "\u{2764}"),
        ];
        for (sent, shown) in cases {
            assert_eq!(sanitize(sent), shown, "{sent:?}");
        }
    }

    #[test]
    fn right_to_left_text_itself_is_kept() {
        assert_eq!(sanitize("שלום مرحبا"), "שלום مرحبا");
    }

    #[test]
    fn tab_becomes_space() {
        assert_eq!(sanitize("a\tb"), "a b");
    }

    #[test]
    fn only_trailing_whitespace_is_trimmed() {
        // Leading spaces are indentation: pasted code keeps it.
        assert_eq!(sanitize("  \t hi there \r"), "    hi there");
    }

    #[test]
    fn printable_text_is_untouched() {
        assert_eq!(sanitize("ciao, è già ½ 日本"), "ciao, è già ½ 日本");
    }

    #[test]
    fn a_long_gap_inside_a_line_is_cut_to_eight_spaces() {
        let padded = format!("   hi{}* bob left", " ".repeat(70));
        assert_eq!(cut_gaps(&padded), format!("   hi{}* bob left", " ".repeat(8)));
        assert_eq!(cut_gaps(&format!("{}x", " ".repeat(20))), format!("{}x", " ".repeat(20)));
    }
    #[test]
    fn a_long_run_of_any_blank_is_cut_to_eight_spaces() {
        // No-break, em, figure and ideographic spaces, and the braille blank.
        for blank in ['\u{00A0}', '\u{2003}', '\u{2007}', '\u{2800}', '\u{3000}'] {
            let padded = format!("hi{}* bob left", blank.to_string().repeat(30));
            let cut = format!("hi{}* bob left", " ".repeat(8));
            assert_eq!(cut_gaps(&padded), cut, "U+{:04X}", blank as u32);
        }
    }

    #[test]
    fn a_long_run_of_mixed_blanks_is_cut_to_eight_spaces() {
        let mixed = " \u{00A0}\u{2003}\u{3000}\u{2800}".repeat(4);
        assert_eq!(cut_gaps(&format!("a{mixed}b")), format!("a{}b", " ".repeat(8)));
    }

    #[test]
    fn short_runs_of_blanks_and_indentation_are_kept_as_typed() {
        // A French no-break space, a Japanese ideographic space, indentation.
        for kept in ["Bonjour\u{00A0}!", "東京\u{3000}大阪", "\u{3000}\u{3000}\u{3000}x"] {
            assert_eq!(cut_gaps(kept), kept);
        }
        let eight = format!("a{}b", "\u{3000}".repeat(8));
        assert_eq!(cut_gaps(&eight), eight);
        let indented = format!("{}x", "\u{2003}".repeat(20));
        assert_eq!(cut_gaps(&indented), indented);
    }
    #[test]
    fn a_table_gives_the_value_of_the_range_a_character_is_in() {
        let table = Table::new("# a comment ; not a range\n0041..005A ; Latin\n00C0 ; grave\n");
        assert_eq!(table.get('A'), Some("Latin"));
        assert_eq!(table.get('Z'), Some("Latin"));
        assert_eq!(table.get('À'), Some("grave"));
        for outside in ['@', '[', 'Á', '#'] {
            assert_eq!(table.get(outside), None, "{outside}");
        }
    }
}
