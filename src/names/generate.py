#!/usr/bin/env python3
"""Regenerates the Unicode tables that src/names.rs reads: keys.txt,
punctuation.txt, scripts.txt and marks.txt, in this folder. A tool for
maintainers, not part of the program (chatroom reads the .txt files, built in
with include_str!).

    python3 src/names/generate.py UnicodeData.txt DerivedCoreProperties.txt \\
        Scripts.txt CaseFolding.txt confusables.txt

Where to get them, all of one Unicode version (the tables here are 15.0.0):
- UnicodeData.txt, DerivedCoreProperties.txt, Scripts.txt, CaseFolding.txt:
  unicode.org/Public/15.0.0/ucd/, or Debian's package unicode-data 15.0.0
  (they land in /usr/share/unicode/);
- confusables.txt (UTS #39, Unicode Security Mechanisms):
  unicode.org/Public/security/15.0.0/.
Run it with a Python whose unicodedata has that same version (Python 3.12 has
15.0.0): NFD and NFKD come from it, and the script refuses another.

The tables hold only characters a name may hold (letters, digits, combining
marks, `_` and `-`: any other is refused before it is looked up):
- marks.txt: the combining marks, General_Category Mn, Mc, Me (UnicodeData.txt).
- scripts.txt: each one's Script (Scripts.txt), but Common and Inherited ones
  (digits, `_`, most marks), which go with any script.
- keys.txt: how each reads, where not as itself; a name's key is its
  characters' readings one after the other. A character reads as its UTS #39
  skeleton (confusables.txt, after NFD), then in its compatibility form
  (NFKD: fullwidth s is s), case folded (CaseFolding.txt, statuses C and F:
  S is s, ß is ss) and as a skeleton again, until that changes nothing: so 𝕊,
  Lisu ꓢ and Cherokee Ꮪ all read as s.
- punctuation.txt: the letters that read as ASCII punctuation (ǃ as !, ː as
  :) or hold a space, which could forge the `: ` after a name.

Case and look can disagree: capital I looks like l, but its small letter is
i. Where a capital and its small letter read differently, their readings are
made one (ε reads as e, because Ε looks like E), unless that would make two
plain Latin letters or digits one: Greek Ν looks like N and its small ν like
v, and n and v are kept apart (Dave and Dane stay two names), so ΝΙΝΑ and
νινα, which no one takes for each other, are two names. A Latin capital's
readings are always made one, so that case never splits a Latin name: that
makes i and l one letter (Alice = ALICE = AIice; Iris = lris too).

Left out: the 11,172 Hangul syllables, each of which reads as its jamo (NFD)
and would take a line; chatroom reads a syllable as itself.
"""
import sys
import unicodedata
from pathlib import Path

HERE = Path(__file__).parent
PLAIN = set("abcdefghijklmnopqrstuvwxyz0123456789")


def lines(path):
    """The data lines of a Unicode file, split at `;`, comments dropped."""
    for line in open(path, encoding="utf-8"):
        line = line.split("#")[0].strip()
        if line:
            yield [field.strip() for field in line.split(";")]


def codes(field):
    """The code points of a field such as `0041..005A` or `00C5`."""
    first, _, last = field.partition("..")
    return range(int(first, 16), int(last or first, 16) + 1)


def text(field):
    """The characters of a field such as `0073 0073`."""
    return "".join(chr(int(code, 16)) for code in field.split())


def categories(unicode_data):
    """The General_Category of every assigned code point."""
    category, first = {}, None
    for fields in lines(unicode_data):
        code = int(fields[0], 16)
        # Ranges (CJK ideographs, Hangul syllables) are a First and a Last row.
        if fields[1].endswith("First>"):
            first = code
        elif fields[1].endswith("Last>"):
            category.update({c: fields[2] for c in range(first, code + 1)})
        else:
            category[code] = fields[2]
    return category


def row(first, last, value):
    """One line of a table."""
    return (f"{first:04X}" if first == last else f"{first:04X}..{last:04X}") + f" ; {value}"


def runs(values):
    """The rows of runs of consecutive code points that have one value."""
    spans = []
    for code in sorted(values):
        if spans and spans[-1][1] == code - 1 and spans[-1][2] == values[code]:
            spans[-1][1] = code
        else:
            spans.append([code, code, values[code]])
    return [row(*span) for span in spans]


def write(name, sources, about, rows):
    """Writes a table: a header naming its sources, then one row a line."""
    header = [f"# {name}: {about}", f"# Made by generate.py (in this folder) from {sources}.",
              "# Lines are `CODE ; VALUE` or `FIRST..LAST ; VALUE`, code points in hexadecimal.",
              "#"]
    (HERE / name).write_text("\n".join(header + rows) + "\n", encoding="utf-8")
    print(f"{name}: {len(rows)} lines")


