//! Person names, in context.
//!
//! A name is one to four capitalised words (`Dupont`, `DUPONT`, `Jean-Pierre`, `O'Brien`), with
//! family-name particles inside (`de`, `van`, `Le`, …), none of them a common capitalised word
//! (see [`STOP`]). It is a person when:
//!
//! 1. it follows a title: `M.`, `Mme`, `Mlle`, `Mr`, `Mrs`, `Ms`, `Dr`, `Monsieur`, `Madame`, …
//!    (the title stays out of the span);
//! 2. it follows "my name is", "name's", "je m'appelle", "il s'appelait", "je me nomme", "mon nom
//!    est", "moi c'est";
//! 3. it starts with a known first name and follows "I'm", "I am", "this is", "je suis",
//!    "c'est", "named", "called", "prénommé";
//! 4. it follows a greeting (Hi, Hello, Dear, Bonjour, Cher, Chère, …) and starts with a known
//!    first name or ends at a `,` `!` `:` or the end of the line ("Hello Support" is not a name);
//! 5. it follows a sign-off (Thanks, Regards, Cordialement, Merci, …) and ends its line;
//! 6. it starts with a known first name (`data/first_names.txt`), unless that name is also a
//!    common word (Will, May, Mark, Rose, …), which then needs a known family name after it.
//!
//! A name takes the initials and the surname written after it ("Mary D. Corpus", "Kim Y").
//!
//! What customer feedback calls by a person's name is more often a brand, a shop, a place or a
//! pet than a person (issue 12: on Amazon reviews most first-name hits were brands), so a
//! candidate is dropped when it is:
//!
//! * a lone first name (or a title and one name) with a possessive: a shop or a brand ("Annie's
//!   ingredients", "Go Bob's!!", "Dr. Flynn's granola"), unless a relation word comes before it
//!   ("my Grandma Ella's 80th") or what follows belongs to a person ("Sarah's help");
//! * followed by (or holding) a noun of a thing or a place ([`THING`]: "Jack Russell Terrier",
//!   "George Foreman grill", "John Wayne airport"), or ", XX" with a US state ("Jackson, MS");
//! * a lone first name before a number ("Craig 18") or at an end of a route ("SAP->Mia", "from
//!   Bradley to BWI"), or a hashtag / handle ("#Mia", "@ Logan");
//! * a pet: in apposition to an animal word ("our pup, Mr. Shimmy") or after "cat's name is";
//! * after a sign-off that ends a sentence on the same line ("the best. Exceptional!") unless it
//!   is a known first name, or after an inline sign-off without a comma ("Thanks Teisseire.")
//!   unless it is a first name; "Me" is a title (Maître) only before a known name, and "Miss"
//!   after a capitalised word is a brand ("Swiss Miss");
//! * wholly inside a brand or place of the allow-list (`detect/allow.rs`), applied by the caller.
//!
//! Overlapping readings are resolved by the caller (the longest wins).

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;

use super::text::{Case, Lowered, Word};
use crate::pii::{PiiKind, Span};

/// First names that are also common words, places or brands: names only in context.
const AMBIGUOUS: &[&str] = &[
    "will",
    "may",
    "june",
    "april",
    "grace",
    "mark",
    "bill",
    "frank",
    "jack",
    "guy",
    "sue",
    "pat",
    "rob",
    "rose",
    "lily",
    "amber",
    "crystal",
    "dawn",
    "faith",
    "holly",
    "robin",
    "jan",
    "line",
    "li",
    "hope",
    "joy",
    "ruby",
    "summer",
    "christian",
    "ange",
    "mercedes",
    "nancy",
    "florence",
    "victoria",
    "charlotte",
    "virginia",
    "georgia",
    "austin",
    "jordan",
    "dakota",
    "chelsea",
    "zoe",
    "zoé",
    "zoey",
    "hunter",
    "mason",
    "carter",
    "taylor",
    "madison",
    "oscar",
    "angel",
    "harley",
    "chance",
    "prince",
    "major",
    "sky",
    "storm",
    "art",
    "gene",
    "miles",
    "lane",
    "chase",
    "jasmine",
    "valentine",
    "carol",
    "timothy",
    "marine",
    "noël",
    "pearl",
    "olive",
    // ordinary words and foods, in product reviews far more often than given names (issue 12)
    "poppy",
    "violette",
];

