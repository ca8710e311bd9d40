"""Vocabulary of the demo world: MIND-like categories, subcategories, topic words, fake entities, outlets.

A subcategory's topic vocabulary is its own nouns plus its category's nouns, verbs and adjectives
(about 40-50 words); ``COMMON`` holds the words every headline may use. Every name, place and
organisation is invented, and every ``WikidataId`` is fake (``Q9`` followed by six digits).
``OUTLETS`` are the invented publishers of the visible-quality model, from wire services to content farms.
"""
from __future__ import annotations

from dataclasses import dataclass


def _words(text: str) -> tuple[str, ...]:
    return tuple(w.strip() for w in text.split("|") if w.strip())


@dataclass(frozen=True)
class Entity:
    """A named entity; ``surface`` is how titles mention it (defaults to ``label``)."""

    label: str
    type: str  # MIND/Wikidata-style type letter: P person, O organisation, G geo-political
    wikidata_id: str = ""
    surface: str = ""

    @property
    def text(self) -> str:
        return self.surface or self.label


@dataclass(frozen=True)
class Category:
    """One top-level category: share of the news supply, words, subcategory nouns and entities."""

    name: str
    share: float
    nouns: tuple[str, ...]
    verbs: tuple[str, ...]
    adjectives: tuple[str, ...]
    subcategories: dict[str, tuple[str, ...]]
    entities: tuple[Entity, ...]

    def vocabulary(self, subcategory: str) -> tuple[str, ...]:
        """The topic vocabulary of one subcategory (its nouns + the category's words)."""
        return self.subcategories[subcategory] + self.nouns + self.verbs + self.adjectives


@dataclass(frozen=True)
class CommonWords:
    """Words shared by every category: headline tails and places (geo entities)."""

    tails: tuple[str, ...]
    places: tuple[Entity, ...]


@dataclass(frozen=True)
class Outlet:
    """A publisher: its URL domain (``https://www.{domain}.example/...``), authority in [0, 1], share of the news."""

    name: str
    domain: str
    authority: float
    share: float


def _e(label: str, type_: str, surface: str = "") -> Entity:
    return Entity(label=label, type=type_, surface=surface)


