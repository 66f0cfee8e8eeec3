"""One normalisation of tag and label text, used everywhere placer reads or compares tags.

A residency rule is only as strong as the comparison behind it: if ``"EU "``, ``"ＥＵ"`` (full
width) or ``"ЕU"`` (a Cyrillic Е) compared unequal to ``EU``, data tagged that way would slip
past every rule written for EU. So tags are handled in two forms:

* the **stored form** (:func:`clean`): Unicode NFKC, leading and trailing whitespace removed,
  case kept. Invisible characters (controls, format characters such as U+200B ZERO WIDTH
  SPACE, line and paragraph separators) are refused, never silently kept or dropped. This is
  what datasets, S3 tags and GCS labels are stored as, and what explanations show.
* the **comparison form** (:func:`canonical`): the stored form case-folded, with combining
  marks removed and every letter that Unicode's confusables data (UTS #39) lists as a
  look-alike of a Latin letter replaced by that letter. Two texts that compare equal in this
  form are the same tag for every rule.

Folding look-alikes together makes rules match *more*, never less: a forbid or require then
applies to a look-alike too, which is the safe side. A future effect that widens (an allow, an
exception) must not match by this form alone; see ``docs/policies.md``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from functools import lru_cache

# Letters that UTS #39 (https://www.unicode.org/Public/security/latest/confusables.txt) lists
# as confusable with a Latin letter, for the scripts users meet in tags: Greek, Cyrillic, and
# Latin letters NFKC leaves alone. Capitals are mapped before case folding (a Cyrillic capital
# EN looks like H, its small form does not), small letters after.
_CAPITALS = {
    # Cyrillic
    "А": "A", "В": "B", "Е": "E", "Ѕ": "S", "І": "I", "Ј": "J", "К": "K", "М": "M",
    "Н": "H", "О": "O", "Р": "P", "С": "C", "Т": "T", "Х": "X", "У": "Y", "Ү": "Y",
    "Ԛ": "Q", "Ԝ": "W", "Ӏ": "I", "Ԍ": "G", "Ь": "b",
    # Greek
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M",
    "Ν": "N", "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X", "Ϲ": "C", "Ϳ": "J",
}
_SMALL = {
    # Cyrillic
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "ѕ": "s",
    "і": "i", "ј": "j", "һ": "h", "ԁ": "d", "ԛ": "q", "ԝ": "w", "ӏ": "l", "ү": "y",
    "ɡ": "g", "ʏ": "y",
    # Greek
    "ο": "o", "ν": "v", "ρ": "p", "ι": "i", "α": "a", "υ": "u", "κ": "k", "ϲ": "c",
    "ϳ": "j", "τ": "t", "χ": "x",
    # Latin letters NFKC keeps: dotless i, script g, small capitals
    "ı": "i", "ɑ": "a", "ᴀ": "a", "ʙ": "b", "ᴄ": "c", "ᴅ": "d", "ᴇ": "e", "ɢ": "g",
    "ʜ": "h", "ɪ": "i", "ᴊ": "j", "ᴋ": "k", "ʟ": "l", "ᴍ": "m", "ɴ": "n", "ᴏ": "o",
    "ᴘ": "p", "ʀ": "r", "ꜱ": "s", "ᴛ": "t", "ᴜ": "u", "ᴠ": "v", "ᴡ": "w", "ᴢ": "z",
}
_CAPITALS_TABLE = str.maketrans(_CAPITALS)
_SMALL_TABLE = str.maketrans(_SMALL)

_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
MAX_TAG_LENGTH = 256


def clean(text: str, what: str = "tag") -> str:
    """The stored form of a tag key or value: NFKC, trimmed; invisible characters refused.

    >>> clean("  ＥＵ\\u00a0")
    'EU'

    Raises:
        ValueError: naming the character, if ``text`` holds a control or format character
            (zero-width space, bidirectional override, ...), or is over 256 characters.
    """
    if not isinstance(text, str):
        raise ValueError(f"{what} must be text, got {type(text).__name__}")
    out = unicodedata.normalize("NFKC", text).strip()
    for ch in out:
        if unicodedata.category(ch) in _INVISIBLE or (ch.isspace() and ch != " "):
            name = unicodedata.name(ch, "unnamed")
            raise ValueError(
                f"{what} {text!r} contains the invisible character U+{ord(ch):04X} {name}; "
                "remove it (it would make the tag look like one value and compare as another)"
            )
    if len(out) > MAX_TAG_LENGTH:
        raise ValueError(f"{what} is {len(out)} characters long; at most {MAX_TAG_LENGTH}")
    return out


@lru_cache(maxsize=65536)
def canonical(text: str) -> str:
    """The comparison form: :func:`clean`'s form, case-folded, marks and look-alikes folded.

    >>> canonical(" ＥＵ "), canonical("ЕU"), canonical("Eu"), canonical("ÉU")
    ('eu', 'eu', 'eu', 'eu')
    """
    s = unicodedata.normalize("NFKC", text).strip().translate(_CAPITALS_TABLE).casefold()
    s = "".join(
        ch for ch in unicodedata.normalize("NFD", s)
        if unicodedata.category(ch) not in ("Mn", "Me", "Cf")
    )
    return unicodedata.normalize("NFC", s.translate(_SMALL_TABLE))


def clean_tags(tags: Mapping[str, str], what: str = "tag") -> dict[str, str]:
    """Stored form of a whole tag (or label) mapping; two keys that compare equal are refused.

    ``{"residency": "EU", "Residency": "US"}`` would give one tag two values depending on who
    reads it: it is an error, not a merge.

    Raises:
        ValueError: a key or value :func:`clean` refuses, or two keys that are one key.
    """
    out: dict[str, str] = {}
    seen: dict[str, str] = {}
    for key, value in tags.items():
        k = clean(key, f"{what} key")
        if not k:
            raise ValueError(f"{what} key {key!r} is empty")
        v = clean(value, f"{what} {k!r} value")
        c = canonical(k)
        if c in seen:
            raise ValueError(
                f"{what} keys {seen[c]!r} and {key!r} are the same key once case, width and "
                "look-alike letters are normalised; keep one"
            )
        seen[c] = key
        out[k] = v
    return out


def same(a: str, b: str) -> bool:
    """Whether two tag texts are the same tag (equal comparison forms)."""
    return canonical(a) == canonical(b)


def canonical_set(values: Iterable[str]) -> frozenset[str]:
    return frozenset(canonical(v) for v in values)


@lru_cache(maxsize=65536)
def strict(text: str) -> str:
    """The form for what widens (allow rules, exceptions): NFKC, trimmed, case-folded; no
    look-alike folding, so a look-alike never matches its way into a wider decision.

    >>> strict(" ＥＵ "), strict("ЕU") == strict("EU")
    ('eu', False)
    """
    return unicodedata.normalize("NFKC", text).strip().casefold()
