"""Word lists of entity linking: common words, Title Case minor words, quotes, sequel numbers, genre words.

Constants only; :mod:`kg.evidence` and :mod:`kg.linker` decide what they mean for a match.
"""

from __future__ import annotations

# English function words and the ~600 most frequent words of ReDial train_subset.jsonl messages
# (placeholders removed, names of people and franchises taken out). Tuned on train only.
COMMON_WORDS = frozenset(
    """
    80s 90s a able about above absolutely action actor actors actually add adult adults adventure after afternoon
    again against ago agree ah all almost along alot already alright also although always am amazing an and animated
    animation another any anything appreciate are arent around as asking at awesome back bad based be because been
    before being believe below best bet better between big bit black book books both boy british bro but by bye
    called came can cant care catch chance chat chatting check children childrens choice choices choose christmas
    classic classics come comedies comedy comes comic coming consider cool could couldnt couple course crazy creepy
    crime cry cute d dark date daughter day days decent definitely did didnt different director do documentary does
    doesnt doing don done dont down drama dramas during each either else end enjoy enjoyed enough entertaining
    especially even evening ever every everyone everything exactly excellent except excited familiar family fan
    fantastic fantasy far fav favorite favorites feel few fi fiction film films find fine first flick flicks for
    forget forgot forward found franchise friend friendly friends from full fun funny further gave genre genres get
    gets getting girl girls give glad go goes going good goodbye gory got great guess guy guys ha had haha hahaha
    happy hard has hasnt have havent having he hear heard hello help helped helpful her here hero hers herself hes
    hey hi high highly hilarious him himself his historical hmm hmmm home honestly hope hopefully hoping horror how
    hows huge humor husband i id idea ideas if ill im in intense interest interested interesting into is isnt it its
    itself ive job just keep kid kids kind kinda kinds king know last lately later laugh least let lets life like
    liked likes line lines list little live lol long look looking looks lot lots love loved loves made main make
    makes man many may maybe me mean meant mentioned might mind mine modern mood more morning most movie movies much
    music musical musicals must my myself mystery name need never new newer next nice night no nope nor not nothing
    now of off oh ohh ok okay old older on once one ones only ooh open opinion or original other others our ours
    ourselves out over own packed part particular past people perfect perhaps pick plays please plot popular prefer
    pretty probably problem psychological put quite rated re read real really recent recently recommend
    recommendation recommendations related remake remember reminds rent rest reviews rewatch right rock romance
    romantic s sad said same saw say scary scenes school sci science second see seeing seem seems seen sequel
    sequels series serious set she shes should shouldnt show silly similar since so some something son soon sorry
    sort sound sounds space specific sports star starring stars start still stories story stuff style such suggest
    suggestion suggestions super superhero supposed sure suspense sweet t take talking taste teens tell than thank
    thanks that thats the theater theaters their theirs them themselves then there theres these they theyre thing
    things think thinking this those though thought three thriller thrillers through time times to today together
    tonight too top totally trailer true try trying twist two type types u under until up us used usually version
    very wait want wanted wanting war was wasnt watch watched watching way we week weekend weird welcome well were
    werent western weve what whats when where which while who whole whom why will with won wonderful wont work world
    worth would wouldnt wow wrong ya yea yeah year years yep yes yet you youd youll young your youre yours yourself
    yourselves youve yup
    sigh ugh yay oops whoa yikes phew ouch aww meh
    monday tuesday wednesday thursday friday saturday sunday january february march april june july august
    september october november december holiday holidays
    """.split()
)
# Words Title Case leaves in lower case ("The Lord of the Rings").
MINOR_WORDS = frozenset("a an and as at but by for from in nor of on or the to vs with".split())
ARTICLES = frozenset({"the", "a", "an"})
QUOTES = frozenset("\"'“”‘’«»")
SENTENCE_END = frozenset(".!?:;\n")
ROMAN_TO_ARABIC = {"ii": "2", "iii": "3", "iv": "4", "v": "5", "vi": "6", "vii": "7", "viii": "8", "ix": "9"}
ARABIC_TO_ROMAN = {arabic: roman for roman, arabic in ROMAN_TO_ARABIC.items()}

