"""Varied English sentences from word lists and templates (no downloads).

Two disjoint vocabularies: ``split="train"`` for the training corpus and
``split="heldout"`` for evaluation, so the benchmark hears words and sentences the
model never saw.
"""

from __future__ import annotations

import random
import zlib
from functools import lru_cache
from pathlib import Path

_WORDS = {
    "noun": (
        "apple baby ball bank bed bell bird boat book bottle box boy bread bridge brother "
        "brush bus butter cake camera candle car cat chair cheese chicken child church city "
        "clock cloud coat coffee computer cookie cow cup dog door dream duck egg engine eye "
        "face farm father feather fence field finger fish flag floor flower foot forest fork "
        "fox friend frog garden gate girl glass glove goat gold grass guitar hair hammer hand "
        "hat heart hill horse house island jacket judge key king kitchen kite knife lamp leaf "
        "letter lion machine map market milk mirror monkey moon morning mother mountain mouse "
        "mouth music needle nest night nose ocean orange owl paper parrot pencil people pepper "
        "piano picture pig pillow pizza plane planet plate pocket potato queen rabbit rain "
        "river road robot rock room rope school sea sheep ship shoe shop singer sister sky "
        "snake snow soap song soup spoon star station stone street sugar summer sun table "
        "teacher telephone thumb ticket tiger tongue tooth towel tower town toy train tree "
        "truck umbrella valley village violin voice wall watch water wheel window winter "
        "woman world yard zebra"
    ),
    "adj": (
        "angry beautiful big bitter black blue bold brave bright broken brown busy calm cheap "
        "clean clever cold cool crazy curious dark deep dirty dry early easy empty famous "
        "fast fat fierce fine flat fresh friendly full funny gentle giant glad good gray "
        "great green happy hard heavy high hollow hot huge hungry kind large late lazy light "
        "little lonely long loud lovely low lucky mighty modern narrow new nice noisy odd "
        "old orange pale perfect pink plain polite poor proud purple quick quiet rare red "
        "rich rough round sad sharp shiny short shy silly simple slow small smooth soft "
        "sour strange strong sweet tall thick thin tiny tired ugly warm weak wet white wide "
        "wild wise wooden yellow young"
    ),
    "verb": (
        "ate bought brought built called carried caught chased cleaned climbed cooked "
        "copied counted covered crossed drew dropped fed fixed followed found grabbed "
        "helped hid hugged jumped kept kicked kissed knew lifted liked loved made missed "
        "moved opened painted passed picked played pulled pushed reached read saw showed "
        "smelled sold spotted stopped studied taught thanked threw touched tried used "
        "visited wanted washed watched wrote"
    ),
    "prep": (
        "above across after against along among around at behind below beside by near over "
        "through to under with without"
    ),
    "adv": (
        "always barely boldly calmly carefully clearly easily eagerly finally gently happily "
        "loudly nearly never often only quickly quietly rarely really sadly slowly softly "
        "sometimes suddenly surely truly usually warmly"
    ),
    "name": "Anna Bob Maria Peter Sophie Tom Emma Jack Olivia Paul Lucy Mike Zoe Victor Ruth Fiona",
    "num": "one two three four five six seven eight nine ten twelve twenty fifty hundred",
}

_TEMPLATES = (
    "The {adj} {noun} {verb} the {noun}.",
    "{name} {verb} a {adj} {noun} {prep} the {noun}.",
    "Why did the {noun} {adv} leave the {adj} {noun}?",
    "I {adv} think the {noun} is {adj}.",
    "Please bring me {num} {adj} {noun}s from the {noun}.",
    "Oh, the {noun} was so {adj}!",
    "{name} and {name} {verb} the {adj} {noun} {prep} the {noun} {adv}.",
    "Do you remember the {adj} {noun}?",
    "We {verb} {num} {noun}s, and then we {verb} the {noun}.",
    "My {noun} is {adj}, but your {noun} is {adj}.",
    "Look at that {adj} {noun} {prep} the {noun}!",
    "Maybe the {noun} {verb} a {noun}, who knows?",
    "{name}, put the {noun} {prep} the {adj} {noun}, please.",
    "Every {noun} {adv} wants a {adj} {noun}.",
    "It is {num} o'clock and the {noun} is still {adj}.",
    "Wow, {name} {verb} my {adj} {noun}!",
)


def _vocab(split: str) -> dict[str, list[str]]:
    """Alternate words between the splits so both cover every sound class."""
    keep = 0 if split == "train" else 1
    out = {}
    for kind, words in _WORDS.items():
        listed = words.split()
        # A quarter of the words are held out; the rest train.
        out[kind] = [w for i, w in enumerate(listed) if (i % 4 == 3) == bool(keep)]
    return out


def sentences(count: int, split: str = "train", seed: int = 0) -> list[str]:
    """``count`` sentences drawn from the split's vocabulary and templates."""
    rng = random.Random(f"{split}:{seed}")
    vocab = _vocab(split)
    # Held out by template too: no held-out sentence shares its frame with a training one.
    templates = _TEMPLATES[::2] if split == "train" else _TEMPLATES[1::2]
    out = []
    for _ in range(count):
        text = rng.choice(templates)
        while "{" in text:
            start = text.index("{")
            kind = text[start + 1 : text.index("}", start)]
            text = text[:start] + rng.choice(vocab[kind]) + text[text.index("}", start) + 1 :]
        out.append(text[0].upper() + text[1:])
    return out


def heldout_word(word: str) -> bool:
    """The split of any word, by a stable hash (a quarter are held out)."""
    return zlib.crc32(word.lower().encode()) % 4 == 3


@lru_cache(maxsize=1)
def cmudict() -> dict[str, list[str]]:
    """CMUdict as PocketSphinx ships it (training only): word -> its first pronunciation
    (ARPAbet phones without stress marks), in the file's order."""
    import pocketsphinx

    path = Path(pocketsphinx.__file__).parent / "model" / "en-us" / "cmudict-en-us.dict"
    pron: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        word, *phones = line.split()
        if "(" not in word:  # word(2), word(3): other pronunciations
            pron.setdefault(word, phones)
    return pron


@lru_cache(maxsize=1)
def _dictionary_words() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Plain CMUdict words, split as ``heldout_word``; the template vocabulary keeps its
    own split."""
    template_words = {w.lower(): kind for kind, ws in _WORDS.items() for w in ws.split()}
    train: list[str] = []
    held: list[str] = []
    for word in cmudict():
        if not word.isalpha() or not 2 <= len(word) <= 11:
            continue
        if word in template_words:
            continue  # already split with the template vocabulary
        (held if heldout_word(word) else train).append(word)
    return tuple(train), tuple(held)


def word_salad(count: int, split: str = "train", seed: int = 0) -> list[str]:
    """``count`` phrases of 3-10 random dictionary words of the split: sound sequences the
    templates never make (real speech has far more words than the templates)."""
    rng = random.Random(f"salad:{split}:{seed}")
    words = _dictionary_words()[0 if split == "train" else 1]
    out = []
    for _ in range(count):
        phrase = " ".join(rng.choice(words) for _ in range(rng.randint(3, 10)))
        out.append(phrase[0].upper() + phrase[1:] + rng.choice(".?!,"))
    return out