_RAW_CATEGORIES: tuple[Category, ...] = (
    Category(
        name="news", share=0.20,
        nouns=_words("city council|budget vote|investigation|new law|public hearing|school board|local officials|"
                     "court ruling|policy shift|emergency plan|ballot measure|community leaders|safety review|"
                     "water supply"),
        verbs=_words("approves|rejects|delays|faces|sparks|backs|blocks|unveils|demands|launches"),
        adjectives=_words("controversial|bipartisan|long-awaited|surprise|sweeping|urgent|tense"),
        subcategories={
            "newsus": _words("highway project|state senate|federal grant|governor|county sheriff|border town|"
                             "housing crisis|veterans program|power outage|wildfire recovery|small business owners|"
                             "rural hospitals"),
            "newsworld": _words("peace talks|trade summit|foreign minister|embassy|ceasefire|refugee crisis|"
                                "election result|prime minister|border dispute|aid package|coalition government|"
                                "sanctions"),
            "newspolitics": _words("campaign|Senate race|debate stage|impeachment inquiry|polling lead|tax plan|"
                                   "voter turnout|party primary|lawmakers|spending bill|White House staff|"
                                   "fundraising haul"),
            "newscrime": _words("robbery suspect|police chase|murder trial|jury verdict|fraud scheme|arrest warrant|"
                                "detectives|stolen vehicle|prison sentence|cold case|witness account|security footage"),
            "newsscienceandtechnology": _words("space telescope|rocket launch|fossil discovery|battery breakthrough|"
                                               "robot|research team|gene study|satellite|data breach|smartphone chip|"
                                               "deep-sea survey|quantum computer"),
            "newsgoodnews": _words("volunteers|food drive|rescue dog|random act of kindness|scholarship|neighbors|"
                                   "birthday surprise|hero teacher|family reunion|charity run|donated kidney|"
                                   "thank-you note"),
        },
        entities=(_e("Governor Elena Marsh", "P", "Gov. Marsh"), _e("Senator Dale Whitaker", "P", "Sen. Whitaker"),
                  _e("Harbor County Council", "O"), _e("National Science Bureau", "O"),
                  _e("Mayor Rosa Quintero", "P"), _e("Continental Assembly", "O"),
                  _e("Prime Minister Ivo Lindqvist", "P", "Lindqvist"),
                  _e("Eastvale Police Department", "O", "Eastvale police")),
    ),
    Category(
        name="sports", share=0.17,
        nouns=_words("comeback win|playoff race|season opener|injury report|trade rumor|head coach|rookie|star player|"
                     "rivalry game|winning streak|home crowd|final score|title hopes|free agent"),
        verbs=_words("clinches|wins|loses|beats|stuns|edges|extends|snaps|signs|benches"),
        adjectives=_words("dominant|thrilling|late|shocking|historic|gritty|lopsided"),
        subcategories={
            "football_nfl": _words("quarterback|touchdown drive|wide receiver|field goal|defensive line|sack|"
                                   "interception|running back|two-minute drill|end zone|pass rush|fourth down"),
            "football_ncaa": _words("bowl game|college playoff|freshman|conference title|Heisman race|recruiting class|"
                                    "homecoming game|walk-on|marching band|top 25 ranking|senior day|rivalry trophy"),
            "basketball_nba": _words("point guard|three-pointer|slam dunk|triple-double|buzzer beater|rebound|"
                                     "fast break|bench scoring|center|free throw|tip-off|double overtime"),
            "baseball_mlb": _words("pitcher|home run|World Series|bullpen|grand slam|batting average|shortstop|"
                                   "no-hitter|dugout|spring training|strikeout|walk-off hit"),
            "soccer": _words("striker|penalty kick|goalkeeper|stoppage time|derby|transfer fee|header|clean sheet|"
                             "midfielder|red card|league table|extra time"),
            "golf": _words("putt|birdie|final round|fairway|leaderboard|eagle|major championship|tee shot|back nine|"
                           "playoff hole|course record|caddie"),
            "icehockey_nhl": _words("goalie|power play|hat trick|overtime winner|slap shot|blue line|penalty kill|"
                                    "shutout|faceoff|defenseman|empty net|hockey night"),
        },
        entities=(_e("Harbor City Hawks", "O", "Hawks"), _e("Redwood Rangers", "O", "Rangers"),
                  _e("Lakeshore Lynx", "O", "Lynx"), _e("Marcus Bellamy", "P"), _e("Jalen Okafor", "P", "Okafor"),
                  _e("Northern Athletic League", "O"), _e("Tess Donnelly", "P", "Coach Donnelly"),
                  _e("Granite State Grizzlies", "O", "Grizzlies"), _e("Diego Santoro", "P", "Santoro")),
    ),
    Category(
        name="finance", share=0.08,
        nouns=_words("stock market|interest rates|earnings report|inflation|investors|retirement savings|"
                     "quarterly profit|credit score|price target|market rally|jobs report|consumer spending|dividend|"
                     "recession fears"),
        verbs=_words("lifts|drags|boosts|cuts|raises|slashes|beats|misses|warns|doubles"),
        adjectives=_words("volatile|record|steep|cautious|strong|weak|unexpected"),
        subcategories={
            "markets": _words("Dow Jones|bond yields|tech stocks|oil prices|trading session|bull market|sell-off|"
                              "futures|index fund|gold price|currency swing|market open"),
            "finance-companies": _words("CEO|merger|layoffs|product recall|shareholders|startup|quarterly revenue|"
                                        "board of directors|acquisition|supply chain|factory|IPO"),
            "personalfinance": _words("budget|emergency fund|student loans|credit card debt|tax refund|401(k)|"
                                      "Social Security|paycheck|savings account|financial planner|side hustle|"
                                      "net worth"),
            "finance-real-estate": _words("mortgage rates|home prices|first-time buyers|rental market|"
                                          "housing inventory|open house|property taxes|condo|down payment|"
                                          "real estate agent|home sales|listing"),
            "finance-savemoney": _words("coupon|grocery bill|discount|holiday deals|energy bill|cashback|thrift store|"
                                        "price match|membership fee|bulk buying|subscription|Black Friday"),
        },
        entities=(_e("Meridian Bank", "O"), _e("Stratus Holdings", "O", "Stratus"),
                  _e("Nora Fairbanks", "P", "Fairbanks"),
                  _e("Central Reserve Board", "O", "Reserve Board"), _e("Bluewater Capital", "O"),
                  _e("Victor Hale", "P"), _e("Pinnacle Retail", "O", "Pinnacle"), _e("Atlas Exchange", "O")),
    ),
    Category(
        name="lifestyle", share=0.08,
        nouns=_words("tips|trend|secret|habit|makeover|weekend plans|gift ideas|family tradition|advice|life hack|"
                     "holiday season|style guide|routine|viral photo"),
        verbs=_words("reveals|shares|inspires|transforms|celebrates|shows off|tries|ditches"),
        adjectives=_words("cozy|simple|stunning|clever|budget-friendly|heartwarming|easy"),
        subcategories={
            "lifestylebuzz": _words("celebrity wedding|internet challenge|proposal video|TikTok trend|surprise party|"
                                    "tattoo|throwback photo|meme|red carpet look|influencer|fan theory|awkward moment"),
            "lifestyleroyals": _words("royal family|duchess|prince|palace|royal tour|coronation|royal baby|tiara|queen|"
                                      "royal wedding|Christmas card|official portrait"),
            "lifestylehomeandgarden": _words("backyard|kitchen remodel|houseplants|tiny house|garden bed|paint color|"
                                             "closet|patio|compost|living room|fall decor|renovation"),
            "lifestyleparenting": _words("toddler|bedtime routine|teenagers|school lunch|screen time|newborn|"
                                         "family dinner|homework|playdate|grandparents|picky eater|birthday party"),
            "lifestylepetsanimals": _words("rescue cat|puppy|dog breed|adoption event|shelter|pet owner|kitten|"
                                           "dog park|vet visit|golden retriever|parrot|senior dog"),
            "lifestylestyle": _words("wardrobe|winter coat|sneakers|haircut|makeup look|accessories|denim|fashion week|"
                                     "capsule closet|sweater|skincare|handbag"),
        },
        entities=(_e("Duchess Amelia of Wrenfield", "P", "Duchess Amelia"),
                  _e("Prince Oliver of Wrenfield", "P", "Prince Oliver"),
                  _e("Wrenfield Palace", "O"), _e("Chloe Ardent", "P"), _e("Maison Lumiere", "O"),
                  _e("Jordan Vale", "P"), _e("HomeCraft Magazine", "O", "HomeCraft")),
    ),
    Category(
        name="health", share=0.05,
        nouns=_words("study|doctors|symptoms|risk|patients|treatment|sleep|heart health|immune system|diet|"
                     "blood pressure|mental health|flu season|vitamin D"),
        verbs=_words("lowers|raises|reduces|links|improves|protects|predicts|doubles|harms|explains"),
        adjectives=_words("surprising|new|daily|healthy|common|hidden|early"),
        subcategories={
            "health-news": _words("vaccine|outbreak|hospital|clinical trial|health officials|drug prices|recall|"
                                  "measles|insurance plan|new guideline|public health|flu shot"),
            "wellness": _words("meditation|stress|morning routine|breathing exercise|burnout|gratitude|self-care|"
                               "digital detox|anxiety|sleep schedule|mindfulness|happiness"),
            "nutrition": _words("protein|sugar|fiber|breakfast|intermittent fasting|coffee|olive oil|snack|"
                                "plant-based diet|processed food|salt|leafy greens"),
            "fitness": _words("workout|running|strength training|walking|yoga class|core muscles|marathon|stretching|"
                              "home gym|cardio|squats|personal trainer"),
            "medical": _words("cancer|diabetes|Alzheimer's|surgery|dementia|stroke|heart attack|cholesterol|kidney|"
                              "blood test|chronic pain|arthritis"),
        },
        entities=(_e("Bayfield Medical Center", "O", "Bayfield Medical"), _e("Dr. Priya Raman", "P"),
                  _e("Institute for Heart Research", "O"), _e("Harbor Health Network", "O"),
                  _e("Dr. Samuel Okoye", "P"), _e("National Wellness Council", "O")),
    ),
    Category(
        name="travel", share=0.06,
        nouns=_words("vacation|destination|hotel|flight|road trip|travelers|airport|beach|tourists|bucket list|"
                     "itinerary|passport|resort|getaway"),
        verbs=_words("reopens|welcomes|ranks|offers|bans|adds|charms|tops"),
        adjectives=_words("hidden|scenic|crowded|affordable|remote|charming|underrated"),
        subcategories={
            "travelnews": _words("airline|flight delays|travel advisory|security line|baggage fees|holiday travel|"
                                 "cruise ship|new route|TSA|frequent flyers|airport lounge|visa rules"),
            "traveltripideas": _words("small town|weekend getaway|national park|hiking trail|island|ski resort|"
                                      "wine country|lakeside cabin|Christmas market|fall foliage|historic district|"
                                      "scenic drive"),
            "travel-adventure": _words("mountain trek|kayak trip|safari|campsite|volcano|glacier|hot springs|canyon|"
                                       "waterfall|backpackers|desert|cave tour"),
            "travel-cruises": _words("cruise line|cruise deck|ocean voyage|port of call|cabin upgrade|river cruise|"
                                     "shore excursion|captain|buffet|ship tour|sea day|cruise passengers"),
        },
        entities=(_e("SkyWays Airlines", "O", "SkyWays"), _e("Bluecrest Cruises", "O"),
                  _e("Silverpine National Park", "O"),
                  _e("Isla Corvina", "G"), _e("Grand Meridian Hotel", "O"), _e("Wanderlust Travel Guide", "O")),
    ),
    Category(
        name="foodanddrink", share=0.07,
        nouns=_words("recipe|dinner|chef|restaurant|menu|dessert|comfort food|meal prep|holiday feast|kitchen|"
                     "ingredient|leftovers|flavor|side dish"),
        verbs=_words("serves|perfects|reinvents|upgrades|closes|opens|adds|tops"),
        adjectives=_words("easy|crispy|cheesy|classic|spicy|homemade|delicious"),
        subcategories={
            "recipes": _words("casserole|slow cooker|sheet pan dinner|soup|pasta bake|chili|roast chicken|stir-fry|"
                              "salad|one-pot meal|meatballs|pancakes"),
            "foodnews": _words("fast food chain|food recall|grocery store|new menu item|pumpkin spice|taco|burger|"
                               "limited edition|food trend|drive-thru|snack brand|pizza"),
            "restaurantsandnews": _words("diner|steakhouse|bakery|food truck|Michelin star|brunch spot|barbecue joint|"
                                         "reservation|tasting menu|waitstaff|dining room|local cafe"),
            "beverages": _words("coffee|craft beer|wine|cocktail|hot chocolate|tea|smoothie|whiskey|eggnog|cider|"
                                "sparkling water|espresso"),
            "baking": _words("pie crust|cookies|sourdough|banana bread|cake|cinnamon rolls|muffins|frosting|brownies|"
                             "apple pie|croissant|cheesecake"),
        },
        entities=(_e("Marco Bellini", "P", "Chef Bellini"), _e("Golden Spoon Diner", "O"),
                  _e("Crave Burger Co.", "O", "Crave Burger"),
                  _e("Hannah Liu", "P"), _e("Riverside Bakery", "O"), _e("FreshMart", "O")),
    ),
    Category(
        name="weather", share=0.04,
        nouns=_words("forecast|storm|rainfall|snow|cold front|heat wave|wind gusts|temperatures|flood watch|"
                     "weekend weather|sunshine|frost|fog|thunderstorms"),
        verbs=_words("brings|hits|threatens|slams|drops|delivers|grips|sweeps"),
        adjectives=_words("record|heavy|freezing|severe|mild|gusty|first"),
        subcategories={
            "weathertopstories": _words("winter storm|polar vortex|first snowfall|arctic blast|holiday forecast|"
                                        "ice storm|nor'easter|weekend storm|blizzard|heavy rain|power outages|"
                                        "travel trouble"),
            "weather-forecast": _words("seven-day outlook|morning commute|weekend outlook|chance of rain|high pressure|"
                                       "overnight lows|afternoon highs|radar|weather models|dry spell|warming trend|"
                                       "cloud cover"),
            "climate": _words("climate change|sea level|drought|wildfire season|carbon emissions|melting ice|"
                              "warmest year|coral reef|rising seas|glacier loss|extreme heat|climate report"),
            "severeweather": _words("tornado|hurricane|flash flood|hailstorm|tornado warning|storm damage|evacuation|"
                                    "landslide|storm surge|lightning|tropical storm|emergency crews"),
        },
        entities=(_e("National Weather Bureau", "O"), _e("Kim Darrow", "P", "Meteorologist Kim Darrow"),
                  _e("Coastal Storm Center", "O"), _e("Skywatch Radar Network", "O", "Skywatch")),
    ),
    Category(
        name="autos", share=0.05,
        nouns=_words("pickup truck|SUV|sedan|electric car|dealership|recall|gas prices|car buyers|engine|horsepower|"
                     "road test|fuel economy|lease deal|trade-in"),
        verbs=_words("unveils|recalls|tests|beats|launches|upgrades|drops|reveals"),
        adjectives=_words("fastest|affordable|rugged|sleek|reliable|new|luxury"),
        subcategories={
            "autosnews": _words("auto show|sales figures|tariffs|factory strike|safety rating|self-driving test|"
                                "price hike|model year|car prices|chip shortage|crash test|assembly plant"),
            "autosreview": _words("test drive|interior|cabin tech|ride quality|towing capacity|trim level|infotainment|"
                                  "cargo space|handling|MPG|first drive|verdict"),
            "autosenthusiasts": _words("classic car|muscle car|race track|restoration|barn find|supercar|drag race|"
                                       "car show|custom build|V8|vintage truck|collector"),
            "autosresearch": _words("used cars|car insurance|maintenance tips|resale value|best buys|warranty|"
                                    "tire pressure|oil change|financing|depreciation|car loan|cheapest cars"),
            "autoselectric": _words("charging station|battery range|EV tax credit|hybrid|electric pickup|fast charger|"
                                    "range anxiety|charging network|EV sales|home charger|solid-state battery|"
                                    "electric motor"),
        },
        entities=(_e("Kestrel Motors", "O", "Kestrel"), _e("Voltera", "O"), _e("Ironhorse Trucks", "O", "Ironhorse"),
                  _e("Lena Hartmann", "P"), _e("Autoline Review", "O")),
    ),
    Category(
        name="tv", share=0.04,
        nouns=_words("season finale|episode|series|cast|showrunner|ratings|premiere|spinoff|streaming deal|character|"
                     "plot twist|reboot|audience|trailer"),
        verbs=_words("renews|cancels|teases|confirms|reveals|shocks|drops|delays"),
        adjectives=_words("explosive|emotional|surprise|final|long-running|hit|new"),
        subcategories={
            "tvnews": _words("network|renewal|cancellation|casting news|air date|late-night host|talk show|"
                             "writers room|Nielsen ratings|fall lineup|TV deal|pilot"),
            "tv-celebrity": _words("reality star|talk show host|actress|host|contestant|former star|TV couple|judge|"
                                   "sitcom star|anchor|guest star|news anchor"),
            "tv-recaps": _words("recap|cliffhanger|elimination|finale recap|love triangle|betrayal|rose ceremony|"
                                "twist ending|flashback|showdown|final challenge|tribal council"),
            "tv-streaming": _words("streaming service|binge-watch|subscription price|original series|docuseries|"
                                   "watch list|limited series|true crime series|free trial|streaming charts|"
                                   "new releases|season two"),
        },
        entities=(_e("Northwind Network", "O", "Northwind"), _e("StreamBox", "O"), _e("Ava Sinclair", "P"),
                  _e("Rick Moreno", "P"), _e("Harbor Lights", "O")),
    ),
    Category(
        name="music", share=0.03,
        nouns=_words("album|single|tour|concert|band|singer|fans|music video|setlist|chart|record label|duet|comeback|"
                     "playlist"),
        verbs=_words("releases|announces|cancels|teases|headlines|tops|covers|drops"),
        adjectives=_words("surprise|sold-out|emotional|acoustic|new|farewell|iconic"),
        subcategories={
            "musicnews": _words("tour dates|festival lineup|ticket prices|record sales|new album|reunion tour|"
                                "streaming record|music festival|lawsuit|label deal|vinyl release|live album"),
            "music-celebrity": _words("pop star|rapper|country singer|frontman|diva|songwriter|drummer|guitarist|"
                                      "boy band|superstar|duo|legend"),
            "music-reviews": _words("track list|lyrics|production|debut album|ballad|chorus|sophomore album|rating|"
                                    "verdict|standout track|sound|deluxe edition"),
            "music-awards": _words("Grammy nominations|award show|best new artist|performance|acceptance speech|"
                                   "red carpet|song of the year|host|snub|trophy|nominees|tribute"),
        },
        entities=(_e("Luna Vega", "P"), _e("The Midnight Owls", "O", "Midnight Owls"), _e("Calvin Reese", "P"),
                  _e("Echo Records", "O"), _e("Sadie Brooks", "P"), _e("Summerfield Festival", "O")),
    ),
    Category(
        name="movies", share=0.03,
        nouns=_words("box office|sequel|director|trailer|film|premiere|franchise|blockbuster|screenplay|casting|"
                     "opening weekend|remake|horror movie|release date"),
        verbs=_words("tops|debuts|delays|casts|reveals|earns|bombs|wins"),
        adjectives=_words("highly anticipated|surprise|record-breaking|animated|dark|star-studded|holiday"),
        subcategories={
            "movienews": _words("studio|production|reshoots|theater chain|streaming release|film festival|casting call|"
                                "movie deal|script|budget|box office record|sequel plans"),
            "movies-celebrity": _words("leading man|movie star|actor|child star|stunt double|co-star|Hollywood couple|"
                                       "screen legend|heartthrob|villain|superhero actor|starlet"),
            "movies-reviews": _words("performance|plot|cinematography|ending|special effects|soundtrack|pacing|critics|"
                                     "rotten score|run time|verdict|twist"),
            "movies-awards": _words("Oscar race|best picture|nominations|golden statue|frontrunner|campaign|"
                                    "awards season|best actress|best director|screening|acceptance speech|upset"),
        },
        entities=(_e("Silverline Studios", "O", "Silverline"), _e("Owen Castellano", "P"), _e("Mira Delacroix", "P"),
                  _e("Galaxy Cinemas", "O"), _e("Academy of Screen Arts", "O")),
    ),
    Category(
        name="video", share=0.05,
        nouns=_words("video|clip|footage|camera|viewers|moment|reaction|live stream|close call|compilation|slow motion|"
                     "drone footage|onlookers|rescue"),
        verbs=_words("captures|shows|stuns|delights|terrifies|amazes|surprises"),
        adjectives=_words("adorable|incredible|hilarious|terrifying|rare|jaw-dropping|viral"),
        subcategories={
            "animals": _words("bear|dolphin|elephant|baby goat|owl|raccoon|shark|dog|cat|whale|deer|penguin"),
            "viral": _words("dance routine|prank|wedding fail|magic trick|street performer|toddler|flash mob|challenge|"
                            "dad joke|robot dance|trick shot|reaction video"),
            "video-news": _words("dashcam|bodycam|eyewitness video|drone|rescue crews|firefighters|police footage|"
                                 "crash|protest|courtroom|press conference|sinkhole"),
            "wonder": _words("northern lights|meteor|eclipse|waterfall|time-lapse|rainbow|deep sea|volcano eruption|"
                             "storm clouds|sunrise|iceberg|galaxy"),
        },
        entities=(_e("Wildview Channel", "O", "Wildview"), _e("Tommy Reyes", "P"), _e("ClipCentral", "O")),
    ),
    Category(
        name="entertainment", share=0.03,
        nouns=_words("celebrity|fans|interview|scandal|rumor|premiere|party|announcement|couple|feud|award|photo shoot|"
                     "birthday|statement"),
        verbs=_words("confirms|denies|reveals|slams|celebrates|addresses|teases|jokes about"),
        adjectives=_words("shocking|sweet|candid|bizarre|secret|public|rare"),
        subcategories={
            "celebrity": _words("engagement|breakup|red carpet|baby news|Instagram post|divorce|date night|throwback|"
                                "memoir|net worth|lookalike|reunion"),
            "humor": _words("comedian|stand-up special|parody|joke|satire|sketch|cartoon|punchline|comedy tour|roast|"
                            "funny tweets|late-night bit"),
            "gaming": _words("video game|console|esports|game trailer|speedrun|launch day|patch|multiplayer|"
                             "gaming chair|controller|retro game|open world"),
            "books": _words("novel|bestseller|author|book club|reading list|book tour|literary prize|library|"
                            "page-turner|series finale|audiobook|first edition"),
        },
        entities=(_e("Bella Kingsley", "P"), _e("Theo Marchetti", "P"), _e("Pixelforge Games", "O", "Pixelforge"),
                  _e("Starlight Magazine", "O"), _e("Ruth Okonkwo", "P")),
    ),
    Category(
        name="kids", share=0.02,
        nouns=_words("kids|activity|craft|science project|story|classroom|puzzle|holiday craft|family game|learning|"
                     "drawing|experiment|fun facts|playground"),
        verbs=_words("teaches|explores|builds|discovers|creates|solves|celebrates"),
        adjectives=_words("fun|colorful|easy|curious|silly|creative|amazing"),
        subcategories={
            "kids-animals": _words("baby animals|zoo|farm animals|dinosaurs|butterflies|ocean animals|pets|bugs|birds|"
                                   "jungle|panda|koala"),
            "kids-science": _words("volcano model|solar system|magnets|slime|rainbow experiment|rocket|plants|"
                                   "weather station|robots|fossils|microscope|electricity"),
            "kids-games": _words("board game|scavenger hunt|riddle|maze|word search|card game|hide and seek|"
                                 "treasure map|coloring page|trivia|building blocks|crossword"),
            "kids-stories": _words("bedtime story|fairy tale|picture book|dragon|princess|adventure|talking animals|"
                                   "magic forest|pirate|superhero|friendship|mystery"),
        },
        entities=(_e("Little Explorers Club", "O"), _e("Professor Pip", "P"), _e("Bramble Zoo", "O"),
                  _e("Kidzone Museum", "O")),
    ),
)