/// Capitalised words that are not names (sentence starters, recipients, months, brands, …).
const STOP: &[&str] = &[
    // articles, pronouns, conjunctions, sentence starters (EN)
    "the",
    "a",
    "an",
    "i",
    "we",
    "you",
    "they",
    "he",
    "she",
    "it",
    "my",
    "our",
    "your",
    "their",
    "his",
    "her",
    "this",
    "that",
    "these",
    "those",
    "and",
    "but",
    "or",
    "so",
    "if",
    "when",
    "what",
    "why",
    "how",
    "where",
    "who",
    "which",
    "is",
    "are",
    "was",
    "were",
    "be",
    "been",
    "can",
    "could",
    "would",
    "should",
    "shall",
    "must",
    "do",
    "does",
    "did",
    "not",
    "no",
    "yes",
    "ok",
    "okay",
    "please",
    "sorry",
    "thanks",
    "thank",
    "hello",
    "hi",
    "hey",
    "dear",
    "very",
    "just",
    "also",
    "still",
    "again",
    "today",
    "yesterday",
    "tomorrow",
    "great",
    "good",
    "bad",
    "best",
    "love",
    "nice",
    "well",
    "all",
    "any",
    "some",
    "every",
    "each",
    "other",
    "another",
    "first",
    "last",
    "next",
    "then",
    "there",
    "here",
    "now",
    "after",
    "before",
    "since",
    "for",
    "from",
    "with",
    "without",
    "to",
    "at",
    "in",
    "on",
    "of",
    "by",
    "about",
    "as",
    "like",
    "regards",
    "cheers",
    "sincerely",
    "kind",
    "warm",
    "update",
    "note",
    "ps",
    "re",
    "fw",
    "fwd",
    "subject",
    "objet",
    "order",
    "delivery",
    "customer",
    "customers",
    "service",
    "services",
    "support",
    "team",
    "client",
    "clients",
    "sir",
    "sirs",
    "madam",
    "ladies",
    "gentlemen",
    "everyone",
    "everybody",
    "folks",
    "guys",
    "world",
    "friends",
    "staff",
    "manager",
    "management",
    "admin",
    "administrator",
    "sales",
    "billing",
    "help",
    "helpdesk",
    "desk",
    "department",
    "store",
    "shop",
    "company",
    "valued",
    "member",
    "members",
    "user",
    "users",
    "agent",
    "agents",
    "colleague",
    "colleagues",
    "hr",
    "it",
    "ceo",
    "care",
    "center",
    "centre",
    "account",
    // French
    "le",
    "la",
    "les",
    "un",
    "une",
    "des",
    "du",
    "de",
    "je",
    "tu",
    "il",
    "elle",
    "on",
    "nous",
    "vous",
    "ils",
    "elles",
    "mon",
    "ma",
    "mes",
    "ton",
    "ta",
    "tes",
    "son",
    "sa",
    "ses",
    "notre",
    "nos",
    "votre",
    "vos",
    "leur",
    "leurs",
    "ce",
    "cet",
    "cette",
    "ces",
    "et",
    "mais",
    "ou",
    "donc",
    "car",
    "si",
    "quand",
    "pourquoi",
    "comment",
    "où",
    "qui",
    "que",
    "quoi",
    "est",
    "sont",
    "pas",
    "bien",
    "bonne",
    "bon",
    "très",
    "merci",
    "encore",
    "toujours",
    "depuis",
    "après",
    "avant",
    "aujourd'hui",
    "hier",
    "demain",
    "bonjour",
    "bonsoir",
    "salut",
    "cher",
    "chère",
    "chers",
    "chères",
    "cordialement",
    "salutations",
    "oui",
    "non",
    "svp",
    "stp",
    "madame",
    "monsieur",
    "mademoiselle",
    "mesdames",
    "messieurs",
    "équipe",
    "equipe",
    "sav",
    "service",
    "magasin",
    "boutique",
    "livraison",
    "commande",
    "colis",
    "facture",
    "direction",
    "responsable",
    "directeur",
    "directrice",
    "maire",
    "président",
    "présidente",
    "gérant",
    "gérante",
    "conseiller",
    "conseillère",
    "docteur",
    "maître",
    "tous",
    "toutes",
    "à",
    "au",
    "aux",
    "en",
    "pour",
    "par",
    "avec",
    "sans",
    "sur",
    "dans",
    "chez",
    "voici",
    "voilà",
    "ps",
    // calendar
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "lundi",
    "mardi",
    "mercredi",
    "jeudi",
    "vendredi",
    "samedi",
    "dimanche",
    "january",
    "february",
    "march",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
    "christmas",
    "noël",
    "easter",
    "pâques",
    // places, brands and products often capitalised in feedback
    "france",
    "paris",
    "lyon",
    "marseille",
    "london",
    "england",
    "uk",
    "usa",
    "us",
    "europe",
    "amazon",
    "apple",
    "google",
    "samsung",
    "microsoft",
    "facebook",
    "instagram",
    "whatsapp",
    "netflix",
    "uber",
    "paypal",
    "visa",
    "mastercard",
    "iphone",
    "ipad",
    "android",
    "windows",
    "galaxy",
    "pro",
    "max",
    "plus",
    "mini",
    "ultra",
    "prime",
    "app",
    "web",
    "internet",
    "wifi",
    "bluetooth",
    "vuitton",
    "boss",
    "pepper",
    "martens",
    "oetker",
    "kart",
    "store",
    "express",
    "street",
    "road",
    "avenue",
    "rue",
    "boulevard",
    "place",
    "bank",
    "banque",
    "airlines",
    "airport",
    "hotel",
    "hôtel",
    "restaurant",
    "café",
    "bar",
    "saint",
    "sainte",
    "st",
    "ste",
    "review",
    "reviews",
    "edit",
    "edited",
    "tea",
    "coffee",
];

