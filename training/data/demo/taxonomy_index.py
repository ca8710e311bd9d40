"""Index arrays over the taxonomy (:mod:`.taxonomy`): subcategory rows and their categories, entity ranges per
category, each subcategory's subject nouns."""
from __future__ import annotations

import numpy as np

from training.data.demo.taxonomy import CATEGORIES, COMMON, Entity, subcategory_table

TAXONOMY = subcategory_table()
K = len(CATEGORIES)
SUB_CATEGORY = np.array([[c.name for c in CATEGORIES].index(cat) for cat, _ in TAXONOMY])
SUBS_PER_CATEGORY = np.bincount(SUB_CATEGORY, minlength=K)
#: Every entity once: places first, then the categories' entities (ids are distinct).
ALL_ENTITIES: tuple[Entity, ...] = COMMON.places + tuple(e for c in CATEGORIES for e in c.entities)
CATEGORY_ENTITY_START = np.cumsum([len(COMMON.places)] + [len(c.entities) for c in CATEGORIES])[:-1]
CATEGORY_ENTITY_COUNT = np.array([len(c.entities) for c in CATEGORIES])
SUB_NOUNS: tuple[tuple[str, ...], ...] = tuple(CATEGORIES[int(SUB_CATEGORY[s])].subcategories[sub]
                                               for s, (_, sub) in enumerate(TAXONOMY))