_RAW_COMMON = CommonWords(
    tails=_words("this week|after long delay|amid growing concern|for the first time|ahead of the holidays|"
                 "despite setbacks|in surprise move|as fans react|before the weekend|across the region|in record time|"
                 "after years of debate|on Monday|on Friday|overnight|for a second year|with a twist|again|at last|"
                 "by a wide margin"),
    places=(_e("Port Calder", "G"), _e("Ashford Bay", "G"), _e("Millbrook County", "G"), _e("Ravenna Springs", "G"),
            _e("Lake Orland", "G"), _e("New Bramwell", "G"), _e("Westmoor", "G"), _e("Kestrel Valley", "G")),
)


#: Publishers, most to least authoritative: wire services, national outlets, regional and specialist
#: outlets, tabloids and aggregators, content farms. Shares sum to 1.
OUTLETS: tuple[Outlet, ...] = (
    Outlet("Continental Press Wire", "continentalpress", 0.95, 0.08),
    Outlet("Meridian News Service", "meridiannews", 0.92, 0.06),
    Outlet("The Harbor City Chronicle", "harborchronicle", 0.85, 0.08),
    Outlet("National Broadcast Network", "nbn-news", 0.82, 0.07),
    Outlet("The Daily Ledger", "dailyledger", 0.78, 0.07),
    Outlet("The Evening Post", "eveningpost", 0.72, 0.06),
    Outlet("Ashford Bay Gazette", "ashfordgazette", 0.65, 0.06),
    Outlet("Kestrel Valley Courier", "kestrelcourier", 0.60, 0.05),
    Outlet("The Midweek Review", "midweekreview", 0.58, 0.06),
    Outlet("Pulse Magazine", "pulsemagazine", 0.55, 0.05),
    Outlet("The Buzz Daily", "buzzdaily", 0.35, 0.07),
    Outlet("Trending Now", "trendingnow", 0.30, 0.07),
    Outlet("Viral Stories Hub", "viralstorieshub", 0.22, 0.06),
    Outlet("ClickFeed", "clickfeed", 0.10, 0.06),
    Outlet("Top Lists Daily", "toplistsdaily", 0.08, 0.05),
    Outlet("News4U Now", "news4unow", 0.05, 0.05),
)