/// Nouns that make the name before them (or inside them) a thing or a place: "Jack Russell
/// Terrier", "Graham Crackers", "George Foreman grill", "John Wayne airport", "Clara City".
const THING: &[&str] = &[
    "tea",
    "teas",
    "coffee",
    "coffees",
    "sauce",
    "sauces",
    "cracker",
    "crackers",
    "cookie",
    "cookies",
    "chocolate",
    "chocolates",
    "seed",
    "seeds",
    "filling",
    "glaze",
    "glazes",
    "wash",
    "soap",
    "shampoo",
    "lotion",
    "terrier",
    "terriers",
    "retriever",
    "spaniel",
    "poodle",
    "grill",
    "flour",
    "mix",
    "mixes",
    "bar",
    "bars",
    "chips",
    "candy",
    "candies",
    "cereal",
    "soup",
    "soups",
    "syrup",
    "liqueur",
    "chutney",
    "mustard",
    "salsa",
    "jerky",
    "cheese",
    "bread",
    "pasta",
    "juice",
    "soda",
    "beer",
    "wine",
    "vodka",
    "whiskey",
    "whisky",
    "bourbon",
    "rum",
    "butter",
    "jam",
    "jelly",
    "salt",
    "spice",
    "spices",
    "seasoning",
    "seasonings",
    "rub",
    "dressing",
    "kitchen",
    "foods",
    "farms",
    "bakery",
    "brand",
    "brands",
    "co",
    "inc",
    "llc",
    "ltd",
    "airport",
    "airlines",
    "intl",
    "international",
    "city",
    "county",
    "beach",
    "bay",
    "island",
    "lake",
    "river",
    "valley",
    "springs",
    "falls",
    "hotel",
    "resort",
    "mall",
    "market",
    "restaurant",
    "cafe",
    "café",
    "int",
    "bros",
    "brothers",
    "blend",
    "roast",
    "k-cups",
    "kcups",
    "pods",
    "capsules",
];

/// Words after a lone first name's "'s" that keep it a person ("Sarah's help", "Paul's
/// explanation", "Kevin's attitude"): what belongs to a human being. Any other word, or none,
/// reads as a brand or a shop ("Annie's ingredients", "Amy's is working on it", "back to
/// Mary's."): in the hand-judged reviews and tweets, lone first-name possessives were brands
/// 38 times out of 42, the four people all after a relation word ("Grandma", [`RELATION`]).
const PERSON_AFTER: &[&str] = &[
    "help",
    "helpfulness",
    "explanation",
    "explanations",
    "advice",
    "answer",
    "answers",
    "reply",
    "replies",
    "response",
    "responses",
    "email",
    "emails",
    "e-mail",
    "message",
    "messages",
    "call",
    "calls",
    "phone",
    "number",
    "name",
    "attitude",
    "manner",
    "manners",
    "tone",
    "behaviour",
    "behavior",
    "service",
    "patience",
    "kindness",
    "professionalism",
    "support",
    "assistance",
    "effort",
    "efforts",
    "work",
    "job",
    "fault",
    "mistake",
    "error",
    "idea",
    "suggestion",
    "recommendation",
    "opinion",
    "review",
    "comment",
    "comments",
    "team",
    "manager",
    "supervisor",
    "boss",
    "colleague",
    "colleagues",
    "husband",
    "wife",
    "partner",
    "son",
    "daughter",
    "mother",
    "father",
    "mom",
    "mum",
    "dad",
    "kid",
    "kids",
    "child",
    "children",
    "family",
    "friend",
    "friends",
    "sister",
    "brother",
    "birthday",
    "bday",
    "wedding",
    "funeral",
    "party",
    "house",
    "home",
    "car",
    "account",
    "order",
    "parcel",
    "package",
    "case",
    "ticket",
    "flight",
    "seat",
    "bag",
    "bags",
    "luggage",
    "suitcase",
    "voice",
    "face",
    "smile",
    "care",
    "office",
    "desk",
    "address",
    "card",
    "life",
    "health",
    "death",
    "own",
];

/// Animals: a name in apposition to one is a pet ("our pup, Mr. Shimmy", "my chinchillas, Tank
/// and Tony", "our cat's name is Grandma").
const ANIMALS: &[&str] = &[
    "dog",
    "dogs",
    "pup",
    "pups",
    "puppy",
    "puppies",
    "pooch",
    "cat",
    "cats",
    "kitty",
    "kitties",
    "kitten",
    "kittens",
    "chinchilla",
    "chinchillas",
    "hamster",
    "hamsters",
    "rabbit",
    "rabbits",
    "bunny",
    "parrot",
    "bird",
    "birds",
    "horse",
    "horses",
    "pet",
    "pets",
    "chien",
    "chiens",
    "chat",
    "chats",
    "chiot",
    "chaton",
];

/// Words before a lone first name's "'s" that make it a person ("my Grandma Ella's 80th").
/// Not "uncle" or "aunt": "Uncle Ben's", "Aunt Jemima", "Uncle Dan's dressing" are brands.
const RELATION: &[&str] = &[
    "my",
    "your",
    "his",
    "her",
    "our",
    "their",
    "grandma",
    "grandpa",
    "granny",
    "nana",
    "mom",
    "mum",
    "mother",
    "dad",
    "father",
    "sister",
    "brother",
    "wife",
    "husband",
    "son",
    "daughter",
    "friend",
    "cousin",
    "niece",
    "nephew",
    "boss",
    "agent",
    "colleague",
    "neighbor",
    "neighbour",
    "ma",
    "mon",
    "mes",
    "sa",
    "tante",
    "oncle",
    "mamie",
    "papi",
];

/// US state codes: "Jackson, MS" is a city.
const US_STATES: &[&str] = &[
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS",
    "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY",
    "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV",
    "WI", "WY", "DC",
];

