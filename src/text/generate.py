#!/usr/bin/env python3
"""Regenerates the Unicode tables that src/text.rs reads: invisible.txt,
emoji.txt and joiners.txt, in this folder. A tool for maintainers, not part of
the program (chatroom reads the .txt files, built in with include_str!).

    python3 src/text/generate.py DerivedCoreProperties.txt emoji-data.txt \\
        Scripts.txt IndicSyllabicCategory.txt

Where to get them, all of one Unicode version (the tables here are 15.0.0):
unicode.org/Public/15.0.0/ucd/ (emoji-data.txt in its emoji/ folder), or
Debian's package unicode-data 15.0.0 (they land in /usr/share/unicode/).

- invisible.txt: Default_Ignorable_Code_Point (DerivedCoreProperties.txt),
  the characters that show nothing by themselves.
- emoji.txt: Extended_Pictographic and Emoji_Modifier (emoji-data.txt), what
  may stand on either side of a ZWJ in an emoji sequence (UTS #51).
- joiners.txt: the letters (Alphabetic) and viramas (Indic_Syllabic_Category
  Virama) of Arabic and of the Indic scripts from Devanagari to Sinhala, the
  scripts that need ZWNJ and ZWJ between letters (UAX #31, section 2.3).
"""
import sys
from pathlib import Path

HERE = Path(__file__).parent
JOINING_SCRIPTS = ("Arabic", "Devanagari", "Bengali", "Gurmukhi", "Gujarati", "Oriya",
                   "Tamil", "Telugu", "Kannada", "Malayalam", "Sinhala")


def property_codes(path, *names):
    """Each code point given one of the property values `names`, with the value."""
    values = {}
    for line in open(path, encoding="utf-8"):
        fields = [field.strip() for field in line.split("#")[0].split(";")]
        if len(fields) == 2 and fields[1] in names:
            first, _, last = fields[0].partition("..")
            for code in range(int(first, 16), int(last or first, 16) + 1):
                values[code] = fields[1]
    return values


def version(path):
    """The Unicode version in a file's header (`# Scripts-15.0.0.txt`)."""
    return open(path, encoding="utf-8").readline().split("-")[-1].removesuffix(".txt\n")


def write(name, source, about, values):
    """Writes runs of consecutive code points with one value, under a header."""
    runs = []
    for code in sorted(values):
        if runs and runs[-1][1] == code - 1 and runs[-1][2] == values[code]:
            runs[-1][1] = code
        else:
            runs.append([code, code, values[code]])
    rows = [(f"{a:04X}" if a == b else f"{a:04X}..{b:04X}") + f" ; {v}" for a, b, v in runs]
    header = [f"# {name}: {about}", f"# Made by generate.py (in this folder) from {source}.",
              "# Lines are `CODE ; VALUE` or `FIRST..LAST ; VALUE`, code points in hexadecimal.", "#"]
    (HERE / name).write_text("\n".join(header + rows) + "\n", encoding="utf-8")
    print(f"{name}: {len(rows)} lines")


def main(derived, emoji_data, scripts, indic):
    ucd = version(scripts)
    write("invisible.txt", f"DerivedCoreProperties.txt of Unicode {ucd}",
          "the characters that show nothing by themselves (Default_Ignorable_Code_Point)",
          property_codes(derived, "Default_Ignorable_Code_Point"))
    write("emoji.txt", f"emoji-data.txt of Unicode {ucd}", "pictographs and skin tones, "
          "what a ZWJ may join (Extended_Pictographic, Emoji_Modifier)",
          property_codes(emoji_data, "Extended_Pictographic", "Emoji_Modifier"))
    letters = set(property_codes(derived, "Alphabetic")) | set(property_codes(indic, "Virama"))
    write("joiners.txt", f"Scripts.txt, DerivedCoreProperties.txt and "
          f"IndicSyllabicCategory.txt of Unicode {ucd}", "the letters and viramas between "
          "which ZWNJ and ZWJ are kept (Arabic and the Indic scripts)",
          {code: script for code, script in property_codes(scripts, *JOINING_SCRIPTS).items()
           if code in letters})


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    main(*sys.argv[1:])
