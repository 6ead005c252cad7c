"""Characters Unicode TR39 lists as confusable with an ASCII letter or digit (``--confusables``).

Generated from the Unicode confusables data (``confusables.txt`` of Unicode Technical Standard
#39, as packaged by confusable-homoglyphs 3.3.1): every non-ASCII character that NFKC leaves
non-ASCII and that TR39 lists as confusable with a single ASCII letter or digit, mapped in lower
case to the letter or digit its Unicode name ends with (``CYRILLIC SMALL LETTER A``: ``a``), else
to the first letter TR39 lists. ASCII is never remapped, so ``1`` stays ``1`` and an ASCII
identifier hashes the same with or without ``--confusables``. Unicode data is under the Unicode
License v3.
"""

from __future__ import annotations

from typing import Final

__all__ = ["CONFUSABLES"]

_PAIRS: Final = (  # source character, then its ASCII replacement
    "\u00d7x\u0131i\u0184b\u018dg\u0196l\u01a6r\u01a72\u01b73\u01bc5\u01bds\u01c0l\u021c3"
    "\u02228\u02238\u0251a\u0261g\u0263y\u0269i\u026ai\u026fm\u028bu\u028fy\u02dbi\u037ai"
    "\u037fj\u0391a\u0392b\u0395e\u0396z\u0397h\u0399l\u039ak\u039cm\u039dn\u039fo\u03a1p"
    "\u03a4t\u03a5y\u03a7x\u03b1a\u03b3y\u03b9i\u03bdv\u03bfo\u03c1p\u03c3o\u03c5u\u03d2y"
    "\u03dcf\u03e82\u03f1p\u03f2c\u03f3j\u03f9c\u03fam\u0405s\u0406i\u0408j\u0410a\u0412b"
    "\u0415e\u04173\u041ak\u041cm\u041dh\u041eo\u0420p\u0421c\u0422t\u0423u\u0425x\u042cb"
    "\u0430a\u04316\u0433r\u0435e\u043eo\u0440p\u0441c\u0443u\u0445x\u0455s\u0456i\u0458j"
    "\u0461w\u0474v\u0475v\u04aeu\u04afu\u04bbh\u04bde\u04c0l\u04cfi\u04e03\u0501d\u050cg"
    "\u051bq\u051cw\u051dw\u054du\u054fs\u0555o\u0561w\u0563q\u0566q\u0570h\u0578n\u057cn"
    "\u057du\u0581g\u0584f\u0585o\u06f1l\u06f5o\u06f7v\u0966o\u09e6o\u09ea8\u09ed9\u0a66o"
    "\u0a679\u0a6a8\u0ae6o\u0b038\u0b20o\u0b66o\u0b689\u0be6o\u0c02o\u0c66o\u0c82o\u0ce6o"
    "\u0d02o\u0d20o\u0d66o\u0d6d9\u0d82o\u0e50o\u0ed0o\u101do\u1040o\u10e7y\u10ffo\u1200u"
    "\u12d0a\u13a0a\u13a1e\u13a2i\u13a5v\u13a9y\u13aaa\u13abj\u13ace\u13b3w\u13b7m\u13bbh"
    "\u13bdy\u13c0g\u13c2h\u13c3z\u13ce4\u13cfb\u13d2r\u13d4w\u13d5s\u13d9v\u13das\u13del"
    "\u13dfc\u13e2p\u13e6k\u13e7d\u13ee6\u13f3g\u13f4b\u142fv\u144cu\u146dp\u146fd\u1472b"
    "\u148dj\u14aal\u14bfm\u1541x\u157ch\u157dx\u1587r\u15afb\u15b4f\u15c5a\u15ded\u15ead"
    "\u15f0m\u15f7b\u166dx\u166ex\u16b7g\u16c1i\u16d5k\u16d6e\u1d04c\u1d0fo\u1d11o\u1d1cu"
    "\u1d20v\u1d21w\u1d22z\u1d26r\u1d83g\u1d8cy\u1e9df\u1effy\u1fbei\u212ee\u213dy\u2223l"
    "\u2228v\u222au\u22a4t\u22c1v\u22c3u\u22ffe\u2373i\u2374p\u237aa\u23fdl\u2573x\u27d9t"
    "\u292bx\u292cx\u2a2fx\u2c85r\u2c8eh\u2c92l\u2c94k\u2c98m\u2c9an\u2c9eo\u2c9fo\u2ca2p"
    "\u2ca3p\u2ca4c\u2ca5c\u2ca6t\u2ca8y\u2cacx\u2cca9\u2ccc3\u2cd0l\u2cd26\u2d38v\u2d39e"
    "\u2d4fl\u2d54o\u2d55q\u2d5dx\u3007o\ua4d0b\ua4d1p\ua4d2d\ua4d3d\ua4d4t\ua4d6g\ua4d7k"
    "\ua4d9j\ua4dac\ua4dcz\ua4ddf\ua4dfm\ua4e0n\ua4e1l\ua4e2s\ua4e3r\ua4e6v\ua4e7h\ua4eaw"
    "\ua4ebx\ua4ecy\ua4eea\ua4f0e\ua4f2i\ua4f3o\ua4f4u\ua6442\ua647i\ua6dfv\ua6ef2\ua731s"
    "\ua75a2\ua76a3\ua76e9\ua798f\ua799f\ua79fu\ua7abe\ua7b2j\ua7b3x\ua7b4b\uab32e\uab35f"
    "\uab3do\uab47r\uab48r\uab4eu\uab52u\uab5ay\uab75v\uab81r\uab83w\uab93z\uaba9v\uabaas"
    "\uabafc\uffe8l\U00010282b\U00010286i\U00010287w\U0001028aj\U00010290x\U00010292u"
    "\U00010295r\U00010296s\U00010297t\U000102a0a\U000102a1b\U000102a2d\U000102a5r\U000102abo"
    "\U000102b0s\U000102b1t\U000102b2u\U000102b4x\U000102cfh\U000102f5z\U00010301b\U00010302c"
    "\U00010309i\U00010311m\U00010315t\U00010317x\U0001031a8\U00010320l\U00010322x\U00010404o"
    "\U00010415c\U0001041bl\U00010420s\U0001042co\U0001043dc\U00010448s\U000104b4r\U000104c2o"
    "\U000104ceu\U000104d27\U000104eao\U000104f6u\U00010513n\U00010516o\U00010518k\U0001051cc"
    "\U0001051dv\U00010525f\U00010526l\U00010527x\U000114d0o\U00011706v\U0001170aw\U0001170ew"
    "\U0001170fw\U000118a0v\U000118a2f\U000118a3l\U000118a4y\U000118a6e\U000118a9o\U000118ac9"
    "\U000118aee\U000118af4\U000118b2l\U000118b5o\U000118b8u\U000118bb5\U000118bct\U000118c0v"
    "\U000118c1a\U000118c2f\U000118c3i\U000118c4z\U000118c67\U000118c8e\U000118ca3\U000118cc9"
    "\U000118d56\U000118d69\U000118d7o\U000118d8u\U000118dcy\U000118e0o\U000118e5z\U000118e6w"
    "\U000118e9c\U000118ecx\U000118efw\U000118f2c\U00016f08v\U00016f0at\U00016f16l\U00016f28l"
    "\U00016f35r\U00016f3as\U00016f3b3\U00016f40a\U00016f42u\U00016f43y\U0001d2063\U0001d20dv"
    "\U0001d2127\U0001d213f\U0001d216r\U0001d22al\U0001d6a4i\U0001d6a8a\U0001d6a9b\U0001d6ace"
    "\U0001d6adz\U0001d6aeh\U0001d6b0l\U0001d6b1k\U0001d6b3m\U0001d6b4n\U0001d6b6o\U0001d6b8p"
    "\U0001d6bbt\U0001d6bcy\U0001d6bex\U0001d6c2a\U0001d6c4y\U0001d6cai\U0001d6cev\U0001d6d0o"
    "\U0001d6d2p\U0001d6d4o\U0001d6d6u\U0001d6e0p\U0001d6e2a\U0001d6e3b\U0001d6e6e\U0001d6e7z"
    "\U0001d6e8h\U0001d6eal\U0001d6ebk\U0001d6edm\U0001d6een\U0001d6f0o\U0001d6f2p\U0001d6f5t"
    "\U0001d6f6y\U0001d6f8x\U0001d6fca\U0001d6fey\U0001d704i\U0001d708v\U0001d70ao\U0001d70cp"
    "\U0001d70eo\U0001d710u\U0001d71ap\U0001d71ca\U0001d71db\U0001d720e\U0001d721z\U0001d722h"
    "\U0001d724l\U0001d725k\U0001d727m\U0001d728n\U0001d72ao\U0001d72cp\U0001d72ft\U0001d730y"
    "\U0001d732x\U0001d736a\U0001d738y\U0001d73ei\U0001d742v\U0001d744o\U0001d746p\U0001d748o"
    "\U0001d74au\U0001d754p\U0001d756a\U0001d757b\U0001d75ae\U0001d75bz\U0001d75ch\U0001d75el"
    "\U0001d75fk\U0001d761m\U0001d762n\U0001d764o\U0001d766p\U0001d769t\U0001d76ay\U0001d76cx"
    "\U0001d770a\U0001d772y\U0001d778i\U0001d77cv\U0001d77eo\U0001d780p\U0001d782o\U0001d784u"
    "\U0001d78ep\U0001d790a\U0001d791b\U0001d794e\U0001d795z\U0001d796h\U0001d798l\U0001d799k"
    "\U0001d79bm\U0001d79cn\U0001d79eo\U0001d7a0p\U0001d7a3t\U0001d7a4y\U0001d7a6x\U0001d7aaa"
    "\U0001d7acy\U0001d7b2i\U0001d7b6v\U0001d7b8o\U0001d7bap\U0001d7bco\U0001d7beu\U0001d7c8p"
    "\U0001d7caf\U0001f74cc\U0001f768t"
)

CONFUSABLES: Final = {ord(_PAIRS[i]): _PAIRS[i + 1] for i in range(0, len(_PAIRS), 2)}
"""``str.translate`` table: confusable character → ASCII lower-case letter or digit."""