# Genre words in text, keyed by the genre they mean: a ReDial (IMDb) genre, looked up in the graph as
# kg.graph's metadata extension does (GENRE_ALIASES, "<genre> (genre)" nodes), or another KG genre.
GENRE_WORDS: dict[str, tuple[str, ...]] = {
    "action": ("action",),
    "adventure": ("adventure", "adventures"),
    "animation": ("animation", "animated", "cartoon", "cartoons"),
    "biography": ("biography", "biographies", "biographical", "biopic", "biopics"),
    "comedy": ("comedy", "comedies", "comedic", "funny"),
    "crime": ("crime",),
    "documentary": ("documentary", "documentaries"),
    "drama": ("drama", "dramas", "dramatic"),
    "family": ("family", "family friendly"),
    "fantasy": ("fantasy", "fantasies"),
    "film-noir": ("film noir", "noir"),
    "history": ("history", "historical"),
    "horror": ("horror", "horrors", "scary", "slasher", "slashers"),
    "music": ("music",),
    "musical": ("musical", "musicals"),
    "mystery": ("mystery", "mysteries"),
    "romance": ("romance", "romances", "romantic", "romcom", "romcoms", "rom com", "rom coms"),
    "sci-fi": ("sci fi", "scifi", "science fiction"),
    "sport": ("sport", "sports"),
    "thriller": ("thriller", "thrillers", "suspense", "suspenseful"),
    "war": ("war",),
    "western": ("western", "westerns"),
    "superhero": ("superhero", "superheroes", "super hero", "super heroes"),
    "martial arts": ("martial arts", "kung fu"),
}
# Genre words that are often not about a genre ("my family", "that's funny").
AMBIGUOUS_GENRE_WORDS = frozenset(
    "family history historical music sport sports war funny scary dramatic musical western crime mystery".split()
)
# Words that make a nearby ambiguous genre word mean the genre ("family movies", "something scary").
GENRE_CONTEXT_WORDS = frozenset(
    "movie movies film films flick flicks genre genres show shows series something anything stuff kind kinds "
    "type types ones fan fans".split()
)