class Readings:
    """How characters read: skeleton and case fold, with the joins of the
    docstring above. `parent` joins single characters (i with l); `spelled`
    spells a character as a longer reading (small м looks like ʍ, capital М
    like M, which reads rn: ʍ is spelled rn). A joined class reads as its
    plainest member: a Latin letter, else a digit, else the lowest code point."""

    def __init__(self, prototype, fold):
        self.prototype, self.fold = prototype, fold
        self.parent, self.spelled, self.plainest = {}, {}, {}

    def skeleton(self, s):
        nfd = unicodedata.normalize("NFD", s)
        return unicodedata.normalize("NFD", "".join(self.prototype.get(c, c) for c in nfd))

    def look(self, s):
        """Skeleton, then compatibility form and case fold, until nothing changes."""
        s = self.skeleton(s)
        while True:
            folded = "".join(self.fold.get(c, c) for c in unicodedata.normalize("NFKD", s))
            if self.skeleton(folded) == s:
                return s
            s = self.skeleton(folded)

    def root(self, c):
        while self.parent.get(c, c) != c:
            c = self.parent[c]
        return c

    def read(self, c):
        """A character's reading: its look, with the joins made so far."""
        return self.joined(self.look(c))

    def joined(self, s):
        return "".join(self.joined(self.spelled[self.root(c)]) if self.root(c) in self.spelled
                       else self.plainest.get(self.root(c), c) for c in s)

    def join(self, a, b, latin):
        """Makes readings a and b one, if the docstring's rule allows; says if it did."""
        if len(a) == 1 and len(b) == 1 and (latin or not {a, b} <= PLAIN):
            self.parent[self.root(a)] = root = self.root(b)
            members = [c for c in self.parent if self.root(c) == root] + [root]
            self.plainest[root] = min(members, key=lambda c: (c not in PLAIN, c.isdigit(), c))
            return True
        for one, spelling in ((a, b), (b, a)):
            if len(one) == 1 < len(spelling) and one not in PLAIN \
                    and self.root(one) not in self.spelled:
                self.spelled[self.root(one)] = spelling
                return True
        return False


def main(unicode_data, derived, scripts_file, case_folding, confusables):
    # `# Scripts-15.0.0.txt` and `# Version: 15.0.0` in the files' headers.
    ucd = open(scripts_file, encoding="utf-8").readline().strip()[len("# Scripts-"):-4]
    security = next(l.split(":")[1].strip() for l in open(confusables, encoding="utf-8")
                    if l.startswith("# Version:"))
    if not unicodedata.unidata_version == ucd == security:
        sys.exit(f"unicodedata {unicodedata.unidata_version}, Scripts.txt {ucd}, "
                 f"confusables.txt {security}: all must be one version")
    category = categories(unicode_data)
    alphabetic = {code for f in lines(derived) if f[1] == "Alphabetic" for code in codes(f[0])}
    # What Rust's char::is_alphanumeric takes (Alphabetic, or a number), marks, _ and -.
    allowed = [code for code in sorted(category)
               if code in alphabetic or category[code][0] in "NM" or chr(code) in "_-"]
    script = {code: f[1] for f in lines(scripts_file) for code in codes(f[0])}
    fold = {chr(int(f[0], 16)): text(f[2]) for f in lines(case_folding) if f[1] in "CF"}
    prototype = {chr(int(f[0], 16)): text(f[1]) for f in lines(confusables)}

    readings = Readings(prototype, fold)
    # A capital and its small letter (Cherokee folds its small letters to capitals).
    capital = lambda c: len(c) == 1 and category[ord(c)] in ("Lu", "Lt")
    pairs = [(chr(code), fold[chr(code)]) for code in allowed if chr(code) in fold]
    pairs = [(c, small) for c, small in pairs if capital(c) or capital(small)]
    joined = True
    while joined:
        joined = False
        for c, small in pairs:
            a, b = readings.read(c), readings.read(small)
            if a != b and readings.join(a, b, script.get(ord(c)) == "Latin"):
                joined = True

    keys = {}
    for code in allowed:
        key = readings.read(chr(code))
        if key != chr(code) and not 0xAC00 <= code <= 0xD7A3:
            assert "\n" not in key, (code, key)
            keys[code] = key
    write("keys.txt", f"confusables.txt (UTS #39), CaseFolding.txt and DerivedCoreProperties.txt "
          f"of Unicode {ucd}, and NFD and NFKD of Python's unicodedata {ucd}",
          "how each character a name may hold reads, where not as itself",
          [row(code, code, key) for code, key in sorted(keys.items())])

    # Spared: a letter proper (Lo) of a script other than Latin that reads as
    # punctuation alone, as Hebrew yod (') and Katakana ノ (/) do: the script
    # rule keeps it among letters of its own script, where it is a letter.
    def punctuation(code):
        key = keys.get(code, "")
        alone = key != "" and all(k.isascii() and not k.isalnum() for k in key)
        spared = category[code] == "Lo" and script.get(code, "Common") not in ("Latin", "Common")
        return category[code][0] == "L" and (" " in key or alone and not spared)
    write("punctuation.txt", f"keys.txt, UnicodeData.txt and Scripts.txt of Unicode {ucd}",
          "the letters a name may not hold, for they read as ASCII punctuation or hold a space "
          "(the value: how they read)",
          [row(code, code, keys[code]) for code in sorted(keys) if punctuation(code)])
    write("scripts.txt", f"Scripts.txt of Unicode {ucd}", "the script of each letter or digit "
          "a name may hold, but Common and Inherited ones (they go with any script)",
          runs({code: script[code] for code in allowed
                if script.get(code, "Common") not in ("Common", "Inherited")}))
    write("marks.txt", f"UnicodeData.txt of Unicode {ucd}", "the combining marks "
          "(General_Category Mn, Mc, Me)",
          runs({code: cat for code, cat in category.items() if cat in ("Mn", "Mc", "Me")}))


if __name__ == "__main__":
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    main(*sys.argv[1:])
