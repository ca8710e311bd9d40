"""Pseudo-headlines and abstracts built from templates + topic words, with MIND entity JSON.

A title is one template with its slots filled from the news' subcategory vocabulary, e.g.
``"{adj} {noun} {verb} {noun2} {tail}"`` -> "Record rainfall brings storm front to coastal towns".
Entities (and places) chosen by the generator are written into their slots, and the entity JSON
records the character offset of each mention, so ``title[offset:offset + len(surface)] == surface``.

Quality cues (drawn by the generator with their own ``random.Random``): :meth:`HeadlineWriter.clickbait`
adds a clickbait marker (a prefix, a suffix or a numbered-list/"one trick" template),
:func:`near_duplicate` changes one word of an earlier title, and :meth:`HeadlineWriter.spam` writes a
spam phrase (``SPAM_TITLES``/``SPAM_ABSTRACTS``) or an ordinary text of another category.

A story article's title is written with a fixed ``keyword`` (the story's subcategory noun) as its
subject noun and names the story's entity, so every title of a story shows the relation; a *thin body*
(visible-quality model) is an empty abstract or one of the short ``THIN_ABSTRACTS``.
"""
from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass

from training.data.demo.taxonomy import COMMON, Category, Entity

#: Title templates keyed by (has a category entity, has a place).
TITLE_TEMPLATES: dict[tuple[bool, bool], tuple[str, ...]] = {
    (False, False): (
        "{adj} {noun} {verb} {noun2} {tail}",
        "{noun} {verb} {adj} {noun2} {tail}",
        "What to know about the {adj} {noun} {tail}",
        "The {adj} {noun} everyone is talking about",
        "Why the {noun} {verb} {noun2}",
        "{noun}: {adj} {noun2} {verb} {noun3}",
        "How the {noun} {verb} the {adj} {noun2}",
    ),
    (True, False): (
        "{ent} {verb} {adj} {noun} {tail}",
        "{ent}: {adj} {noun} {verb} {noun2}",
        "How {ent} {verb} the {noun}",
        "{ent} and the {adj} {noun} {tail}",
        "{adj} {noun} {verb} {ent} {tail}",
    ),
    (False, True): (
        "{adj} {noun} {verb} {noun2} in {place}",
        "{place} {noun} {verb} {adj} {noun2}",
        "{noun} in {place} {verb} {noun2} {tail}",
    ),
    (True, True): (
        "{ent} {verb} {adj} {noun} in {place}",
        "{place}: {ent} {verb} the {noun} {tail}",
    ),
}

ABSTRACT_FIRST = (
    "The {adj} {noun} {verb} {noun2} {tail}, and the {noun3} could be next.",
    "Here is everything you need to know about the {adj} {noun} and what it means for the {noun2}.",
    "The {noun} {verb} the {adj} {noun2} {tail}, a shift that few saw coming only a month ago.",
    "After weeks of talk about the {noun}, the {adj} {noun2} finally {verb} the {noun3}.",
)
ABSTRACT_WITH_ENT = (
    "{ent} {verb} the {adj} {noun} {tail}, a move that could reshape the {noun2} for months.",
    "In a long interview, {ent} explained why the {noun} {verb} the {adj} {noun2}.",
)
ABSTRACT_WITH_PLACE = (
    "Officials in {place} say the {noun} {verb} the {adj} {noun2}, with more updates expected soon.",
    "Residents of {place} are watching closely as the {adj} {noun} {verb} the {noun2}.",
)
ABSTRACT_SECOND = (
    "Experts say the {noun} still {verb} the {noun2} {tail}.",
    "Readers shared mixed reactions to the {adj} {noun}.",
    "The full story, with photos and reactions, is below.",
    "It is the {adj} {noun} of the season so far, and the {noun2} is only getting started.",
)

#: Clickbait markers: prefixes and suffixes added to a rendered title, or whole templates.
CLICKBAIT_PREFIXES = ("Shocking: ", "You won't believe this: ", "Unbelievable: ", "Must see: ", "Jaw-dropping: ",
                      "OMG: ", "Wait for it: ")
CLICKBAIT_SUFFIXES = ("!", "!!", " - and what happened next", " - you won't believe what happened next",
                      " (number 4 will shock you)", " - the reason will surprise you", "?!")