# Studios a user may ask for by name ("a Pixar movie", "nothing from Disney"): the word typed → the
# words the KG company's name must hold (a production company; ``distributor`` also counts for those
# known as distributors), matched as whole words on folded names.
STUDIO_WORDS: dict[str, tuple[tuple[str, ...], bool]] = {
    "pixar": (("pixar",), False),
    "disney": (("walt disney pictures", "walt disney animation studios", "walt disney feature animation",
                "walt disney productions", "disneytoon studios", "disneynature"), False),
    "marvel": (("marvel studios", "marvel entertainment", "marvel enterprises"), False),
    "dc": (("dc entertainment", "dc films", "dc comics"), False),
    "dreamworks": (("dreamworks",), False),
    "ghibli": (("studio ghibli",), False),
    "lucasfilm": (("lucasfilm",), False),
    "blumhouse": (("blumhouse",), True),
    "a24": (("a24",), True),
    "illumination": (("illumination entertainment", "illumination company"), False),
    "laika": (("laika",), False),
    "aardman": (("aardman",), False),
    "amblin": (("amblin",), False),
    "lionsgate": (("lionsgate", "lions gate"), True),
    "miramax": (("miramax",), True),
}
# Studios whose animated films reach the KG with only a distributor edge to the studio's own
# distribution arm (Moana, Ratatouille and The Little Mermaid are credited to "Walt Disney Studios
# Motion Pictures" or "Buena Vista" alone): the studio key → the words the distributor's folded name
# must hold. Only for movies listed as animation; the arm's live-action releases (Touchstone's,
# Miramax's) stay the distributor's.
ANIMATION_DISTRIBUTORS: dict[str, tuple[str, ...]] = {
    "disney": ("walt disney studios", "walt disney home", "buena vista"),
}
# Themes a user may ask for ("a zombie movie", "something with dinosaurs", "no Christmas movies"),
# which neither IMDb's genres nor DBpedia's carry: the key → (the words a request names it by, what
# the reply calls it after "about", the words a movie's title or plot states it by). Patterns are
# matched whole-word and case-insensitively; crs.rec.hidden_genres.stated_themes reads the last into
# Movie.plot_themes. Titles a theme word is part of ("Ghost", "Alien") are linked as movies first.
THEMES: dict[str, tuple[str, str, str]] = {
    "zombies": (r"zombies?|undead", "zombies", r"zombies?|undead|walking\s+dead"),
    "vampires": (r"vampires?|vampiric", "vampires", r"vampires?|dracula|nosferatu"),
    "werewolves": (r"werewol(?:f|ves)", "werewolves", r"werewol(?:f|ves)|lycans?"),
    "christmas": (r"christmas|xmas|x-mas", "Christmas", r"christmas|xmas|santa\s+claus|grinch|scrooge|north\s+pole"),
    "spies": (r"spy|spies|espionage|secret\s+agents?", "spies", r"spy|spies|secret\s+agents?|espionage|cia|mi6|kgb|james\s+bond|007"),
    "heists": (r"heists?|robbery|robberies|bank\s+robbers?", "heists",
               r"heists?|robbery|robberies|bank\s+robbers?|rob\s+(?:a|the)\s+(?:bank|casino|vault|museum)"),
    "time travel": (r"time[\s-]+travel(?:l?ing|l?ers?)?|time\s+machines?", "time travel",
                    r"time[\s-]+travel(?:l?ing|l?ers?|s)?|back\s+in\s+time|(?:back|forward)\s+in\s+time|time\s+machines?|time\s+loops?"),
    "dinosaurs": (r"dinosaurs?|dinos", "dinosaurs", r"dinosaurs?|t-?rex|jurassic"),
    "sharks": (r"sharks?", "sharks", r"(?<!loan\s)sharks?"),
    "pirates": (r"pirates?", "pirates", r"pirates?|buccaneers?"),
    "ghosts": (r"ghosts?|haunted\s+houses?|hauntings?", "ghosts", r"ghosts?|haunted|haunting|poltergeists?"),
    "boxing": (r"boxing|boxers?", "boxing", r"boxing|boxers?|heavyweight\s+champion(?:ship)?"),
    "serial killers": (r"serial\s+killers?", "serial killers", r"serial\s+killers?"),
    "robots": (r"robots?|androids?|cyborgs?", "robots", r"robots?|androids?|cyborgs?"),
    "james bond": (r"james\s+bond|007|bond\s+(?:movies?|films?)", "James Bond", r"james\s+bond|007"),
    "world war ii": (r"world\s+war\s+(?:ii|2|two)|wwii|ww2|second\s+world\s+war|nazis?|hitler|d-day|holocaust", "World War II",
                     r"world\s+war\s+(?:ii|2|two)|wwii|ww2|second\s+world\s+war|nazis?|hitler|d-day|holocaust|third\s+reich|gestapo|"
                     r"normandy|pearl\s+harbou?r"),
    "vietnam war": (r"vietnam(?:\s+war)?|viet\s+nam", "the Vietnam War", r"vietnam(?:ese)?|viet\s+cong"),
    "dogs": (r"(?<!hot\s)(?<!top\s)dogs?|dogg(?:y|ies)|pupp(?:y|ies)|canines?", "dogs",
             r"(?<!hot\s)(?<!top\s)(?<!reservoir\s)(?<!straw\s)(?<!war\s)(?<!wag\sthe\s)dogs?(?!\s+day)|pupp(?:y|ies)|canine"),
    "football": (r"football|soccer|nfl|quarterbacks?", "football", r"football|soccer|quarterback|nfl|super\s+bowl|touchdowns?"),
    "basketball": (r"basketball|nba", "basketball", r"basketball|nba"),
    "baseball": (r"baseball|mlb", "baseball", r"baseball|pitcher|world\s+series|major\s+league"),
    "princesses": (r"princess(?:es)?", "princesses", r"princess(?:es)?"),
    "aliens": (r"aliens|extraterrestrials?|ufos?", "aliens", r"aliens?\s+(?:invasion|invaders?|race|species|creatures?|life|planet|ship|spacecraft)|"
               r"extraterrestrials?|ufos?|(?:an|the)\s+alien\b(?!\s+(?:land|country|culture|city|world))|aliens\b(?!\s+act)|martians?"),
    "racing": (r"car\s+rac(?:ing|es)|street\s+rac(?:ing|es)|racing|race\s+cars?|nascar|formula\s+(?:one|1)", "racing",
               r"race\s+cars?|racing|nascar|formula\s+(?:one|1)|drag\s+rac(?:e|es|ing)|grand\s+prix"),
    "prison": (r"prisons?|jails?|prison\s+breaks?", "prison", r"prisons?|jail(?:ed)?|inmates?|penitentiary|incarcerat\w+|death\s+row"),
    "high school": (r"high\s+schools?", "high school", r"high\s+schools?|high-school|prom\b|senior\s+year"),
    "road trips": (r"road\s+trips?", "road trips", r"road\s+trips?|cross-country\s+(?:trip|journey|drive)"),
    "weddings": (r"weddings?", "weddings", r"weddings?|bride|groom"),
    "witches": (r"witch(?:es|craft)?", "witches", r"witch(?:es|craft)?|coven"),
    "dragons": (r"dragons?", "dragons", r"dragons?"),
    "disasters": (r"disasters?|disaster\s+movies?", "disasters",
                  r"earthquakes?|tsunamis?|volcan(?:o|oes|ic)|tornado(?:es)?|asteroids?|meteors?|hurricanes?|natural\s+disasters?"),
    "mafia": (r"mafia|mobsters?|gangsters?|mob\s+(?:movies?|films?)", "the mafia",
              r"mafia|mob\s+boss|gangsters?|mobsters?|crime\s+(?:famil(?:y|ies)|dynast(?:y|ies)|bosse?s?|lords?)|organi[sz]ed\s+crime|cosa\s+nostra"),
    "space": (r"outer\s+space|(?:set\s+)?in\s+space|space\s+(?:movies?|films?|travel|exploration|adventures?|stations?|stuff|ones?|operas?|battles?)|"
              r"astronauts?|spaceships?",
              "space", r"outer\s+space|space\s+(?:station|shuttle|travel|mission)|spaceships?|spacecraft|astronauts?|starships?"),
    "animals": (r"(?<!party\s)animals?|wildlife|nature(?=\s+(?:documentar(?:y|ies)|films?|movies?|shows?))", "animals",
                r"(?<!party\s)animals?(?!\s+(?:house|kingdom))|wildlife|safari|penguins?|elephants?|gorillas?|chimpanzees?|whales?|dolphins?|horses?|wolves|"
                r"polar\s+bears?|grizzl(?:y|ies)|cheetahs?|orangutans?"),
}
# Places a movie is set in: key → (what a request names after "set in", "takes place in", "a movie
# in/about"; the name shown; what a plot says). A title or plot naming the place stands for the
# setting (Movie.plot_themes holds these keys too, crs.rec.hidden_genres.stated_themes); a request
# reads them only after such a cue (crs.rec.request), never from the bare name ("I went to Paris").
SETTINGS: dict[str, tuple[str, str, str]] = {
    "paris": (r"paris", "Paris", r"paris(?!\s+hilton)"),
    "london": (r"london", "London", r"(?<!jack\s)london"),
    "new york": (r"new\s+york(?:\s+city)?|nyc|manhattan|brooklyn", "New York",
                 r"new\s+york|manhattan|brooklyn|the\s+bronx|harlem|nyc"),
    "los angeles": (r"los\s+angeles|l\.a\.|hollywood", "Los Angeles", r"los\s+angeles|beverly\s+hills|malibu|santa\s+monica|l\.a\.|hollywood"),
    "las vegas": (r"(?:las\s+)?vegas", "Las Vegas", r"vegas"),
    "chicago": (r"chicago", "Chicago", r"chicago"),
    "boston": (r"boston", "Boston", r"boston"),
    "san francisco": (r"san\s+francisco|the\s+bay\s+area", "San Francisco", r"san\s+francisco"),
    "new orleans": (r"new\s+orleans", "New Orleans", r"new\s+orleans"),
    "miami": (r"miami", "Miami", r"miami"),
    "washington": (r"washington(?:\s+d\.?\s?c\.?)?|d\.c\.|the\s+white\s+house", "Washington, D.C.",
                   r"washington,?\s+d\.?\s?c|white\s+house|the\s+pentagon"),
    "texas": (r"texas", "Texas", r"texas|dallas|houston|el\s+paso|san\s+antonio"),
    "alaska": (r"alaska", "Alaska", r"alaska"),
    "hawaii": (r"hawaii", "Hawaii", r"hawaii|honolulu"),
    "england": (r"england|britain|the\s+uk|the\s+u\.k\.", "England", r"england|(?<!jack\s)london|britain"),
    "scotland": (r"scotland", "Scotland", r"scotland|scottish\s+highlands|edinburgh|glasgow"),
    "ireland": (r"ireland", "Ireland", r"ireland|dublin"),
    "france": (r"france", "France", r"france|paris(?!\s+hilton)|french\s+riviera"),
    "rome": (r"rome", "Rome", r"rome"),
    "italy": (r"italy", "Italy", r"italy|rome|venice|florence|sicily|tuscany|naples|milan"),
    "germany": (r"germany", "Germany", r"germany|berlin|munich"),
    "spain": (r"spain", "Spain", r"spain|madrid|barcelona"),
    "russia": (r"russia|the\s+soviet\s+union|the\s+ussr", "Russia", r"russia|moscow|soviet\s+union|ussr"),
    "tokyo": (r"tokyo", "Tokyo", r"tokyo"),
    "japan": (r"japan|tokyo", "Japan", r"japan|tokyo|kyoto|osaka"),
    "china": (r"china", "China", r"china|beijing|shanghai"),
    "hong kong": (r"hong\s+kong", "Hong Kong", r"hong\s+kong"),
    "korea": (r"(?:south\s+)?korea|seoul", "Korea", r"korea|seoul"),
    "india": (r"india|mumbai", "India", r"india|mumbai|bombay|delhi"),
    "mexico": (r"mexico", "Mexico", r"(?<!new\s)mexico"),
    "canada": (r"canada", "Canada", r"canada|toronto|vancouver|montreal"),
    "australia": (r"australia", "Australia", r"australia|sydney|melbourne|outback"),
    "africa": (r"africa", "Africa", r"africa|kenya|congo|rwanda|sahara|somalia|nigeria"),
    "egypt": (r"egypt", "Egypt", r"egypt|cairo"),
    "small towns": (r"(?:a\s+)?small\s+towns?", "a small town", r"small\s+town"),
    "jungles": (r"(?:the\s+)?jungles?|(?:the\s+)?rain\s*forests?", "the jungle", r"jungles?|rain\s*forests?"),
}
# Display names of STUDIO_WORDS' keys.
STUDIO_NAMES = {"pixar": "Pixar", "disney": "Disney", "marvel": "Marvel", "dreamworks": "DreamWorks", "ghibli": "Studio Ghibli",
                "lucasfilm": "Lucasfilm", "blumhouse": "Blumhouse", "a24": "A24", "illumination": "Illumination",
                "laika": "Laika", "aardman": "Aardman", "amblin": "Amblin",
                "lionsgate": "Lionsgate", "miramax": "Miramax", "dc": "DC"}