/// US state names (one word): "Jackson, Wyoming" is a city.
const US_STATE_NAMES: &[&str] = &[
    "alabama",
    "alaska",
    "arizona",
    "arkansas",
    "california",
    "colorado",
    "connecticut",
    "delaware",
    "florida",
    "georgia",
    "hawaii",
    "idaho",
    "illinois",
    "indiana",
    "iowa",
    "kansas",
    "kentucky",
    "louisiana",
    "maine",
    "maryland",
    "massachusetts",
    "michigan",
    "minnesota",
    "mississippi",
    "missouri",
    "montana",
    "nebraska",
    "nevada",
    "ohio",
    "oklahoma",
    "oregon",
    "pennsylvania",
    "tennessee",
    "texas",
    "utah",
    "vermont",
    "virginia",
    "washington",
    "wisconsin",
    "wyoming",
];

/// Titles written in full, in any case.
const TITLES_FULL: &[&str] = &[
    "monsieur",
    "madame",
    "mademoiselle",
    "docteur",
    "doctor",
    "professeur",
    "professor",
    "maître",
    "miss",
    "mister",
];

/// Abbreviated titles: capitalised, optional dot (`M` needs its dot).
const TITLES_SHORT: &[&str] = &[
    "m", "mr", "mrs", "ms", "mme", "mmes", "mlle", "mlles", "dr", "pr", "prof", "me", "mx",
];

/// Lower-case family-name particles inside a name (`Charles de Gaulle`, `van Dijk`).
const PARTICLES: &[&str] = &[
    "de", "du", "des", "d'", "van", "von", "der", "den", "da", "di", "del", "della", "dos", "das",
    "le", "la", "ten", "ter", "bin", "ben", "al", "el", "y",
];

const GREETINGS: &[&str] = &[
    "hi",
    "hello",
    "hey",
    "dear",
    "bonjour",
    "bonsoir",
    "salut",
    "cher",
    "chère",
    "coucou",
    "hola",
    "allo",
    "allô",
    "greetings",
];

/// Words before which a known first name is part of a place or a thing ("rue Victor Hugo",
/// "Saint-Louis", "Aston Martin").
const NOT_AFTER: &[&str] = &[
    "rue",
    "avenue",
    "boulevard",
    "bd",
    "place",
    "quai",
    "allée",
    "impasse",
    "chemin",
    "route",
    "square",
    "lycée",
    "collège",
    "école",
    "hôpital",
    "clinique",
    "gare",
    "station",
    "saint",
    "sainte",
    "st",
    "ste",
    "san",
    "santa",
    "notre",
    "aston",
    "street",
    "bloody",
];

/// Lower-case words that start a context rule (titles, greetings, introductions, sign-offs):
/// a lower-case word outside this list (and without "appel") cannot trigger anything, so the
/// rules skip it. Must hold every lower-case keyword the rules below match on.
const KEYWORDS: &[&str] = &[
    // introductions
    "is",
    "was",
    "s",
    "est",
    "nomme",
    "c'est",
    "i'm",
    "im",
    "am",
    "suis",
    "named",
    "called",
    "prénommé",
    "prénommée",
    "nommé",
    "nommée",
    // sign-offs
    "thanks",
    "thx",
    "merci",
    "cordialement",
    "regards",
    "cheers",
    "best",
    "sincerely",
    "salutations",
    "amicalement",
    "respectueusement",
    "bisous",
    "bises",
    "cdlt",
    "ciao",
    "you",
    "advance",
    "again",
    "d'avance",
    "beaucoup",
    "vous",
    "journée",
    "soirée",
    "care",
    "wishes",
];

/// FNV-1a: the word sets hash short keys, where SipHash's set-up dominates.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

type Set<T> = HashSet<T, BuildHasherDefault<Fnv>>;

struct Lists {
    first: Set<String>,
    family: Set<String>,
    ambiguous: Set<&'static str>,
    stop: Set<&'static str>,
    keywords: Set<&'static str>,
}

fn lists() -> &'static Lists {
    static LISTS: OnceLock<Lists> = OnceLock::new();
    LISTS.get_or_init(|| {
        let load = |src: &str| -> Set<String> {
            src.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_lowercase)
                .collect()
        };
        Lists {
            first: load(include_str!("../data/first_names.txt")),
            family: load(include_str!("../data/surnames.txt")),
            ambiguous: AMBIGUOUS.iter().copied().collect(),
            stop: STOP.iter().copied().collect(),
            keywords: KEYWORDS
                .iter()
                .chain(TITLES_FULL)
                .chain(TITLES_SHORT)
                .chain(GREETINGS)
                .copied()
                .collect(),
        }
    })
}

/// How a word relates to the first-name list.
#[derive(Clone, Copy, PartialEq, Eq)]
enum First {
    No,
    Ambiguous,
    Yes,
}

fn first_name(lower: &str) -> First {
    let l = lists();
    let known = |p: &str| l.first.contains(p);
    let is = if known(lower) {
        true
    } else if lower.contains('-') {
        // Compound first names: every part a first name (Jean-Pierre, Marie-Claire).
        lower.split('-').all(known)
    } else {
        false
    };
    if !is {
        First::No
    } else if l.ambiguous.contains(lower) {
        First::Ambiguous
    } else {
        First::Yes
    }
}

struct Ctx<'a> {
    text: &'a str,
    words: &'a [Word],
    low: &'a Lowered,
}