CLICKBAIT_TEMPLATES: dict[bool, tuple[str, ...]] = {  # keyed by: has a category entity
    False: (
        "Top {n} reasons the {noun} {verb} {noun2}",
        "These {n} things nobody tells you about the {adj} {noun}",
        "This one trick {verb} the {noun} - {noun2} fans hate it",
        "You won't believe what the {noun} just did",
        "Here are {n} photos of the {adj} {noun} you have to see",
    ),
    True: (
        "The {n} secrets {ent} doesn't want you to know about the {noun}",
        "You won't believe what {ent} said about the {noun}",
        "{ent} tried this one trick and the {noun} {verb} {noun2}",
    ),
}
#: Word swaps of a near-duplicate title (other words are replaced by an adjective of the category).
NEAR_DUPLICATE_SWAPS = {
    "the": "this", "and": "plus", "about": "on", "in": "at", "after": "following", "how": "why", "why": "how",
    "for": "in", "of": "from", "to": "toward", "what": "all", "is": "remains", "this": "the", "again": "once more",
}
#: Off-topic spam: phrases that belong to no category.
SPAM_TITLES = (
    "Win a free cruise before this weekend ends",
    "Doctors hate this one weird trick for belly fat",
    "Claim your $500 gift card now - only 3 left!",
    "Local mom earns $8,000 a month from home",
    "Lose 20 pounds in 2 weeks with this simple drink",
    "Your phone may be infected: clean it in one tap",
    "Congratulations! You have been selected for a free tablet",
    "Banks hate him: retire early with this secret app",
    "Miracle cream erases wrinkles overnight",
    "Hot deal: designer watches 90% off today only",
)
SPAM_ABSTRACTS = (
    "Click here to claim your prize before it expires.",
    "Limited offer: thousands of readers have already signed up. Act now, this deal will not last.",
    "No credit card needed. Enter your email to get started today.",
    "Experts are stunned by this simple method. See the video before it is taken down.",
    "Only a few spots remain, so hurry and register for free today.",
)

#: The one-short-sentence abstracts of thin bodies (an ordinary abstract has at least one long sentence).
THIN_ABSTRACTS = (
    "More details soon.",
    "Developing story.",
    "Updates to follow.",
    "Photos inside.",
    "Read more here.",
    "Watch the video.",
    "Story continues.",
    "Details are still emerging.",
)

_SLOT = re.compile(r"(\{\w+\})")


@dataclass(frozen=True)
class Mention:
    entity: Entity
    offset: int


@dataclass(frozen=True)
class RenderedText:
    """Text plus the entity mentions (with character offsets) written into it."""

    text: str
    mentions: tuple[Mention, ...]