# Feature films of animation studios whose catalogue DBpedia holds only in part (The Incredibles is
# linked to its score, Ratatouille and WALL-E to Disney alone, most Ghibli films to no company): the
# STUDIO_WORDS key → (the studios that release its films too, its features as (title, year)).
# crs.rec.request.MovieFacts credits a catalogue movie whose folded title is one of these and whose
# year is the same (or, undated, that is listed as animation or has no metadata at all).
STUDIO_FILMS: dict[str, tuple[tuple[str, ...], tuple[tuple[str, int], ...]]] = {
    "pixar": (("disney",), (
        ("Toy Story", 1995), ("A Bug's Life", 1998), ("Toy Story 2", 1999), ("Monsters, Inc.", 2001),
        ("Finding Nemo", 2003), ("The Incredibles", 2004), ("Cars", 2006), ("Ratatouille", 2007), ("WALL-E", 2008),
        ("Up", 2009), ("Toy Story 3", 2010), ("Cars 2", 2011), ("Brave", 2012), ("Monsters University", 2013),
        ("Inside Out", 2015), ("The Good Dinosaur", 2015), ("Finding Dory", 2016), ("Cars 3", 2017), ("Coco", 2017),
        ("Incredibles 2", 2018), ("Toy Story 4", 2019), ("Onward", 2020), ("Soul", 2020), ("Luca", 2021),
        ("Turning Red", 2022), ("Lightyear", 2022), ("Elemental", 2023), ("Inside Out 2", 2024))),
    "ghibli": ((), (
        ("Nausicaä of the Valley of the Wind", 1984), ("Castle in the Sky", 1986), ("My Neighbor Totoro", 1988),
        ("Grave of the Fireflies", 1988), ("Kiki's Delivery Service", 1989), ("Only Yesterday", 1991),
        ("Porco Rosso", 1992), ("Ocean Waves", 1993), ("Pom Poko", 1994), ("Whisper of the Heart", 1995),
        ("Princess Mononoke", 1997), ("My Neighbors the Yamadas", 1999), ("Spirited Away", 2001),
        ("The Cat Returns", 2002), ("Howl's Moving Castle", 2004), ("Tales from Earthsea", 2006), ("Ponyo", 2008),
        ("Arrietty", 2010), ("The Secret World of Arrietty", 2010), ("From Up on Poppy Hill", 2011),
        ("The Wind Rises", 2013), ("The Tale of the Princess Kaguya", 2013), ("When Marnie Was There", 2014),
        ("The Red Turtle", 2016), ("Earwig and the Witch", 2020), ("The Boy and the Heron", 2023))),
}

