"""Pseudo-headlines and abstracts built from templates + topic words, with MIND entity JSON.

A title is one template with its slots filled from the news' subcategory vocabulary, e.g.
``"{adj} {noun} {verb} {noun2} {tail}"`` -> "Record rainfall brings storm front to coastal towns".
Entities (and places) chosen by the generator are written into their slots, and the entity JSON
records the character offset of each mention, so ``title[offset:offset + len(surface)] == surface``.
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

    def _words(self, category: Category, subcategory: str) -> dict[str, str]:
        rng = self.rng
        sub_nouns = category.subcategories[subcategory]
        # The subject is always a subcategory noun, so the text identifies the subcategory.
        noun = rng.choice(sub_nouns)
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

    def title(self, category: Category, subcategory: str, ent: Entity | None, place: Entity | None) -> RenderedText:
        template = self.rng.choice(TITLE_TEMPLATES[(ent is not None, place is not None)])
        return self._render(template, self._words(category, subcategory), ent, place, capitalize=True)

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
        second = self._render(rng.choice(ABSTRACT_SECOND), self._words(category, subcategory), None, None, capitalize=True)
        return RenderedText(f"{sentence.text} {second.text}", sentence.mentions)


def entity_json(rendered: RenderedText, rng: random.Random) -> str:
    """MIND's entity column: one object per distinct entity, ``[]`` when there is none."""
    grouped: dict[str, dict[str, object]] = {}
    for m in rendered.mentions:
        item = grouped.get(m.entity.wikidata_id)
        if item is None:
            item = grouped[m.entity.wikidata_id] = {
                "Label": m.entity.label, "Type": m.entity.type, "WikidataId": m.entity.wikidata_id,
                "Confidence": round(rng.uniform(0.85, 1.0), 3), "OccurrenceOffsets": [], "SurfaceForms": [],
            }
        item["OccurrenceOffsets"].append(m.offset)  # type: ignore[union-attr]
        if m.entity.text not in item["SurfaceForms"]:  # type: ignore[operator]
            item["SurfaceForms"].append(m.entity.text)  # type: ignore[union-attr]
    return json.dumps(list(grouped.values()), ensure_ascii=False)