class HeadlineWriter:
    """Fills templates with one subcategory's words; deterministic given its ``random.Random``."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def _words(self, category: Category, subcategory: str, keyword: str | None = None) -> dict[str, str]:
        rng = self.rng
        sub_nouns = category.subcategories[subcategory]
        # The subject is always a subcategory noun (a story's keyword), so the text identifies the subcategory.
        noun = keyword if keyword is not None else rng.choice(sub_nouns)
        noun2, noun3 = rng.sample([w for w in sub_nouns + category.nouns if w != noun], 2)
        return {
            "noun": noun, "noun2": noun2, "noun3": noun3,
            "verb": rng.choice(category.verbs),
            "adj": rng.choice(category.adjectives),
            "tail": rng.choice(COMMON.tails),
        }

    def _render(self, template: str, words: dict[str, str], ent: Entity | None, place: Entity | None,
                capitalize: bool) -> RenderedText:
        out: list[str] = []
        mentions: list[Mention] = []
        length = 0
        for piece in _SLOT.split(template):
            if not piece:
                continue
            if piece in ("{ent}", "{place}"):
                entity = ent if piece == "{ent}" else place
                assert entity is not None, f"template {template!r} needs {piece}"
                mentions.append(Mention(entity, length))
                piece = entity.text
            elif piece.startswith("{"):
                piece = words[piece[1:-1]]
            out.append(piece)
            length += len(piece)
        text = "".join(out)
        if capitalize and text and not (mentions and mentions[0].offset == 0):
            text = text[0].upper() + text[1:]  # same length, so offsets stay valid
        return RenderedText(text, tuple(mentions))

    def clickbait(self, title: RenderedText, category: Category, subcategory: str, ent: Entity | None,
                  keyword: str | None = None) -> RenderedText:
        """``title`` with a clickbait marker: a prefix (offsets shift), a suffix, or a new clickbait template
        (whose subject noun is ``keyword`` when given)."""
        kind = self.rng.random()
        if kind < 0.35:
            prefix = self.rng.choice(CLICKBAIT_PREFIXES)
            return RenderedText(prefix + title.text,
                                tuple(Mention(m.entity, m.offset + len(prefix)) for m in title.mentions))
        if kind < 0.7:
            return RenderedText(title.text + self.rng.choice(CLICKBAIT_SUFFIXES), title.mentions)
        template = self.rng.choice(CLICKBAIT_TEMPLATES[ent is not None])
        words = {**self._words(category, subcategory, keyword), "n": str(self.rng.randint(3, 15))}
        return self._render(template, words, ent, None, capitalize=True)

    def spam(self, category: Category, subcategory: str) -> tuple[RenderedText, RenderedText]:
        """(title, abstract) of a spam news: a spam phrase, or a text of ``category`` (another than the label's)."""
        if self.rng.random() < 0.5:
            return RenderedText(self.rng.choice(SPAM_TITLES), ()), RenderedText(self.rng.choice(SPAM_ABSTRACTS), ())
        return self.title(category, subcategory, None, None), self.abstract(category, subcategory, None, None)

    def title(self, category: Category, subcategory: str, ent: Entity | None, place: Entity | None,
              keyword: str | None = None) -> RenderedText:
        """A title; every template names ``ent``/``place`` when given and has ``keyword`` (if given) as its subject."""
        template = self.rng.choice(TITLE_TEMPLATES[(ent is not None, place is not None)])
        return self._render(template, self._words(category, subcategory, keyword), ent, place, capitalize=True)

    def abstract(self, category: Category, subcategory: str, ent: Entity | None, place: Entity | None) -> RenderedText:
        """One or two sentences; mentions the title's entity/place about half of the time."""
        rng = self.rng
        ent = ent if ent is not None and rng.random() < 0.5 else None
        place = place if place is not None and rng.random() < 0.5 else None
        if ent is not None:
            first, place = rng.choice(ABSTRACT_WITH_ENT), None
        elif place is not None:
            first = rng.choice(ABSTRACT_WITH_PLACE)
        else:
            first = rng.choice(ABSTRACT_FIRST)
        sentence = self._render(first, self._words(category, subcategory), ent, place, capitalize=True)
        if rng.random() < 0.5:
            return sentence
        second = self._render(rng.choice(ABSTRACT_SECOND), self._words(category, subcategory), None, None,
                              capitalize=True)
        return RenderedText(f"{sentence.text} {second.text}", sentence.mentions)


def near_duplicate(title: RenderedText, adjectives: tuple[str, ...], rng: random.Random) -> RenderedText:
    """``title`` with one word (outside the entity mentions) changed; mention offsets follow."""
    spans = [(m.offset, m.offset + len(m.entity.text)) for m in title.mentions]
    words = [w for w in re.finditer(r"[A-Za-z][A-Za-z'-]*", title.text)
             if not any(lo < w.end() and w.start() < hi for lo, hi in spans)]
    if not words:
        return RenderedText(title.text + " (updated)", title.mentions)
    word = rng.choice(words)
    old = word.group()
    new = NEAR_DUPLICATE_SWAPS.get(old.lower()) or rng.choice([a for a in adjectives if a != old.lower()] or ["new"])
    if word.start() == 0:
        new = new[0].upper() + new[1:]
    shift = len(new) - len(old)
    text = title.text[:word.start()] + new + title.text[word.end():]
    mentions = tuple(Mention(m.entity, m.offset + shift if m.offset > word.start() else m.offset)
                     for m in title.mentions)
    return RenderedText(text, mentions)


def entity_json(rendered: RenderedText, rng: random.Random) -> str:
    """MIND's entity column: one object per distinct entity, ``[]`` when there is none."""
    grouped: dict[str, dict[str, object]] = {}
    offsets: dict[str, list[int]] = {}      # the lists inside grouped's objects, typed
    surface_forms: dict[str, list[str]] = {}
    for m in rendered.mentions:
        key = m.entity.wikidata_id
        if key not in grouped:
            offsets[key], surface_forms[key] = [], []
            grouped[key] = {
                "Label": m.entity.label, "Type": m.entity.type, "WikidataId": m.entity.wikidata_id,
                "Confidence": round(rng.uniform(0.85, 1.0), 3), "OccurrenceOffsets": offsets[key],
                "SurfaceForms": surface_forms[key],
            }
        offsets[key].append(m.offset)
        if m.entity.text not in surface_forms[key]:
            surface_forms[key].append(m.entity.text)
    return json.dumps(list(grouped.values()), ensure_ascii=False)