# Studios all of whose films come from one country: the STUDIO_WORDS key → the COUNTRY_WORDS key.
STUDIO_COUNTRIES = {"ghibli": "japanese"}

# Comic publishers' film series, which DBpedia credits to a film studio, if to anyone (Black Panther,
# Thor: Ragnarok, Logan and The Dark Knight carry no Marvel or DC edge): the STUDIO_WORDS key → (the
# title stems of its characters' series, as crs.rec.hidden_genres.franchise_key folds them, and the
# characters' creators, whom the films credit as writers). crs.rec.request.MovieFacts counts a movie
# as the publisher's when its stem is one of these, or a creator is among its writers, and it is
# listed as action, adventure, science fiction, fantasy or animation (so "The Black Panther" of 1977,
# a crime film, stays no one's).
COMIC_SERIES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "marvel": (("avengers", "iron man", "thor", "captain america", "captain marvel", "hulk", "incredible hulk",
                "spider-man", "amazing spider-man", "x-men", "x-men origins", "wolverine", "logan", "deadpool",
                "black panther", "black widow", "guardians of the galaxy", "ant-man", "ant-man and the wasp",
                "doctor strange", "fantastic four", "fantastic 4", "blade", "daredevil", "elektra", "ghost rider",
                "punisher", "venom", "new mutants", "inhumans", "howard the duck", "big hero 6"),
               ("stan lee", "jack kirby", "steve ditko", "joe simon", "don heck", "larry lieber")),
    "dc": (("batman", "batman begins", "batman returns", "batman forever", "batman and robin", "batman v superman",
            "dark knight", "dark knight rises", "superman", "superman returns", "man of steel", "wonder woman",
            "justice league", "suicide squad", "aquaman", "green lantern", "shazam", "catwoman", "constantine",
            "watchmen", "supergirl", "steel", "jonah hex", "lego batman movie", "joker", "birds of prey"),
           ("bob kane", "bill finger", "jerry siegel", "joe shuster", "william moulton marston")),
}
COMIC_GENRES = frozenset({"action", "adventure", "sci-fi", "fantasy", "animation"})