def _with_ids(entities: tuple[Entity, ...], first: int) -> tuple[Entity, ...]:
    return tuple(Entity(e.label, e.type, f"Q9{first + i:06d}", e.surface) for i, e in enumerate(entities))


def _assign_ids() -> tuple[tuple[Category, ...], CommonWords]:
    """Give every entity a distinct fake WikidataId, in declaration order (stable across runs)."""
    common = CommonWords(_RAW_COMMON.tails, _with_ids(_RAW_COMMON.places, 1))
    next_id = 1 + len(common.places)
    cats = []
    for c in _RAW_CATEGORIES:
        cats.append(Category(c.name, c.share, c.nouns, c.verbs, c.adjectives, c.subcategories,
                             _with_ids(c.entities, next_id)))
        next_id += len(c.entities)
    return tuple(cats), common


CATEGORIES, COMMON = _assign_ids()

#: Profile views of a user (``user_profiles.tsv``) and the categories that nudge each value.
REGIONS: dict[str, tuple[str, ...]] = {
    "northeast": ("finance", "news"),
    "southeast": ("sports", "foodanddrink"),
    "midwest": ("weather", "autos"),
    "southwest": ("travel", "health"),
    "west": ("movies", "music", "tv"),
}
DEVICES: dict[str, tuple[str, ...]] = {
    "mobile": ("sports", "video", "entertainment"),
    "desktop": ("finance", "news", "autos"),
    "tablet": ("kids", "foodanddrink", "lifestyle"),
}


def subcategory_table() -> list[tuple[str, str]]:
    """All ``(category, subcategory)`` pairs in a fixed order (the index used by the generator)."""
    return [(c.name, s) for c in CATEGORIES for s in c.subcategories]
