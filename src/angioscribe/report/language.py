"""Which language a report is in: English or Japanese, told apart by script."""

from __future__ import annotations

import re
from typing import Literal, get_args

from angioscribe.errors import InputError

Language = Literal["en", "ja"]
LANGUAGES: tuple[Language, ...] = get_args(Language)

# Hiragana, katakana (incl. half-width) and CJK ideographs. Japanese reports are full of ASCII
# ("LAD #6", "PCI"), so one Japanese character is enough; English reports contain none.
_JAPANESE_SCRIPT = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff66-\uff9f]")


def detect_language(text: str) -> Language:
    """ "ja" if the text contains any Japanese script, else "en"."""
    return "ja" if _JAPANESE_SCRIPT.search(text) else "en"


def resolve_language(lang: str, text: str, source: str = "text") -> Language:
    """The language to parse `text` as: `lang` itself, or detected when `lang` is "auto".

    Anything else is an error naming the input, because parsing a report with the wrong
    lexicon silently returns no findings.
    """
    if lang == "auto":
        return detect_language(text)
    if lang in LANGUAGES:
        return lang  # type: ignore[return-value]
    raise InputError(source, f"unknown language {lang!r}; expected one of en, ja, auto")