# Where a movie comes from, asked for by adjective ("a French movie", "Korean films", "Bollywood"):
# the word → (the KG country names, the KG language names) a movie's country or language edge may hold.
COUNTRY_WORDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "french": (("france", "cinema of france"), ("french language",)),
    "bollywood": (("india", "indian cinema"), ("hindi", "hindi language")),
    "indian": (("india", "indian cinema"), ("hindi", "hindi language", "malayalam", "tamil language", "telugu language")),
    "hindi": (("india",), ("hindi", "hindi language")),
    "japanese": (("japan",), ("japanese language",)),
    "korean": (("south korea",), ("korean language", "korean cinema")),
    "british": (("united kingdom", "cinema of the united kingdom"), ()),
    "italian": (("italy", "cinema of italy", "italian cinema"), ("italian language", "cinema of italy")),
    "german": (("germany", "cinema of germany", "west germany", "east germany"), ("german language",)),
    "spanish": (("spain", "cinema of spain"), ("spanish language",)),
    "mexican": (("mexico",), ()),
    "chinese": (("china", "cinema of china", "hong kong"), ("standard chinese", "mandarin chinese", "cantonese", "chinese language")),
    "australian": (("australia",), ()),
    "canadian": (("canada",), ()),
    "swedish": (("sweden",), ("swedish language",)),
    "danish": (("denmark",), ("danish language",)),
    "russian": (("russia", "soviet union"), ("russian language",)),
    "irish": (("ireland", "republic of ireland"), ()),
    # "a foreign film": the movies crs.rec.request.MovieFacts finds made outside ENGLISH_SPEAKING (no tags here)
    "foreign": ((), ()),
}
# What "foreign" is not: a movie with a country or language edge to one of these is no foreign film.
ENGLISH_SPEAKING: tuple[tuple[str, ...], tuple[str, ...]] = (
    ("united states", "united kingdom", "cinema of the united kingdom", "england", "scotland", "wales", "canada", "australia",
     "ireland", "republic of ireland", "new zealand", "cinema of the united states", "american cinema"),
    ("english", "english language", "american english", "british english"),
)
# Display names of COUNTRY_WORDS' keys (what the reasoning panel and the relaxation sentence say).
COUNTRY_NAMES = {"french": "France", "bollywood": "India (Bollywood)", "indian": "India", "hindi": "India (Hindi)", "japanese": "Japan",
                 "korean": "South Korea", "british": "the United Kingdom", "italian": "Italy",
                 "german": "Germany", "spanish": "Spain", "mexican": "Mexico", "chinese": "China", "australian": "Australia",
                 "canadian": "Canada", "swedish": "Sweden", "danish": "Denmark", "russian": "Russia", "irish": "Ireland",
                 "foreign": "a non-English-speaking country"}

# Words that make a capitalised name in a plot a place, not a character ("New Zealand", "Southern
# California", "Paris Opera House"): two plots naming the same place do not make a series
# (crs.rec.hidden_genres.character_series).
PLACE_WORDS = frozenset(
    """
    north south east west northern southern eastern western central upper lower new old
    street avenue road station house hall castle palace temple church tower bridge harbor harbour port bay beach
    island islands lake river valley mountain mountains park city town village county state states kingdom republic
    school academy college university high hospital prison airport hotel club bar restaurant
    america american africa african asia europe european pacific atlantic arctic antarctica ocean sea desert
    alabama alaska arizona arkansas california colorado connecticut delaware florida hawaii idaho illinois
    iowa kansas kentucky louisiana maine maryland massachusetts michigan minnesota mississippi missouri
    montana nebraska nevada hampshire jersey mexico york ohio oklahoma oregon pennsylvania rhode
    tennessee texas utah vermont washington wisconsin wyoming
    england scotland wales ireland britain france germany italy spain russia china japan korea india australia
    zealand canada brazil vietnam egypt israel paris london berlin rome tokyo moscow vegas angeles chicago boston
    """.split()
)