impl Ctx<'_> {
    fn lw(&self, k: usize) -> &str {
        self.low.get(k)
    }

    /// The text between words `k` and `k + 1` (empty past the end).
    fn gap(&self, k: usize) -> &str {
        match (self.words.get(k), self.words.get(k + 1)) {
            (Some(a), Some(b)) => &self.text[a.end..b.start],
            _ => "",
        }
    }

    /// One space (or no-break space) between words `k` and `k + 1`.
    fn single_space(&self, k: usize) -> bool {
        k + 1 < self.words.len() && matches!(self.gap(k), " " | "\u{a0}")
    }

    /// Word `k` can be part of a name: capitalised, not a placeholder, not a common word.
    fn name_word(&self, k: usize) -> bool {
        let Some(w) = self.words.get(k) else {
            return false;
        };
        let lw = self.lw(k);
        matches!(w.case, Case::Title | Case::Upper)
            && !w.inert
            // A hashtag or a handle ("#Mia", "@Logan") names a tag or an account, not a person.
            && !self.text[..w.start].ends_with(['#', '@'])
            && !self.text[..w.start].ends_with("@ ")
            && !lists().stop.contains(lw)
            && !TITLES_FULL.contains(&lw)
            && !TITLES_SHORT.contains(&lw)
            && !GREETINGS.contains(&lw)
    }

    /// A particle at `k` followed by a name word (`de Gaulle`, `Le Gall`, `van Dijk`).
    fn particle(&self, k: usize) -> bool {
        let Some(w) = self.words.get(k) else {
            return false;
        };
        let lw = self.lw(k);
        let is_particle = PARTICLES.contains(&lw)
            || ((lw.starts_with("d'") || lw.starts_with("l'")) && w.case == Case::Title);
        is_particle
            && !w.inert
            && matches!(w.case, Case::Lower | Case::Title)
            && self.single_space(k)
            && self.name_word(k + 1)
    }

    /// The last word of the name that starts at word `k` (at most four words), if one does.
    fn name_from(&self, k: usize) -> Option<usize> {
        if !self.name_word(k) {
            return None;
        }
        let mut last = k;
        while last - k < 3 && self.single_space(last) {
            let j = last + 1;
            if self.name_word(j) {
                last = j;
            } else if last - k < 2 && self.particle(j) {
                last = j + 1;
            } else {
                break;
            }
        }
        Some(last)
    }

    /// The span of the name `from..=to`, with the initials and surname that follow it.
    fn span(&self, from: usize, to: usize) -> Span {
        let to = self.with_initials(to);
        Span {
            start: self.words[from].start,
            end: self.words[to].end,
            kind: PiiKind::Person,
        }
    }

    /// Word `k` is a title, and the index where the name after it may start.
    fn title(&self, k: usize) -> Option<usize> {
        let w = self.words[k];
        let lw = self.lw(k);
        let gap = self.gap(k);
        // "Swiss Miss Cocoa", "Little Miss Sunshine": "miss" after a capitalised word that is not
        // a greeting or a sign-off is part of a name, not a title.
        let brand_miss = matches!(lw, "miss" | "mister")
            && k > 0
            && self.words[k - 1].case == Case::Title
            && self.single_space(k - 1)
            && !lists().keywords.contains(self.low.back(k, 1));
        // "Me" is a French title (Maître) but an English pronoun ("Try Me Tiger Sauce", "Me
        // HONEY and me"): only before a known first or family name.
        let pronoun_me = lw == "me"
            && !(self.words.get(k + 1).is_some_and(|n| n.case == Case::Title)
                && (first_name(self.lw(k + 1)) != First::No
                    || lists().family.contains(self.lw(k + 1))));
        let ok = if brand_miss || pronoun_me {
            false
        } else if TITLES_FULL.contains(&lw) {
            matches!(gap, " " | "\u{a0}")
        } else if TITLES_SHORT.contains(&lw) && matches!(w.case, Case::Title | Case::Initial) {
            if lw == "m" {
                matches!(gap, ". " | ".\u{a0}")
            } else {
                matches!(gap, " " | "\u{a0}" | ". " | ".\u{a0}")
            }
        } else {
            false
        };
        (ok && k + 1 < self.words.len()).then_some(k + 1)
    }

    /// The name after a title, starting at word `k`, possibly with a particle (`M. de Villepin`,
    /// `Mme Le Gall`): its first and last word.
    fn name_after_title(&self, k: usize) -> Option<(usize, usize)> {
        if self.particle(k) {
            return self.name_from(k + 1).map(|last| (k, last));
        }
        self.name_from(k).map(|last| (k, last))
    }

    /// Where the line ends after byte `i`, allowing trailing `.` / `!` and spaces.
    fn ends_line(&self, i: usize) -> bool {
        let rest = self.text[i..].trim_start_matches([' ', '\t', '.', '!', '\u{a0}']);
        rest.is_empty() || rest.starts_with(['\n', '\r'])
    }

    /// A first name alone with a possessive before a capitalised word is more often a brand
    /// ("Annie's Bunny Crackers", "Bob's Red Mill") than a person ("Sarah's help").
    fn possessive_brand(&self, k: usize) -> bool {
        let end = self.words[k].end;
        let rest = &self.text[end..];
        let Some(apostrophe) = ["'s ", "’s "].into_iter().find(|p| rest.starts_with(p)) else {
            return false;
        };
        self.words.get(k + 2).is_some_and(|w| {
            w.start == end + apostrophe.len() && matches!(w.case, Case::Title | Case::Upper)
        })
    }

    /// The name `from..=last` is (part of) a thing or a place: a [`THING`] noun inside it or right
    /// after it ("Jack Russell Terrier", "Graham Crackers", "John Wayne airport").
    fn thing(&self, from: usize, last: usize) -> bool {
        let inside = (from + 1..=last).any(|j| THING.contains(&self.lw(j)));
        let after = self.single_space(last) && THING.contains(&self.lw(last + 1));
        inside || after
    }

    /// The name ending at word `last` is followed by ", XX" or ", State", a US state: a city
    /// ("Jackson, MS", "Jackson, Wyoming").
    fn state_after(&self, last: usize) -> bool {
        let rest = &self.text[self.words[last].end..];
        let code = rest.strip_prefix(", ").is_some_and(|r| {
            r.len() >= 2
                && r.is_char_boundary(2)
                && US_STATES.contains(&&r[..2])
                && !r[2..].starts_with(|c: char| c.is_alphanumeric())
        });
        let name = self.gap(last) == ", "
            && self.words[last + 1].case == Case::Title
            && US_STATE_NAMES.contains(&self.lw(last + 1));
        code || name
    }

    /// A lone first name at `k` with a possessive that reads as a brand or a shop: "Annie's
    /// ingredients", "Amy's is working on it", "Go Bob's!!", "Dr. Flynn's granola". It stays a
    /// person after a relation word ("my Grandma Ella's 80th"), before an ordinal ("Ella's 80th")
    /// and before a word of [`PERSON_AFTER`] ("Sarah's help", "Mr. Smith's attitude").
    fn lone_possessive_brand(&self, k: usize) -> bool {
        let end = self.words[k].end;
        let rest = &self.text[end..];
        let Some(ap) = ["'s", "’s", "'S", "’S"]
            .into_iter()
            .find(|p| rest.starts_with(p))
        else {
            return false;
        };
        if k > 0 && self.single_space(k - 1) && RELATION.contains(&self.low.back(k, 1)) {
            return false;
        }
        let after = &self.text[end + ap.len()..];
        match after.chars().next() {
            // A longer word ("Kevin'sson"): not a possessive.
            Some(c) if c.is_alphanumeric() => false,
            Some(' ' | '\u{a0}') => {
                let trimmed = after.trim_start_matches([' ', '\u{a0}']);
                let at = end + ap.len() + (after.len() - trimmed.len());
                let digits = trimmed.trim_start_matches(|c: char| c.is_ascii_digit());
                let ordinal = digits.len() < trimmed.len()
                    && ["st", "nd", "rd", "th"]
                        .iter()
                        .any(|o| digits.starts_with(o));
                let person_word = self.words.get(k + 2).is_some_and(|w| w.start == at)
                    && PERSON_AFTER.contains(&self.lw(k + 2));
                !(ordinal || person_word)
            }
            // At the end, or before punctuation: a shop ("back to Johnny's.", "Go Bob's!!").
            _ => true,
        }
    }

    /// The lone first name at `k` is the first of a pair whose second is a brand possessive
    /// ("Henry and Peggy's tea", "Ben and Jerry's"): a brand too. "Mike and Linda's house"
    /// stays two people.
    fn pair_brand(&self, k: usize) -> bool {
        let gap = &self.text[self.words[k].end..];
        let Some(j) = [" and ", " & ", " &amp; "]
            .iter()
            .find(|g| gap.starts_with(*g))
            .and_then(|g| {
                let at = self.words[k].end + g.len();
                (k + 1..self.words.len().min(k + 4)).find(|&j| self.words[j].start == at)
            })
        else {
            return false;
        };
        self.words[j].case == Case::Title
            && (self.lone_possessive_brand(j) || self.possessive_brand(j))
    }

    /// Word `last` ends a name: the index of the last word once initials and a surname after
    /// them are added ("Mary D. Corpus", "Richard P.", "Kim Y says", "Scott F at BDL").
    fn with_initials(&self, last: usize) -> usize {
        let j = last + 1;
        let Some(w) = self.words.get(j) else {
            return last;
        };
        if !self.single_space(last) || w.case != Case::Initial || w.inert {
            return last;
        }
        let gap = self.gap(j);
        let dotted = self.text[w.end..].starts_with('.');
        if matches!(gap, ". " | ".\u{a0}" | " " | "\u{a0}")
            && self.words.get(j + 1).is_some_and(|n| n.case == Case::Title)
            && self.name_word(j + 1)
            && (dotted || !matches!(self.lw(j), "i" | "a"))
        {
            // A surname after the initial ("Mary D. Corpus"): the name words that follow, up
            // to a place or a thing ("Mike K. Traverse City" keeps the city out).
            if THING.contains(&self.lw(j + 1)) {
                return j;
            }
            let end = self.name_from(j + 1).unwrap_or(j + 1);
            return (j + 1..=end)
                .take_while(|&x| !THING.contains(&self.lw(x)))
                .last()
                .unwrap_or(j);
        }
        // The initial alone ("Richard P. today", "Kim Y says"); "I" and "A" only with a dot.
        if dotted || !matches!(self.lw(j), "i" | "a") {
            let next = self.text[w.end..].trim_start_matches('.');
            let clean = next.is_empty()
                || next.starts_with(|c: char| c.is_whitespace() || ",;:!?)".contains(c));
            if clean {
                return j;
            }
        }
        last
    }

    /// The lone first name at `k` is a model or an item ("Craig 18"), or an end of a route
    /// ("SAP->Mia", "Mia -> New York", "from Bradley to BWI"): not a person.
    fn not_a_person_alone(&self, k: usize) -> bool {
        let before = self.text[..self.words[k].start].trim_end_matches([' ', '\u{a0}']);
        let after_raw = &self.text[self.words[k].end..];
        let after = after_raw.trim_start_matches([' ', '\u{a0}']);
        let arrow = |t: &str| {
            ["->", "-&gt;", "→", "=>", "=&gt;"]
                .iter()
                .any(|a| t.starts_with(a))
        };
        let arrow_before = ["->", "-&gt;", "→", "=>", "=&gt;"]
            .iter()
            .any(|a| before.ends_with(a));
        let number = after_raw.starts_with(' ') && after.starts_with(|c: char| c.is_ascii_digit());
        // "from Bradley to BWI": to an airport code.
        let to_code = self.low.back(k, 1) == "from"
            && after.strip_prefix("to ").is_some_and(|r| {
                r.len() >= 3
                    && r.as_bytes()[..3].iter().all(u8::is_ascii_uppercase)
                    && !r[3..].starts_with(|c: char| c.is_alphanumeric())
            });
        arrow(after) || arrow_before || number || to_code
    }

    /// The name starting at word `from` names a pet: an animal word before it, then a comma and at
    /// most two words ("our pup, Mr. Shimmy", "my chinchillas, Tank and Tony"), or "cat's name
    /// is" right before it.
    fn pet(&self, from: usize) -> bool {
        for back in 1..=4 {
            let Some(j) = from.checked_sub(back) else {
                break;
            };
            if ANIMALS.contains(&self.lw(j)) {
                let gap = self.gap(j);
                if gap.starts_with([',', ':']) {
                    return true;
                }
                // "cat's name is X": the animal, "s", "name", "is".
                if back == 4
                    && self.lw(j + 1) == "s"
                    && self.lw(j + 2) == "name"
                    && matches!(self.lw(j + 3), "is" | "was")
                {
                    return true;
                }
            }
            // Within one clause only.
            let gap = self.gap(j);
            let title_dot = TITLES_SHORT.contains(&self.lw(j));
            if gap.contains(['!', '?', '\n', ';']) || (gap.contains('.') && !title_dot) {
                break;
            }
        }
        false
    }

    /// Word `k` ends a sign-off ("Thanks", "Thank you", "Best regards", "Bien à vous", …).
    fn signoff(&self, k: usize) -> bool {
        let p1 = self.low.back(k, 1);
        let p2 = self.low.back(k, 2);
        match self.lw(k) {
            "thanks" | "thx" | "merci" | "cordialement" | "regards" | "cheers" | "best"
            | "sincerely" | "salutations" | "amicalement" | "respectueusement" | "bisous"
            | "bises" | "cdlt" | "ciao" => true,
            "you" => p1 == "thank",
            "advance" => p1 == "in" && matches!(p2, "thanks" | "you"),
            "again" => matches!(p1, "thanks" | "you"),
            "d'avance" | "beaucoup" => p1 == "merci",
            "vous" => p1 == "à" && p2 == "bien",
            "journée" | "soirée" => p1 == "bonne",
            "care" => p1 == "take",
            "wishes" => p1 == "best",
            _ => false,
        }
    }
}

