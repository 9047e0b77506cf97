"""Topic vocabularies for the synthetic news platform.

Titles, summaries and bodies are composed from these words, so articles of one
topic share a vocabulary that a sentence embedder picks up: the demo's content
embeddings carry real topic signal without any real data.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TopicVocabulary:
    """Words that make an article recognisably about one topic."""

    name: str
    entities: tuple[str, ...]  # people, teams, organisations, places: the subjects of titles
    nouns: tuple[str, ...]  # what the story is about
    verbs: tuple[str, ...]  # present tense, third person ("wins", "cuts")
    adjectives: tuple[str, ...]
    related: tuple[str, ...] = ()  # topics an article may also be tagged with


# fmt: off
TOPICS: tuple[TopicVocabulary, ...] = (
    TopicVocabulary(
        "Football",
        ("Arsenal", "Real Madrid", "Bayern Munich", "the national side", "Liverpool", "Juventus",
         "the league leaders", "Celtic", "the Premier League", "the Champions League holders"),
        ("transfer", "derby", "penalty shoot-out", "title race", "midfield", "goalkeeper", "relegation fight",
         "striker", "hat-trick", "cup final", "injury-time winner", "manager"),
        ("beats", "signs", "sacks", "draws with", "thrashes", "knocks out", "edges past", "eyes"),
        ("stunning", "late", "bruising", "record", "goalless", "dramatic"),
        ("Crime",),
    ),
    TopicVocabulary(
        "Tennis",
        ("Alcaraz", "Sinner", "Swiatek", "Djokovic", "Sabalenka", "Gauff", "Wimbledon", "Roland Garros",
         "the US Open", "the ATP Finals"),
        ("tie-break", "serve", "baseline rally", "grand slam", "five-setter", "seeding", "clay season",
         "backhand", "match point", "doubles final", "ranking", "grass court"),
        ("outlasts", "withdraws from", "saves", "dominates", "upsets", "clinches", "serves out", "reaches"),
        ("straight-sets", "marathon", "top-seeded", "breathless", "clinical", "gruelling"),
    ),
    TopicVocabulary(
        "Climate",
        ("the IPCC", "COP delegates", "the Arctic", "climate scientists", "the Amazon", "Greenland",
         "the Paris Agreement", "coastal cities", "the Met Office", "glaciologists"),
        ("emissions", "heatwave", "carbon budget", "sea-level rise", "drought", "wildfire season",
         "deforestation", "ice sheet", "net zero", "methane", "adaptation fund", "warming"),
        ("warns of", "records", "accelerates", "pledges", "melts", "threatens", "tracks", "cuts"),
        ("record-breaking", "unprecedented", "extreme", "fragile", "rapid", "warming"),
        ("Energy", "Science"),
    ),
    TopicVocabulary(
        "Elections",
        ("the electoral commission", "the opposition leader", "the incumbent", "swing voters",
         "the governing party", "pollsters", "the senate candidate", "young voters", "the prime minister",
         "the campaign"),
        ("ballot", "polling station", "turnout", "exit poll", "campaign trail", "manifesto", "debate",
         "recount", "coalition", "constituency", "primary", "vote count"),
        ("leads", "concedes", "campaigns in", "trails", "courts", "wins over", "calls", "challenges"),
        ("narrow", "decisive", "contested", "televised", "landslide", "early"),
    ),
    TopicVocabulary(
        "AI",
        ("OpenAI", "DeepMind", "Anthropic", "the EU AI Office", "Nvidia", "machine-learning researchers",
         "chatbot makers", "Hugging Face", "the open-source community", "AI labs"),
        ("language model", "GPU cluster", "training run", "benchmark", "neural network", "inference chip",
         "alignment", "transformer", "dataset", "reasoning model", "fine-tuning", "AI safety"),
        ("releases", "trains", "open-sources", "benchmarks", "fine-tunes", "scales", "audits", "deploys"),
        ("multimodal", "generative", "frontier", "open-weight", "autonomous", "state-of-the-art"),
        ("Startups", "Science"),
    ),
    TopicVocabulary(
        "Space",
        ("NASA", "ESA", "SpaceX", "the James Webb telescope", "astronauts", "the Artemis mission",
         "the ISS crew", "Mars rover", "ISRO", "astronomers"),
        ("rocket launch", "orbit", "lunar lander", "exoplanet", "space station", "booster", "galaxy",
         "spacewalk", "satellite constellation", "black hole", "launch pad", "asteroid"),
        ("launches", "docks with", "lands on", "spots", "orbits", "captures", "delays", "images"),
        ("reusable", "distant", "crewed", "interstellar", "lunar", "orbital"),
        ("Science",),
    ),
    TopicVocabulary(
        "Markets",
        ("Wall Street", "the FTSE 100", "the Federal Reserve", "bond traders", "the ECB", "hedge funds",
         "the Nasdaq", "oil traders", "the dollar", "central bankers"),
        ("interest rates", "inflation", "earnings season", "bond yields", "stock rally", "sell-off",
         "dividend", "currency", "recession fears", "quarterly results", "IPO", "share price"),
        ("rallies", "slumps", "raises", "holds", "tumbles", "rebounds", "prices in", "hedges"),
        ("volatile", "bullish", "bearish", "quarterly", "record-high", "jittery"),
        ("Energy", "Startups"),
    ),
    TopicVocabulary(
        "Startups",
        ("Y Combinator", "venture capitalists", "a fintech unicorn", "Sequoia", "founders", "angel investors",
         "a Berlin startup", "the seed fund", "a Lisbon scale-up", "accelerators"),
        ("funding round", "valuation", "pitch deck", "Series A", "runway", "product launch", "acquisition",
         "burn rate", "term sheet", "demo day", "layoffs", "exit"),
        ("raises", "pivots", "acquires", "launches", "scales", "shuts down", "backs", "spins out"),
        ("bootstrapped", "venture-backed", "fast-growing", "early-stage", "lean", "disruptive"),
        ("AI", "Markets"),
    ),
    TopicVocabulary(
        "Health",
        ("the WHO", "the NHS", "doctors", "nurses", "the health ministry", "epidemiologists", "hospitals",
         "vaccine makers", "cardiologists", "the CDC"),
        ("vaccine", "clinical trial", "waiting list", "outbreak", "diabetes", "mental health",
         "cancer screening", "flu season", "antibiotics", "heart disease", "GP appointments", "diagnosis"),
        ("approves", "treats", "screens for", "warns about", "recalls", "prescribes", "vaccinates",
         "reports"),
        ("chronic", "preventive", "clinical", "infectious", "overstretched", "life-saving"),
        ("Science", "Food"),
    ),
    TopicVocabulary(
        "Food",
        ("Michelin inspectors", "street-food vendors", "a Naples pizzeria", "home cooks", "bakers",
         "a Tokyo ramen bar", "farmers' markets", "sommeliers", "celebrity chefs", "food critics"),
        ("recipe", "sourdough", "tasting menu", "olive oil", "fermentation", "spice blend", "harvest",
         "vegan menu", "pastry", "wine list", "street food", "brunch"),
        ("bakes", "serves", "ferments", "reinvents", "grills", "tastes", "pairs", "simmers"),
        ("seasonal", "crispy", "slow-cooked", "organic", "spicy", "homemade"),
        ("Health", "Travel"),
    ),
    TopicVocabulary(
        "Travel",
        ("budget airlines", "Lisbon", "Kyoto", "the Alps", "backpackers", "cruise operators", "Patagonia",
         "night-train operators", "tourism boards", "Iceland"),
        ("itinerary", "boarding pass", "hostel", "road trip", "visa rules", "flight delays", "island hopping",
         "hiking trail", "hotel prices", "sleeper train", "passport queue", "travel guide"),
        ("explores", "reopens", "books", "visits", "hikes", "cancels", "discovers", "connects"),
        ("off-season", "scenic", "remote", "crowded", "budget", "coastal"),
        ("Food",),
    ),
    TopicVocabulary(
        "Film",
        ("Cannes", "the Oscars", "Netflix", "Christopher Nolan", "Greta Gerwig", "independent studios",
         "A24", "the Berlinale", "box-office analysts", "the Academy"),
        ("blockbuster", "director's cut", "screenplay", "premiere", "sequel", "box office", "documentary",
         "casting", "trailer", "film festival", "cinematography", "red carpet"),
        ("premieres", "casts", "directs", "streams", "wins", "adapts", "reboots", "shoots"),
        ("cinematic", "award-winning", "low-budget", "animated", "critically acclaimed", "long-awaited"),
        ("Music",),
    ),
    TopicVocabulary(
        "Music",
        ("Taylor Swift", "Glastonbury", "Beyonce", "the Grammys", "Spotify", "jazz quartets",
         "the philharmonic", "indie bands", "K-pop groups", "record labels"),
        ("album", "world tour", "setlist", "vinyl reissue", "streaming charts", "headline slot", "single",
         "concert hall", "festival lineup", "music video", "symphony", "encore"),
        ("headlines", "drops", "tours", "records", "covers", "remixes", "sells out", "announces"),
        ("acoustic", "chart-topping", "live", "orchestral", "experimental", "sold-out"),
        ("Film",),
    ),
    TopicVocabulary(
        "Gaming",
        ("Nintendo", "PlayStation", "Xbox", "indie developers", "esports teams", "Valve", "speedrunners",
         "Riot Games", "the Game Awards", "modders"),
        ("console", "patch notes", "open world", "multiplayer", "boss fight", "early access", "esports final",
         "game engine", "loot box", "controller", "speedrun", "expansion pack"),
        ("patches", "unveils", "delays", "remasters", "streams", "speedruns", "ships", "teases"),
        ("pixel-art", "competitive", "co-op", "next-gen", "retro", "open-world"),
        ("AI",),
    ),
    TopicVocabulary(
        "Science",
        ("physicists", "CERN", "biologists", "the Royal Society", "geneticists", "neuroscientists",
         "chemists", "a Max Planck institute", "marine biologists", "palaeontologists"),
        ("experiment", "particle collider", "genome", "peer review", "fossil", "microscope", "enzyme",
         "quantum computer", "laboratory", "dinosaur", "cell biology", "hypothesis"),
        ("discovers", "measures", "sequences", "publishes", "replicates", "observes", "maps", "tests"),
        ("peer-reviewed", "quantum", "microscopic", "surprising", "prehistoric", "genetic"),
        ("Space", "Health"),
    ),
    TopicVocabulary(
        "Education",
        ("teachers' unions", "the education secretary", "universities", "primary schools", "students",
         "exam boards", "head teachers", "Ofsted", "student loan providers", "school governors"),
        ("curriculum", "tuition fees", "exam results", "classroom", "scholarship", "school meals", "homework",
         "teacher shortage", "university admissions", "reading scores", "apprenticeship", "graduation"),
        ("teaches", "reforms", "funds", "grades", "enrols", "inspects", "expands", "trains"),
        ("academic", "underfunded", "inclusive", "bilingual", "vocational", "oversubscribed"),
    ),
    TopicVocabulary(
        "Housing",
        ("first-time buyers", "renters", "housing associations", "the planning inspectorate", "landlords",
         "mortgage lenders", "city councils", "estate agents", "developers", "tenant unions"),
        ("mortgage rates", "rent cap", "house prices", "planning permission", "social housing", "eviction",
         "new-build homes", "deposit", "leasehold", "housing shortage", "stamp duty", "affordable homes"),
        ("builds", "rents", "approves", "evicts", "lowers", "caps", "buys", "renovates"),
        ("affordable", "overcrowded", "energy-efficient", "suburban", "high-rise", "rented"),
        ("Markets",),
    ),
    TopicVocabulary(
        "Crime",
        ("detectives", "the Metropolitan Police", "prosecutors", "a crown court jury", "Interpol",
         "fraud investigators", "the defence team", "witnesses", "the coroner", "cybercrime units"),
        ("trial", "verdict", "burglary", "fraud case", "arrest", "court hearing", "sentencing", "heist",
         "investigation", "money laundering", "bail", "ransomware attack"),
        ("charges", "arrests", "convicts", "acquits", "investigates", "jails", "questions", "sentences"),
        ("unsolved", "high-profile", "fraudulent", "armed", "cold-case", "organised"),
    ),
    TopicVocabulary(
        "Energy",
        ("OPEC", "National Grid", "wind-farm operators", "the energy regulator", "solar installers",
         "nuclear engineers", "utility companies", "battery makers", "the North Sea fields",
         "heat-pump firms"),
        ("power grid", "solar panels", "offshore wind", "energy bills", "nuclear reactor", "battery storage",
         "gas prices", "heat pump", "pipeline", "electricity market", "hydrogen", "oil output"),
        ("generates", "connects", "cuts", "powers", "decommissions", "installs", "stores", "exports"),
        ("renewable", "low-carbon", "offshore", "grid-scale", "nuclear", "off-grid"),
        ("Climate", "Markets"),
    ),
    TopicVocabulary(
        "Fashion",
        ("Paris Fashion Week", "Chanel", "Gucci", "streetwear labels", "Vogue editors", "runway models",
         "vintage sellers", "Milan designers", "fast-fashion brands", "couturiers"),
        ("runway show", "collection", "couture", "sneaker drop", "tailoring", "fabric", "trend forecast",
         "capsule wardrobe", "handbag", "second-hand clothing", "catwalk", "silhouette"),
        ("debuts", "designs", "styles", "tailors", "revives", "showcases", "resells", "dresses"),
        ("oversized", "minimalist", "sustainable", "vintage", "bold", "tailored"),
    ),
)
# fmt: on

# Sentences any article may end with; shared across topics, so they are noise to the embedder.
GENERIC_SENTENCES: tuple[str, ...] = (
    "Officials said more details would follow in the coming days.",
    "The announcement drew mixed reactions online.",
    "Analysts expect the debate to continue for some time.",
    "It is the latest chapter in a story that has run for months.",
    "Critics say the decision raises more questions than it answers.",
    "Supporters welcomed the news on Tuesday.",
    "The full report is expected to be published next month.",
    "Not everyone is convinced the change will last.",
)

TOPIC_BY_NAME: dict[str, TopicVocabulary] = {topic.name: topic for topic in TOPICS}