/// Appends a person candidate for every name in context (see the module docs).
pub(super) fn find(text: &str, words: &[Word], low: &Lowered, out: &mut Vec<Span>) {
    let cx = Ctx { text, words, low };
    let n = words.len();
    // A name that is part of a place ("rue Victor Hugo") is skipped whole.
    let mut place_until = 0;
    for k in 0..n {
        let w = words[k];
        if w.inert {
            continue;
        }
        let lw = cx.lw(k);
        if w.case == Case::Lower && !lists().keywords.contains(lw) && !lw.contains("appel") {
            continue;
        }
        let next = k + 1;

        // 1. Titles.
        if let Some(start) = cx.title(k) {
            if let Some((first, last)) = cx.name_after_title(start) {
                // "Dr. Flynn's granola", "Mrs Leeper's Corn Pasta": a brand.
                let brand = first == last && cx.lone_possessive_brand(last);
                if !cx.thing(first, last) && !brand {
                    out.push(cx.span(first, last));
                }
            }
        }

        if next < n && !words[next].inert {
            // The gap before the next word: one space, or a newline for sign-offs.
            let spaced = cx.single_space(k);

            // 2. "my name is X", "je m'appelle X", …
            let intro = match lw {
                "is" | "was" => cx.low.back(k, 1) == "name",
                "s" => cx.low.back(k, 1) == "name",
                "est" => cx.low.back(k, 1) == "nom",
                "nomme" => cx.low.back(k, 1) == "me",
                "c'est" => cx.low.back(k, 1) == "moi",
                _ => {
                    lw.ends_with("appelle")
                        || lw.ends_with("appelles")
                        || lw.ends_with("appelais")
                        || lw.ends_with("appelait")
                }
            };
            if intro && spaced && words[next].case == Case::Title {
                if let Some(last) = cx.name_from(next) {
                    out.push(cx.span(next, last));
                }
            }
            // 2b. The same, typed in lower case ("my name is john wood"): only with a known
            // first name, then at most one more lower-case word that is not a common word.
            if intro
                && spaced
                && words[next].case == Case::Lower
                && first_name(cx.lw(next)) != First::No
            {
                let mut last = next;
                let j = next + 1;
                if cx.single_space(next)
                    && j < n
                    && !words[j].inert
                    && words[j].case == Case::Lower
                    && !lists().stop.contains(cx.lw(j))
                    && !lists().keywords.contains(cx.lw(j))
                    && cx.lw(j).chars().all(char::is_alphabetic)
                {
                    last = j;
                }
                out.push(cx.span(next, last));
            }

            // 2c. A form label: "Name: Jean Dupont", "Nom : Dupont".
            if matches!(lw, "name" | "nom" | "prénom" | "prenom" | "fullname")
                && cx.gap(k).trim() == ":"
                && words[next].case == Case::Title
            {
                if let Some(last) = cx.name_from(next) {
                    out.push(cx.span(next, last));
                }
            }

            // 3. "I'm X", "je suis X", "named X" with a known first name.
            let known_intro = match lw {
                "i'm" | "im" => true,
                "am" => cx.low.back(k, 1) == "i",
                "is" => cx.low.back(k, 1) == "this",
                "suis" => cx.low.back(k, 1) == "je",
                "c'est" | "named" | "called" | "prénommé" | "prénommée" | "nommé" | "nommée" => {
                    true
                }
                _ => false,
            };
            if known_intro
                && spaced
                && words[next].case == Case::Title
                && first_name(cx.lw(next)) != First::No
            {
                if let Some(last) = cx.name_from(next) {
                    out.push(cx.span(next, last));
                }
            }

            // 4. Greetings.
            if GREETINGS.contains(&lw) && spaced && words[next].case == Case::Title {
                if let Some(last) = cx.name_from(next) {
                    let after = &text[words[last].end..];
                    let closes = after.is_empty()
                        || after.starts_with([',', '!', ':', '\n', '\r'])
                        || after.trim_start_matches([' ', '\t']).is_empty();
                    if (closes || first_name(cx.lw(next)) != First::No) && !cx.thing(next, last) {
                        out.push(cx.span(next, last));
                    }
                }
            }

            // 5. Sign-offs: "Thanks, Marie" / "Cordialement,\nJean Dupont" at the end of a line.
            if cx.signoff(k) {
                let gap = cx.gap(k);
                let g = gap.strip_prefix([',', '.', '!']).unwrap_or(gap);
                let blank = !g.is_empty()
                    && g.chars().all(char::is_whitespace)
                    && g.chars().filter(|&c| c == '\n').count() <= 2;
                // After a sentence end on the same line ("Thanks. Followed.", "the best.
                // Exceptional!") the capitalised word starts a sentence: a name only when it is
                // a known first name.
                let same_line = !gap.contains(['\n', '\r']);
                let sentence = gap.starts_with(['.', '!', '?']) && same_line;
                // Thanks said inline, without a comma ("Thanks Teisseire.", "Thank you Golden
                // Barrel!!") thanks a brand as often as a person: a known first name only.
                let inline = same_line && !gap.contains(',') && !sentence;
                let starts_ok = if sentence {
                    first_name(cx.lw(next)) == First::Yes
                } else {
                    !inline || first_name(cx.lw(next)) != First::No
                };
                if blank && starts_ok {
                    if let Some(last) = cx.name_from(next) {
                        let upper_ok = words[next].case != Case::Upper
                            || (next..=last).any(|j| first_name(cx.lw(j)) != First::No);
                        if upper_ok && cx.ends_line(words[last].end) {
                            out.push(cx.span(next, last));
                        }
                    }
                }
            }
        }

        // 6. Known first names, alone or with a family name.
        if w.case == Case::Title && k >= place_until && NOT_AFTER.contains(&cx.low.back(k, 1)) {
            place_until = cx.name_from(k).map_or(k + 1, |last| last + 1);
        }
        if w.case == Case::Title && k >= place_until {
            match first_name(lw) {
                First::Yes => {
                    if let Some(last) = cx.name_from(k) {
                        let brand = last == k
                            && (cx.possessive_brand(k)
                                || cx.lone_possessive_brand(k)
                                || cx.pair_brand(k)
                                || cx.not_a_person_alone(k));
                        if !brand && !cx.thing(k, last) && !cx.state_after(last) {
                            out.push(cx.span(k, last));
                        }
                    }
                }
                First::Ambiguous => {
                    if cx.single_space(k)
                        && cx.name_word(next)
                        && lists().family.contains(cx.lw(next))
                    {
                        if let Some(last) = cx.name_from(k) {
                            if !cx.thing(k, last) {
                                out.push(cx.span(k, last));
                            }
                        }
                    }
                }
                First::No => {}
            }
        }
        // Family name first, in capitals: "DUPONT Jean" (not "LOVES Annie's crackers").
        if w.case == Case::Upper
            && cx.name_word(k)
            && cx.single_space(k)
            && words[next].case == Case::Title
            && first_name(cx.lw(next)) == First::Yes
            && !cx.lone_possessive_brand(next)
        {
            out.push(cx.span(k, next));
        }
    }
    // Names of pets are not personal data.
    out.retain(|s| {
        s.kind != PiiKind::Person
            || !matches!(words.binary_search_by_key(&s.start, |w| w.start), Ok(k) if cx.pet(k))
    });
}
