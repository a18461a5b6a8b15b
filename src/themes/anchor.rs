//! Parents of the theme tree by what units talk about: the aspect words they use.
//!
//! Why not clusters of unit vectors: on real reviews, sentence vectors group by *product* before
//! they group by *aspect* — 5,000 Amazon reviews gave parents "Flavor" (87% of reviews),
//! "Review" and "Amazon", with children "ice cream", "dog food", "ginger ale"; airline tweets a
//! parent "Seat" whose children were "wait time", "refund", "email". A CX team acts on aspects
//! (delivery, packaging, price, taste, customer service), and the words that name an aspect are
//! few and shared across products and companies. So:
//!
//! 1. **Aspect words** ([`FAMILIES`]): a lexicon of aspect families common to customer feedback
//!    (retail, food, travel, hospitality, software, telecom, banking), EN and FR, nouns and the
//!    words that imply an aspect ("delicious" → taste, "overpriced" → price, "crushed" →
//!    packaging). A unit's candidates are the families of the words it contains (accent- and
//!    case-folded, plural → singular, one- and two-word terms).
//! 2. **Which aspects this data has** is found from the data: a family is a parent when the
//!    units counted for it come from at least [`MIN_SHARE`] of the verbatims (and
//!    [`MIN_VERBATIMS`]); a unit counts for the family, among its words', that units name
//!    *alone* most often. So the data's domain decides ambiguous words ("bag": packaging or
//!    baggage; "arrived": delivery or a flight's arrival): on food reviews "bag" is packaging
//!    (named alone by "box", "jar"), on airline tweets baggage (by "luggage").
//! 3. **Ambiguous units** (words of several present families) go to the family whose centroid
//!    (mean tree vector of its unambiguous units) is nearest.
//! 4. **Units without an aspect word** join the nearest family when they sit at least as close
//!    to its centroid as the median of its own anchored units ("Arrived in pieces" → delivery
//!    without the word); the rest form the parent "General" (praise or blame of the whole:
//!    "Love it!", "Will buy again") — or, when they are most of the units (a domain the lexicon
//!    does not cover), parents cut from their vectors as [`super::tree::build`] cuts them.
//!
//! Children are then what is said about each aspect ([`said_children`]): its units parted by
//! their own sentiment, then the most frequent complaints and praises they say ("too sweet",
//! "stale", "never arrived"), the rest of the complaints grouped by their vectors. Measured on
//! the product's own assignments (`benches/peers/airline_tree_nmi.py` against the airline
//! complaint reasons, `benches/peers/laptop_tree_consistency.py` on laptop aspect terms) and
//! read on Amazon reviews in BENCHMARKS.md.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::tree::{self, Tree, TreeError, TreeParams};

/// A family must be named (alone) by units of at least this share of the verbatims to be a parent.
pub const MIN_SHARE: f64 = 0.01;
/// … and by units of at least this many verbatims.
pub const MIN_VERBATIMS: usize = 5;
/// When more than this share of units names no present aspect, those units are cut into parents
/// of their own by their vectors instead of forming one "General" parent.
pub const DISCOVER_SHARE: f64 = 0.6;
/// Name of the parent of units that name no aspect.
pub const GENERAL_EN: &str = "General";
/// Its French name.
pub const GENERAL_FR: &str = "Général";

/// True for the automatic label of the parent of comments that name no aspect (a user's
/// rename does not change what the node holds).
pub fn is_general(auto_label: &str) -> bool {
    auto_label == GENERAL_EN || auto_label == GENERAL_FR
}

/// One aspect family: its display names and its words (folded: lower case, no accents, no
/// apostrophes; two-word terms joined by one space).
#[derive(Debug)]
pub struct Family {
    /// English display name.
    pub en: &'static str,
    /// French display name.
    pub fr: &'static str,
    /// Words and two-word terms that name or imply the aspect.
    pub terms: &'static [&'static str],
}

/// The aspect families. A word may sit in several families (it is then ambiguous: see the
/// module docs). Plurals are found by stripping "s"/"es"/"x", so only irregular forms are listed.
pub const FAMILIES: &[Family] = &[
    Family {
        en: "Delivery",
        fr: "Livraison",
        terms: &[
            "delivery",
            "deliver",
            "delivered",
            "delivering",
            "shipping",
            "ship",
            "shipped",
            "shipment",
            "arrived",
            "arrive",
            "arrival",
            "courier",
            "carrier",
            "ups",
            "fedex",
            "usps",
            "dhl",
            "tracking",
            "dispatch",
            "dispatched",
            "transit",
            "package",
            "parcel",
            "postage",
            "livraison",
            "livre",
            "livree",
            "livrees",
            "livreur",
            "expedition",
            "expedie",
            "expediee",
            "colis",
            "arrive",
            "arrivee",
            "transporteur",
        ],
    },
    Family {
        en: "Packaging",
        fr: "Emballage",
        terms: &[
            "packaging",
            "packaged",
            "package",
            "box",
            "container",
            "wrapper",
            "wrapping",
            "wrapped",
            "seal",
            "sealed",
            "jar",
            "bottle",
            "tin",
            "lid",
            "pouch",
            "carton",
            "bubble wrap",
            "packing",
            "packed",
            "crushed",
            "dented",
            "leaking",
            "leaked",
            "leak",
            "smashed",
            "torn",
            "damaged",
            "broken",
            "bag",
            "emballage",
            "emballe",
            "boite",
            "sachet",
            "bouteille",
            "couvercle",
            "paquet",
            "ecrase",
            "ecrasee",
            "abime",
            "abimee",
            "casse",
            "cassee",
        ],
    },
    Family {
        en: "Price",
        fr: "Prix",
        terms: &[
            "price",
            "priced",
            "pricing",
            "cost",
            "costly",
            "expensive",
            "inexpensive",
            "cheap",
            "cheaper",
            "cheapest",
            "pricey",
            "overpriced",
            "value",
            "money",
            "deal",
            "bargain",
            "worth",
            "afford",
            "affordable",
            "dollar",
            "buck",
            "penny",
            "pennies",
            "paid",
            "pay",
            "paying",
            "charge",
            "charged",
            "prix",
            "cher",
            "chere",
            "couteux",
            "cout",
            "tarif",
            "argent",
            "euro",
            "bon marche",
            "onereux",
            "payer",
            "paye",
        ],
    },
    Family {
        en: "Taste",
        fr: "Goût",
        terms: &[
            "taste",
            "tasted",
            "tasting",
            "tasty",
            "tasteless",
            "flavor",
            "flavour",
            "flavored",
            "flavoured",
            "flavorful",
            "delicious",
            "yummy",
            "bland",
            "salty",
            "saltiness",
            "sweet",
            "sweetness",
            "sweeter",
            "sour",
            "bitter",
            "bitterness",
            "spicy",
            "aftertaste",
            "savory",
            "tangy",
            "gout",
            "saveur",
            "savoureux",
            "savoureuse",
            "amer",
            "amere",
            "fade",
            "delicieux",
            "delicieuse",
            "epice",
            "epicee",
            "sucre",
        ],
    },
    Family {
        en: "Texture",
        fr: "Texture",
        terms: &[
            "texture",
            "crunchy",
            "crunch",
            "chewy",
            "soggy",
            "mushy",
            "creamy",
            "consistency",
            "crispy",
            "gritty",
            "grainy",
            "croquant",
            "moelleux",
            "pateux",
            "consistance",
        ],
    },
    Family {
        en: "Freshness",
        fr: "Fraîcheur",
        terms: &[
            "fresh",
            "freshness",
            "stale",
            "expired",
            "expiration",
            "expiry",
            "spoiled",
            "rotten",
            "mold",
            "moldy",
            "mouldy",
            "rancid",
            "best before",
            "shelf life",
            "fraicheur",
            "perime",
            "perimee",
            "moisi",
            "rassis",
            "frais",
        ],
    },
    Family {
        en: "Smell",
        fr: "Odeur",
        terms: &[
            "smell",
            "smelled",
            "smelly",
            "odor",
            "odour",
            "aroma",
            "scent",
            "stink",
            "fragrance",
            "odeur",
            "arome",
            "puer",
        ],
    },
    Family {
        en: "Ingredients & health",
        fr: "Ingrédients & santé",
        terms: &[
            "ingredient",
            "sugar",
            "sodium",
            "calorie",
            "fat",
            "protein",
            "organic",
            "artificial",
            "preservative",
            "gluten",
            "allergy",
            "allergic",
            "allergies",
            "healthy",
            "health",
            "healthier",
            "nutrition",
            "nutritional",
            "diet",
            "vegan",
            "msg",
            "corn syrup",
            "carb",
            "additive",
            "chemical",
            "gmo",
            "sucre",
            "bio",
            "sain",
            "sante",
            "allergie",
            "additif",
            "conservateur",
        ],
    },
    Family {
        en: "Size & quantity",
        fr: "Taille & quantité",
        terms: &[
            "size",
            "sized",
            "amount",
            "quantity",
            "quantities",
            "portion",
            "serving",
            "ounce",
            "oz",
            "tiny",
            "smaller",
            "bigger",
            "taille",
            "quantite",
        ],
    },
    Family {
        en: "Customer service",
        fr: "Service client",
        terms: &[
            "customer service",
            "service",
            "support",
            "agent",
            "representative",
            "rep",
            "phone",
            "call",
            "called",
            "calling",
            "hold",
            "email",
            "emailed",
            "chat",
            "contact",
            "contacted",
            "response",
            "respond",
            "responded",
            "reply",
            "replied",
            "answer",
            "answered",
            "complaint",
            "helpline",
            "hotline",
            "dm",
            "call center",
            "unhelpful",
            "service client",
            "sav",
            "conseiller",
            "conseillere",
            "telephone",
            "appel",
            "appele",
            "reponse",
            "repondu",
            "mail",
            "reclamation",
        ],
    },
    Family {
        en: "Staff",
        fr: "Personnel",
        terms: &[
            "staff",
            "employee",
            "crew",
            "attendant",
            "flight attendant",
            "pilot",
            "captain",
            "waiter",
            "waitress",
            "manager",
            "rude",
            "rudeness",
            "polite",
            "impolite",
            "courteous",
            "attitude",
            "personnel",
            "employe",
            "serveur",
            "serveuse",
            "hotesse",
            "steward",
            "equipage",
            "pilote",
            "aimable",
            "impoli",
            "desagreable",
            "accueil",
        ],
    },
    Family {
        en: "Refunds & returns",
        fr: "Remboursements & retours",
        terms: &[
            "refund",
            "refunded",
            "return",
            "returned",
            "returning",
            "exchange",
            "replacement",
            "reimburse",
            "reimbursement",
            "voucher",
            "compensation",
            "compensate",
            "remboursement",
            "rembourse",
            "rembourser",
            "retour",
            "retourne",
            "echange",
            "dedommagement",
            "indemnisation",
        ],
    },
    Family {
        en: "Booking",
        fr: "Réservation",
        terms: &[
            "booking",
            "booked",
            "reservation",
            "reserve",
            "reserved",
            "ticket",
            "itinerary",
            "rebook",
            "rebooked",
            "rebooking",
            "confirmation",
            "change fee",
            "reserver",
            "billet",
        ],
    },
    Family {
        en: "Delays",
        fr: "Retards",
        terms: &[
            "delay",
            "delayed",
            "late",
            "lateness",
            "on time",
            "waiting",
            "waited",
            "hour",
            "schedule",
            "scheduled",
            "arrived",
            "arrive",
            "arrival",
            "departure",
            "depart",
            "missed connection",
            "retard",
            "retarde",
            "retardee",
            "attente",
            "attendre",
            "attendu",
            "heure",
            "horaire",
            "ponctualite",
        ],
    },
    Family {
        en: "Cancellations",
        fr: "Annulations",
        terms: &[
            "cancel",
            "cancelled",
            "canceled",
            "cancellation",
            "cancelling",
            "canceling",
            "annule",
            "annulee",
            "annulation",
            "annuler",
        ],
    },
    Family {
        en: "Baggage",
        fr: "Bagages",
        terms: &[
            "bag",
            "luggage",
            "baggage",
            "suitcase",
            "carry on",
            "carryon",
            "checked bag",
            "baggage claim",
            "damaged",
            "broken",
            "bagage",
            "valise",
        ],
    },
    Family {
        en: "Seats & comfort",
        fr: "Sièges & confort",
        terms: &[
            "seat",
            "seating",
            "seated",
            "legroom",
            "leg room",
            "comfort",
            "comfortable",
            "uncomfortable",
            "aisle",
            "recline",
            "cramped",
            "noise",
            "noisy",
            "siege",
            "confort",
            "confortable",
            "inconfortable",
            "bruit",
            "bruyant",
        ],
    },
    Family {
        en: "Cleanliness",
        fr: "Propreté",
        terms: &[
            "dirty",
            "filthy",
            "cleanliness",
            "hygiene",
            "unclean",
            "stain",
            "stained",
            "proprete",
            "crasseux",
        ],
    },
    Family {
        en: "Food & drink",
        fr: "Repas",
        terms: &[
            "meal",
            "breakfast",
            "lunch",
            "dinner",
            "menu",
            "beverage",
            "catering",
            "repas",
            "petit dejeuner",
            "dejeuner",
            "boisson",
        ],
    },
    Family {
        en: "Website & app",
        fr: "Site & appli",
        terms: &[
            "website",
            "site",
            "app",
            "application",
            "online",
            "login",
            "log in",
            "password",
            "account",
            "checkout",
            "interface",
            "crash",
            "crashed",
            "bug",
            "glitch",
            "error",
            "appli",
            "en ligne",
            "mot de passe",
            "plantage",
        ],
    },
    Family {
        en: "Billing & payment",
        fr: "Facturation & paiement",
        terms: &[
            "bill",
            "billed",
            "billing",
            "invoice",
            "charge",
            "charged",
            "overcharged",
            "payment",
            "pay",
            "paid",
            "paying",
            "fee",
            "credit card",
            "account",
            "facture",
            "facturation",
            "paiement",
            "payer",
            "paye",
            "prelevement",
            "frais",
        ],
    },
    Family {
        en: "Connectivity",
        fr: "Réseau",
        terms: &[
            "wifi",
            "wi fi",
            "internet",
            "connectivity",
            "signal",
            "network",
            "coverage",
            "outage",
            "reseau",
            "couverture",
            "panne",
        ],
    },
    Family {
        en: "Product quality",
        fr: "Qualité du produit",
        terms: &[
            "quality",
            "defective",
            "defect",
            "broke",
            "broken",
            "damaged",
            "durable",
            "durability",
            "flimsy",
            "sturdy",
            "cheaply made",
            "fell apart",
            "faulty",
            "malfunction",
            "stopped working",
            "qualite",
            "defectueux",
            "defaut",
            "casse",
            "fragile",
            "solide",
        ],
    },
    Family {
        en: "Information",
        fr: "Information",
        terms: &[
            "information",
            "info",
            "informed",
            "notified",
            "notification",
            "communication",
            "communicate",
            "announcement",
            "explanation",
            "informe",
            "prevenu",
        ],
    },
    Family {
        en: "Queues & boarding",
        fr: "Files & embarquement",
        terms: &[
            "queue",
            "lines",
            "check in",
            "checkin",
            "security",
            "boarding",
            "boarded",
            "gate",
            "kiosk",
            "file d attente",
            "enregistrement",
            "embarquement",
            "guichet",
        ],
    },
    Family {
        en: "Battery",
        fr: "Batterie",
        terms: &[
            "battery",
            "battery life",
            "charging",
            "charger",
            "batterie",
            "autonomie",
            "chargeur",
        ],
    },
    Family {
        en: "Screen",
        fr: "Écran",
        terms: &[
            "screen",
            "display",
            "resolution",
            "brightness",
            "monitor",
            "ecran",
            "affichage",
        ],
    },
    Family {
        en: "Performance",
        fr: "Performances",
        terms: &[
            "performance",
            "speed",
            "processor",
            "cpu",
            "ram",
            "memory",
            "lag",
            "laggy",
            "boot",
            "performances",
            "vitesse",
            "processeur",
            "memoire",
        ],
    },
    Family {
        en: "Keyboard & controls",
        fr: "Clavier & commandes",
        terms: &[
            "keyboard",
            "keys",
            "trackpad",
            "touchpad",
            "mouse",
            "button",
            "clavier",
            "touche",
            "pave tactile",
            "souris",
            "bouton",
        ],
    },
    Family {
        en: "Software",
        fr: "Logiciels",
        terms: &[
            "software",
            "windows",
            "operating system",
            "program",
            "update",
            "upgrade",
            "logiciel",
            "mise a jour",
        ],
    },
    Family {
        en: "Sound",
        fr: "Son",
        terms: &[
            "speaker",
            "audio",
            "volume",
            "microphone",
            "mic",
            "haut parleur",
        ],
    },
    Family {
        en: "Hardware & ports",
        fr: "Matériel & connectique",
        terms: &[
            "hardware",
            "hard drive",
            "motherboard",
            "port",
            "usb",
            "hdmi",
            "dvd",
            "webcam",
            "camera",
            "touchscreen",
            "materiel",
            "disque dur",
            "ventilateur",
        ],
    },
    Family {
        en: "Location",
        fr: "Emplacement",
        terms: &[
            "location",
            "located",
            "parking",
            "neighborhood",
            "neighbourhood",
            "emplacement",
            "situe",
            "quartier",
        ],
    },
];

/// Term → the families it names.
fn lexicon() -> &'static HashMap<&'static str, Vec<usize>> {
    static LEX: OnceLock<HashMap<&'static str, Vec<usize>>> = OnceLock::new();
    LEX.get_or_init(|| {
        let mut m: HashMap<&'static str, Vec<usize>> = HashMap::new();
        for (f, fam) in FAMILIES.iter().enumerate() {
            for t in fam.terms {
                let e = m.entry(*t).or_default();
                if !e.contains(&f) {
                    e.push(f);
                }
            }
        }
        m
    })
}

/// Lower case, accents folded, apostrophes dropped ("aujourd’hui" → "aujourdhui"); other
/// non-alphanumerics split words.
fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in text.chars().flat_map(char::to_lowercase) {
        let folded: Option<&str> = match c {
            'à' | 'â' | 'ä' | 'á' | 'ã' => Some("a"),
            'é' | 'è' | 'ê' | 'ë' => Some("e"),
            'î' | 'ï' | 'í' => Some("i"),
            'ô' | 'ö' | 'ó' | 'õ' => Some("o"),
            'ù' | 'û' | 'ü' | 'ú' => Some("u"),
            'ç' => Some("c"),
            'ñ' => Some("n"),
            'œ' => Some("oe"),
            'æ' => Some("ae"),
            'ÿ' => Some("y"),
            _ => None,
        };
        if let Some(f) = folded {
            cur.push_str(f);
        } else if c.is_alphanumeric() {
            cur.push(c);
        } else if c == '\'' || c == '’' {
            // "can't" → "cant", "l'emballage" → "lemballage": the elided article is split off
            // below when the rest is a term.
        } else if !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The lexicon's entry for a word: as written, else its singular, else without a French elided
/// article ("lemballage" → "emballage").
fn lookup(w: &str) -> Option<&'static Vec<usize>> {
    let lex = lexicon();
    let singular = |w: &str| -> Option<&'static Vec<usize>> {
        lex.get(w)
            .or_else(|| {
                w.strip_suffix("es")
                    .filter(|s| s.len() > 2)
                    .and_then(|s| lex.get(s))
            })
            .or_else(|| {
                w.strip_suffix('s')
                    .filter(|s| s.len() > 2)
                    .and_then(|s| lex.get(s))
            })
            .or_else(|| {
                w.strip_suffix('x')
                    .filter(|s| s.len() > 2)
                    .and_then(|s| lex.get(s))
            })
    };
    singular(w).or_else(|| {
        ["l", "d"]
            .iter()
            .find_map(|a| w.strip_prefix(a).filter(|s| s.len() > 3).and_then(singular))
    })
}

/// Words that name Delays only when nothing else in the unit names an aspect: measures of time
/// and waiting say "Delays" alone ("waited 3 hours"), but beside a word of another family they
/// are how long that went wrong ("2 hours on hold": Customer service; measured on the airline
/// complaints, where "hour" sent phone holds to Delays). Only their Delays reading is weak:
/// "arrived" still names Delivery.
const WEAK_FOR_DELAYS: &[&str] = &[
    "hour", "hours", "waiting", "waited", "arrived", "arrive", "arrival", "heure", "heures",
    "attente", "attendre", "attendu",
];

/// The aspect families a unit's text names, in family order (empty: none). The Delays reading
/// of a [`WEAK_FOR_DELAYS`] word counts only when no other family is named.
pub fn families_of(text: &str) -> Vec<usize> {
    let ws = words(text);
    let lex = lexicon();
    let mut out: Vec<usize> = Vec::new();
    let mut weak: Vec<usize> = Vec::new();
    for (i, w) in ws.iter().enumerate() {
        if let Some(f) = lookup(w) {
            for &f in f {
                if FAMILIES[f].en == "Delays" && WEAK_FOR_DELAYS.contains(&w.as_str()) {
                    weak.push(f);
                } else {
                    out.push(f);
                }
            }
        }
        if let Some(next) = ws.get(i + 1) {
            let pair = format!("{w} {next}");
            let hit = lex.get(pair.as_str()).or_else(|| {
                next.strip_suffix('s')
                    .and_then(|n| lex.get(format!("{w} {n}").as_str()))
            });
            if let Some(f) = hit {
                out.extend(f);
            }
        }
    }
    if out.is_empty() {
        out = weak;
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// What a parent of an anchored tree is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParentKind {
    /// An aspect family of [`FAMILIES`] (its index).
    Family(usize),
    /// Units naming no aspect: "General".
    General,
    /// Units naming no aspect, cut by their vectors (a domain the lexicon does not cover).
    Discovered,
}

/// Parents chosen by aspect words.
#[derive(Clone, Debug, PartialEq)]
pub struct Anchoring {
    /// Parent of each unit, in `0..kinds.len()`; every parent has units.
    pub parent_of: Vec<usize>,
    /// What each parent is.
    pub kinds: Vec<ParentKind>,
    /// Per unit: true when it names its parent's aspect (false: placed by its vector).
    pub named: Vec<bool>,
    /// How a later unit is given a parent by the same decisions (a theme model,
    /// [`super::model`]).
    pub rule: ParentRule,
}

/// The parent decisions of one anchoring, kept so that units seen later get the parent this run
/// would have given them: the families present, their centroids and median cosines, and what
/// became of the units naming none.
#[derive(Clone, Debug, PartialEq)]
pub struct ParentRule {
    /// The present families, in family order.
    pub families: Vec<FamilyRule>,
    /// Where a unit that names no present family and sits far from all goes.
    pub rest: RestRule,
}

/// One present family of an anchoring.
#[derive(Clone, Debug, PartialEq)]
pub struct FamilyRule {
    /// Its index in [`FAMILIES`].
    pub family: usize,
    /// Its parent, when units kept it (a present family can lose every unit to others).
    pub slot: Option<usize>,
    /// Centroid of its unambiguous units (the tree's vectors; zero when none).
    pub centroid: Vec<f32>,
    /// Median cosine of its named units to the centroid (`None`: no unit joins it by vector).
    pub median: Option<f32>,
}

/// What became of the units that named no present aspect and sat far from every family.
#[derive(Clone, Debug, PartialEq)]
pub enum RestRule {
    /// There were none (a later one goes to its nearest family).
    None,
    /// One parent, "General" (its slot).
    General(usize),
    /// Parents cut from their vectors: a unit goes to the nearest of their centroids (the run
    /// placed its own units so, [`anchor`]); the cut's child centroids are kept for theme models
    /// of version 1, which placed a unit by its nearest cut child.
    Discovered {
        /// Child centroids of the cut (row-major, the tree's vectors).
        centroids: Vec<f32>,
        /// The parent slot of each of those children (`None`: it kept no unit).
        slots: Vec<Option<usize>>,
        /// Centroids of the cut's parents that kept units (row-major, the tree's vectors).
        parent_centroids: Vec<f32>,
        /// The parent slot of each of those.
        parent_slots: Vec<usize>,
    },
}

/// The child decisions of one sentiment part of one parent ([`said_children`]), in the parent's
/// own child numbers: what a later unit of that sentiment says decides its child as it did here.
#[derive(Clone, Debug, PartialEq)]
pub struct PartRule {
    /// The sentiment of the part (−1, 0, 1).
    pub class: i8,
    /// Chosen opinions, most specific first (a unit goes to the first it says): (opinion, child).
    pub keys: Vec<(String, usize)>,
    /// Opinion children: (child, centroid of the units saying it, median cosine; `None`: none
    /// joins by vector).
    pub opinion: Vec<(usize, Vec<f32>, Option<f32>)>,
    /// Children of the units that said no chosen opinion (nearest centroid).
    pub rest: Vec<usize>,
}

/// Parents of `n` units by their aspect words (see the module docs). `x`: the tree's unit
/// vectors (unit length, row-major); `groups[i]`: unit `i`'s verbatim; `families[i]`: what
/// [`families_of`] gives for unit `i`'s text.
pub fn anchor(
    x: &[f32],
    dim: usize,
    groups: &[usize],
    families: &[Vec<usize>],
    params: &TreeParams,
) -> Anchoring {
    let n = families.len();
    let verbatims = distinct(groups.to_vec());
    let floor = ((MIN_SHARE * verbatims as f64).ceil() as usize).max(MIN_VERBATIMS);
    let nf = FAMILIES.len();
    // Families named alone, by distinct verbatims.
    let mut alone: Vec<Vec<usize>> = vec![Vec::new(); nf];
    for (i, f) in families.iter().enumerate() {
        if let [only] = f.as_slice() {
            alone[*only].push(groups[i]);
        }
    }
    let alone: Vec<usize> = alone.into_iter().map(distinct).collect();
    // A unit counts for the family among its words' that is most often named alone ("bag" on
    // airline tweets: baggage, named alone by "luggage"; on food reviews: packaging, by "box").
    let mut support: Vec<Vec<usize>> = vec![Vec::new(); nf];
    for (i, f) in families.iter().enumerate() {
        if let Some(&best) = f
            .iter()
            .max_by(|&&a, &&b| alone[a].cmp(&alone[b]).then(b.cmp(&a)))
        {
            support[best].push(groups[i]);
        }
    }
    let present: Vec<bool> = support.into_iter().map(|g| distinct(g) >= floor).collect();
    // Centroids of present families over their unambiguous units (present families only).
    let cand: Vec<Vec<usize>> = families
        .iter()
        .map(|f| f.iter().copied().filter(|&f| present[f]).collect())
        .collect();
    let sums = tree::centroids_of(
        x,
        dim,
        cand.iter()
            .enumerate()
            .filter_map(|(i, c)| match c.as_slice() {
                [f] => Some((i, *f)),
                _ => None,
            }),
        nf,
    );
    let cos = |i: usize, f: usize| {
        crate::vecmath::dot(&x[i * dim..(i + 1) * dim], &sums[f * dim..(f + 1) * dim])
    };
    let mut family_of: Vec<Option<usize>> = cand
        .iter()
        .enumerate()
        .map(|(i, c)| match c.as_slice() {
            [] => None,
            [f] => Some(*f),
            many => many
                .iter()
                .copied()
                .max_by(|&a, &b| cos(i, a).total_cmp(&cos(i, b)).then(b.cmp(&a))),
        })
        .collect();
    let named: Vec<bool> = family_of.iter().map(Option::is_some).collect();
    // Each present family's median cosine of its named units: how close a member sits.
    let median = median_cosines(
        family_of
            .iter()
            .enumerate()
            .filter_map(|(i, f)| f.map(|f| (i, f))),
        nf,
        cos,
    );
    let live: Vec<usize> = (0..nf).filter(|&f| present[f]).collect();
    let mut rest_rule = RestRule::None;
    for (i, f) in family_of.iter_mut().enumerate() {
        if f.is_none() {
            if let Some((best, s)) = live
                .iter()
                .map(|&g| (g, cos(i, g)))
                .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
            {
                if s >= median[best] {
                    *f = Some(best);
                }
            }
        }
    }
    // Parents: the families that kept units, in family order, then what names no aspect.
    let mut kinds: Vec<ParentKind> = Vec::new();
    let mut slot: Vec<Option<usize>> = vec![None; nf];
    for f in family_of.iter().flatten() {
        slot[*f] = Some(0);
    }
    for (f, s) in slot.iter_mut().enumerate() {
        if s.is_some() {
            *s = Some(kinds.len());
            kinds.push(ParentKind::Family(f));
        }
    }
    let mut parent_of: Vec<usize> = family_of
        .iter()
        .map(|f| f.and_then(|f| slot[f]).unwrap_or(usize::MAX))
        .collect();
    let rest: Vec<usize> = (0..n).filter(|&i| parent_of[i] == usize::MAX).collect();
    if !rest.is_empty() {
        if rest.len() as f64 > DISCOVER_SHARE * n as f64 && rest.len() >= 2 * tree::MIN_SPLIT {
            // Most units name no known aspect: cut them by their vectors as the plain tree does.
            let sub = super::cluster::rows(x, dim, &rest);
            let t = tree::build(
                &sub,
                dim,
                None,
                &TreeParams {
                    aspect_alpha: 0.0,
                    ..params.clone()
                },
            )
            .expect("rows of the tree's own vectors");
            let base = kinds.len();
            let cut_parent: Vec<usize> = t.child_parent.iter().map(|&p| base + p).collect();
            kinds.extend(std::iter::repeat_n(ParentKind::Discovered, t.parents));
            let up = t.unit_parent();
            let fallback = super::cluster::nearest2(&sub, &t.child_centroids, dim);
            let ward: Vec<usize> = up
                .iter()
                .enumerate()
                .map(|(j, p)| p.unwrap_or(t.child_parent[fallback[j].0]))
                .collect();
            // One rule for the run and for a theme model: each unit to the nearest centroid of
            // the Ward cut's parents (one step of spherical k-means from that cut). Placing by the
            // Ward branch instead left a model, which has only centroids, unable to replay it
            // (issue 18: parents NMI 0.67 of a 100k run against its own model).
            let pc = tree::centroids_of(&sub, dim, ward.iter().copied().enumerate(), t.parents);
            let mut had = vec![false; t.parents];
            for &p in &ward {
                had[p] = true;
            }
            let near = nearest_row(&sub, dim, &pc, &had);
            for (j, &i) in rest.iter().enumerate() {
                parent_of[i] = base + near[j];
            }
            // A parent may be left without units: renumber.
            let mut used = vec![false; kinds.len()];
            for &p in &parent_of {
                used[p] = true;
            }
            let mut map = vec![usize::MAX; kinds.len()];
            let mut k2 = Vec::new();
            for (p, k) in kinds.iter().enumerate() {
                if used[p] {
                    map[p] = k2.len();
                    k2.push(*k);
                }
            }
            kinds = k2;
            for p in parent_of.iter_mut() {
                *p = map[*p];
            }
            let kept: Vec<usize> = (0..t.parents)
                .filter(|&p| map[base + p] != usize::MAX)
                .collect();
            rest_rule = RestRule::Discovered {
                centroids: t.child_centroids.clone(),
                slots: cut_parent
                    .iter()
                    .map(|&p| Some(map[p]).filter(|&s| s != usize::MAX))
                    .collect(),
                parent_centroids: kept
                    .iter()
                    .flat_map(|&p| pc[p * dim..(p + 1) * dim].iter().copied())
                    .collect(),
                parent_slots: kept.iter().map(|&p| map[base + p]).collect(),
            };
        } else {
            let g = kinds.len();
            kinds.push(ParentKind::General);
            for &i in &rest {
                parent_of[i] = g;
            }
            rest_rule = RestRule::General(g);
        }
    }
    // Family slots after any renumbering: the parent of the family's kind.
    let rule = ParentRule {
        families: live
            .iter()
            .map(|&f| FamilyRule {
                family: f,
                slot: kinds.iter().position(|k| *k == ParentKind::Family(f)),
                centroid: sums[f * dim..(f + 1) * dim].to_vec(),
                median: Some(median[f]).filter(|m| m.is_finite()),
            })
            .collect(),
        rest: rest_rule,
    };
    let named = named
        .iter()
        .zip(&parent_of)
        .map(|(&nm, &p)| nm && matches!(kinds[p], ParentKind::Family(_)))
        .collect();
    Anchoring {
        parent_of,
        kinds,
        named,
        rule,
    }
}

/// Per row of `x`, the nearest of the centroids `c` (row-major) whose `live` entry is true;
/// ties to the lower index. The one placement rule of a vector-cut parent, in a run
/// ([`anchor`]) and in a theme model ([`super::model::Assigner`]).
pub fn nearest_row(x: &[f32], dim: usize, c: &[f32], live: &[bool]) -> Vec<usize> {
    x.chunks_exact(dim.max(1))
        .map(|v| {
            let mut best: Option<(usize, f32)> = None;
            for (p, row) in c.chunks_exact(dim.max(1)).enumerate() {
                if !live.get(p).copied().unwrap_or(false) {
                    continue;
                }
                let s = crate::vecmath::dot(v, row);
                if best.is_none_or(|b| s > b.1) {
                    best = Some((p, s));
                }
            }
            best.map_or(0, |b| b.0)
        })
        .collect()
}

/// The whole tree with anchored parents: `units` the unit vectors (any length: normalised here,
/// then the product correction of [`TreeParams::aspect_alpha`]), `groups[i]` unit `i`'s
/// verbatim, `texts[i]` its redacted text, `french[i]` its language, `polarity[i]` its sentiment
/// (−1, 0, 1). Children by what is said
/// ([`said_children`]).
pub fn build(
    units: &[f32],
    dim: usize,
    groups: &[usize],
    texts: &[&str],
    french: &[bool],
    polarity: &[i8],
    params: &TreeParams,
) -> Result<(Tree, Anchoring), TreeError> {
    if dim == 0 || !units.len().is_multiple_of(dim) {
        return Err(TreeError::Shape {
            len: units.len(),
            dim,
        });
    }
    let x = tree::aspect_vectors(units, dim, Some(groups), params.aspect_alpha);
    build_on(&x, dim, groups, texts, french, polarity, params)
}

/// [`build`] on vectors already made by [`tree::aspect_vectors`]. `french[i]`: unit `i` is French
/// (its opinion words are read with the French lexicon).
pub fn build_on(
    x: &[f32],
    dim: usize,
    groups: &[usize],
    texts: &[&str],
    french: &[bool],
    polarity: &[i8],
    params: &TreeParams,
) -> Result<(Tree, Anchoring), TreeError> {
    build_with_rule(x, dim, groups, texts, french, polarity, params).map(|(t, a, _)| (t, a))
}

/// [`build_on`], also returning each parent's child decisions ([`PartRule`], by parent slot, in
/// the parent's own child numbers: the tree numbers a parent's children from the first child
/// whose `child_parent` is that parent).
pub fn build_with_rule(
    x: &[f32],
    dim: usize,
    groups: &[usize],
    texts: &[&str],
    french: &[bool],
    polarity: &[i8],
    params: &TreeParams,
) -> Result<(Tree, Anchoring, Vec<Vec<PartRule>>), TreeError> {
    let n = x.len() / dim.max(1);
    if groups.len() != n || texts.len() != n || french.len() != n || polarity.len() != n {
        return Err(TreeError::Grouping {
            groups: groups
                .len()
                .min(texts.len())
                .min(french.len())
                .min(polarity.len()),
            units: n,
        });
    }
    let families: Vec<Vec<usize>> = texts.iter().map(|t| families_of(t)).collect();
    let a = anchor(x, dim, groups, &families, params);
    let mut reader = super::label::OpinionReader::default();
    let said: Vec<Vec<(String, i8)>> = texts
        .iter()
        .zip(french)
        .map(|(t, &f)| reader.keys(t, f))
        .collect();
    let verbatims = distinct(groups.to_vec()) as f64;
    let mut parts: Vec<Vec<PartRule>> = vec![Vec::new(); a.kinds.len()];
    let t = tree::children_with(x, dim, &a.parent_of, a.kinds.len(), |p, idx| {
        let seed = params.seed.wrapping_add(1 + p as u64);
        let (lab, k, rules) = said_children(
            x, dim, idx, groups, &said, polarity, verbatims, params, seed,
        );
        parts[p] = rules;
        (lab, k)
    });
    Ok((t, a, parts))
}

/// Per group of `k`, the median cosine of its members (unit, group) to it by `cos`: how close a
/// member sits (infinite for a group without members, so nothing joins it).
fn median_cosines(
    members: impl Iterator<Item = (usize, usize)>,
    k: usize,
    cos: impl Fn(usize, usize) -> f32,
) -> Vec<f32> {
    let mut by: Vec<Vec<f32>> = vec![Vec::new(); k];
    for (i, g) in members {
        by[g].push(cos(i, g));
    }
    by.into_iter()
        .map(|mut c| {
            c.sort_by(f32::total_cmp);
            c.get(c.len() / 2).copied().unwrap_or(f32::INFINITY)
        })
        .collect()
}

fn distinct(mut g: Vec<usize>) -> usize {
    g.sort_unstable();
    g.dedup();
    g.len()
}

/// A child by what is said needs units of at least this share of the verbatims…
pub const SAID_MIN_SHARE: f64 = 0.005;
/// … and of at least this many verbatims.
pub const SAID_MIN_VERBATIMS: usize = 5;
/// A sentiment part of a parent with fewer units than this is not a child of its own: its
/// units join the nearest child of the parent.
pub const SAID_MIN_PART: usize = 5;
/// At most this many complaint children per parent by opinion word (the most frequent)…
pub const SAID_NEGATIVE: usize = 5;
/// … and this many praise children by opinion word.
pub const SAID_POSITIVE: usize = 3;
/// An opinion whose verbatims are at least this share of a chosen one's is said with it, not a
/// child of its own.
pub const SAID_OVERLAP: f64 = 0.7;

/// The children of one parent (`idx`: its units) by what is said about the aspect. Why not
/// clusters of vectors alone: inside an aspect, sentence vectors still group by product ("Taste ›
/// dark chocolate", "Taste › green tea") and mix praise with complaints; a team needs "Taste ›
/// too salty". So the parent's units are first parted by their own sentiment (complaints,
/// praise, neither), then each part by what it says ([`said_group`]).
#[allow(clippy::too_many_arguments)]
fn said_children(
    x: &[f32],
    dim: usize,
    idx: &[usize],
    groups: &[usize],
    said: &[Vec<(String, i8)>],
    polarity: &[i8],
    verbatims: f64,
    params: &TreeParams,
    seed: u64,
) -> (Vec<usize>, usize, Vec<PartRule>) {
    let mut lab = vec![usize::MAX; idx.len()];
    let mut k_all = 0;
    let mut few: Vec<usize> = Vec::new();
    let mut rules: Vec<PartRule> = Vec::new();
    for (class, keys) in [(-1i8, SAID_NEGATIVE), (1, SAID_POSITIVE), (0, 0)] {
        let pos: Vec<usize> = (0..idx.len())
            .filter(|&p| polarity[idx[p]] == class)
            .collect();
        if pos.len() < SAID_MIN_PART {
            // Too few to be a child: they join the nearest child of the other parts.
            few.extend(pos);
            continue;
        }
        let rows: Vec<usize> = pos.iter().map(|&p| idx[p]).collect();
        // Complaints not said in a frequent word are grouped by their vectors (issues hide
        // there); the rest of praise and of mentions stays one child each.
        let split = class < 0;
        let (l, k, mut rule) = said_group(
            x, dim, &rows, groups, said, class, keys, split, verbatims, params, seed,
        );
        for (&p, l) in pos.iter().zip(l) {
            lab[p] = k_all + l;
        }
        for c in rule
            .keys
            .iter_mut()
            .map(|k| &mut k.1)
            .chain(rule.opinion.iter_mut().map(|o| &mut o.0))
            .chain(rule.rest.iter_mut())
        {
            *c += k_all;
        }
        rules.push(rule);
        k_all += k;
    }
    if k_all == 0 {
        return (vec![0; idx.len()], 1, Vec::new());
    }
    if !few.is_empty() {
        let c = tree::centroids_of(
            x,
            dim,
            idx.iter()
                .zip(&lab)
                .filter(|(_, &l)| l != usize::MAX)
                .map(|(&i, &l)| (i, l)),
            k_all,
        );
        let them: Vec<usize> = few.iter().map(|&p| idx[p]).collect();
        let near = super::cluster::nearest2(&super::cluster::rows(x, dim, &them), &c, dim);
        for (&p, m) in few.iter().zip(&near) {
            lab[p] = m.0;
        }
    }
    (lab, k_all, rules)
}

/// One sentiment part of a parent (`idx`, all of sentiment `class`): a child per opinion core
/// ([`super::label::OpinionReader`]) of that sentiment said by units of at least
/// [`SAID_MIN_SHARE`] of the verbatims, the `max_keys` most frequent (an opinion said mostly
/// with a chosen one, [`SAID_OVERLAP`], is not a child of its own). A unit goes to the least
/// frequent chosen opinion it says (the most specific); a unit that says none joins the nearest
/// such child when it is as close as that child's median unit; the rest are grouped by their
/// vectors ([`tree::split_units`]) when `split`, else form one child — or, when fewer than
/// [`tree::MIN_SPLIT`] and there is an opinion child, join their nearest.
#[allow(clippy::too_many_arguments)]
fn said_group(
    x: &[f32],
    dim: usize,
    idx: &[usize],
    groups: &[usize],
    said: &[Vec<(String, i8)>],
    class: i8,
    max_keys: usize,
    split: bool,
    verbatims: f64,
    params: &TreeParams,
    seed: u64,
) -> (Vec<usize>, usize, PartRule) {
    let floor = ((SAID_MIN_SHARE * verbatims).ceil() as usize).max(SAID_MIN_VERBATIMS);
    // Opinion → its verbatims, over these units.
    let mut by_key: std::collections::BTreeMap<&str, Vec<usize>> = Default::default();
    if max_keys > 0 {
        for &i in idx {
            for (k, p) in &said[i] {
                if *p == class {
                    by_key.entry(k.as_str()).or_default().push(groups[i]);
                }
            }
        }
    }
    let mut cands: Vec<(&str, Vec<usize>)> = by_key
        .into_iter()
        .map(|(k, mut g)| {
            g.sort_unstable();
            g.dedup();
            (k, g)
        })
        .filter(|c| c.1.len() >= floor)
        .collect();
    cands.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(b.0)));
    let mut chosen: Vec<(&str, Vec<usize>)> = Vec::new();
    for (k, g) in cands {
        let overlaps = chosen.iter().any(|(_, c)| {
            let shared = g.iter().filter(|v| c.binary_search(v).is_ok()).count();
            shared as f64 >= SAID_OVERLAP * g.len() as f64
        });
        if chosen.len() < max_keys && !overlaps {
            chosen.push((k, g));
        }
    }
    if chosen.is_empty() {
        let (lab, k) = if split {
            tree::split_units(x, dim, idx, verbatims, params, seed)
        } else {
            (vec![0; idx.len()], 1)
        };
        let rule = PartRule {
            class,
            keys: Vec::new(),
            opinion: Vec::new(),
            rest: (0..k).collect(),
        };
        return (lab, k, rule);
    }
    let k = chosen.len();
    let slot: HashMap<&str, usize> = chosen.iter().enumerate().map(|(j, c)| (c.0, j)).collect();
    let mut lab: Vec<Option<usize>> = idx
        .iter()
        .map(|&i| {
            said[i]
                .iter()
                .filter_map(|(key, _)| slot.get(key.as_str()).copied())
                .min_by_key(|&j| (chosen[j].1.len(), j))
        })
        .collect();
    // Centroids of the opinion children over the units that say them.
    let c = tree::centroids_of(
        x,
        dim,
        idx.iter().zip(&lab).filter_map(|(&i, l)| l.map(|j| (i, j))),
        k,
    );
    let cos = |i: usize, j: usize| {
        crate::vecmath::dot(&x[i * dim..(i + 1) * dim], &c[j * dim..(j + 1) * dim])
    };
    let median = median_cosines(
        idx.iter().zip(&lab).filter_map(|(&i, l)| l.map(|j| (i, j))),
        k,
        cos,
    );
    let nearest = |i: usize| {
        (0..k)
            .map(|j| (j, cos(i, j)))
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
            .expect("k > 0")
    };
    let mut rest: Vec<usize> = Vec::new();
    for (pos, (&i, l)) in idx.iter().zip(lab.iter_mut()).enumerate() {
        if l.is_none() {
            let (j, s) = nearest(i);
            if s >= median[j] {
                *l = Some(j);
            } else {
                rest.push(pos);
            }
        }
    }
    let mut k_all = k;
    if rest.len() >= tree::MIN_SPLIT {
        let rows: Vec<usize> = rest.iter().map(|&p| idx[p]).collect();
        let (rl, rk) = if split {
            tree::split_units(x, dim, &rows, verbatims, params, seed)
        } else {
            (vec![0; rows.len()], 1)
        };
        for (&p, r) in rest.iter().zip(rl) {
            lab[p] = Some(k + r);
        }
        k_all += rk;
    } else {
        for &p in &rest {
            lab[p] = Some(nearest(idx[p]).0);
        }
    }
    let lab: Vec<usize> = lab
        .into_iter()
        .map(|l| l.expect("every unit placed"))
        .collect();
    // Every group used (a chosen opinion may have lost all its units to more specific ones).
    let mut used = vec![false; k_all];
    for &l in &lab {
        used[l] = true;
    }
    let mut map = vec![0; k_all];
    let mut next = 0;
    for (j, u) in used.iter().enumerate() {
        if *u {
            map[j] = next;
            next += 1;
        }
    }
    // The same decisions for later units: opinions by specificity (as `lab` chose them above).
    let mut order: Vec<usize> = (0..k).filter(|&j| used[j]).collect();
    order.sort_by_key(|&j| (chosen[j].1.len(), j));
    let rule = PartRule {
        class,
        keys: order
            .iter()
            .map(|&j| (chosen[j].0.to_string(), map[j]))
            .collect(),
        opinion: (0..k)
            .filter(|&j| used[j])
            .map(|j| {
                let m = Some(median[j]).filter(|m| m.is_finite());
                (map[j], c[j * dim..(j + 1) * dim].to_vec(), m)
            })
            .collect(),
        rest: (k..k_all).filter(|&j| used[j]).map(|j| map[j]).collect(),
    };
    (lab.into_iter().map(|l| map[l]).collect(), next, rule)
}

/// Families bad by their name, with how praise of them and a generic complaint about them are
/// said: "good delays" or "bad cancellations" say nothing, "on time" and "long delays" do.
/// `(family, [praise en, complaint en, praise fr, complaint fr])`.
const SAID: &[(&str, [&str; 4])] = &[
    (
        "Delays",
        ["on time", "long delays", "à l'heure", "longs retards"],
    ),
    (
        "Cancellations",
        [
            "cancellation handled well",
            "cancelled",
            "annulation bien gérée",
            "annulé",
        ],
    ),
];

/// How praise (`good`) or a generic complaint (`!good`) of the family displayed as `name`
/// (its English or French name, any case) is said, for a family bad by its name ([`SAID`]);
/// `None` for the others, whose "good"/"bad" + name reads right ("good price").
pub fn said_of(name: &str, good: bool, french: bool) -> Option<&'static str> {
    let name = name.to_lowercase();
    let f = FAMILIES
        .iter()
        .find(|f| f.en.to_lowercase() == name || f.fr.to_lowercase() == name)?;
    let (_, said) = SAID.iter().find(|(en, _)| *en == f.en)?;
    Some(said[usize::from(!good) + 2 * usize::from(french)])
}

/// Display name of a family in `language` (`fr` → French, else English).
pub fn family_name(f: usize, language: &str) -> &'static str {
    if language == "fr" {
        FAMILIES[f].fr
    } else {
        FAMILIES[f].en
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_bad_by_their_name_say_praise_and_complaint_in_their_own_words() {
        assert_eq!(said_of("Delays", true, false), Some("on time"));
        assert_eq!(said_of("delays", false, false), Some("long delays"));
        assert_eq!(said_of("Retards", true, true), Some("à l'heure"));
        assert_eq!(said_of("Cancellations", false, false), Some("cancelled"));
        assert_eq!(said_of("annulations", false, true), Some("annulé"));
        assert_eq!(said_of("Price", true, false), None);
        assert_eq!(said_of("no such family", true, false), None);
        // every entry names a family
        for (en, _) in SAID {
            assert!(FAMILIES.iter().any(|f| f.en == *en), "{en}");
        }
    }

    #[test]
    fn words_name_their_aspects_in_both_languages() {
        let name =
            |t: &str| -> Vec<&str> { families_of(t).into_iter().map(|f| FAMILIES[f].en).collect() };
        assert_eq!(name("Tastes great!"), ["Taste"]);
        assert_eq!(name("The flavours are too sweet"), ["Taste"]);
        assert_eq!(name("Way overpriced for what you get."), ["Price"]);
        assert_eq!(name("Customer service never replied"), ["Customer service"]);
        assert_eq!(name("La livraison était en retard"), ["Delivery", "Delays"]);
        assert_eq!(name("L'emballage était abîmé"), ["Packaging"]);
        assert_eq!(name("Le goût est fade"), ["Taste"]);
        assert!(name("I love it, will buy again").is_empty());
        // Ambiguous words name every family they may mean.
        assert_eq!(name("my bag"), ["Packaging", "Baggage"]);
        // A measure of waiting names Delays alone, not beside another aspect.
        assert_eq!(name("We waited 3 hours for nothing"), ["Delays"]);
        assert_eq!(name("It arrived two days early"), ["Delivery"]);
        assert_eq!(name("It arrived on time"), ["Delivery", "Delays"]);
        assert_eq!(name("2 hours on hold with an agent"), ["Customer service"]);
        assert_eq!(
            name("Delayed 2 hours and nobody answered the phone"),
            ["Customer service", "Delays"]
        );
    }

    /// "Great taste", "love the taste" and "best taste ever" say one thing: one praise child,
    /// not three siblings (Amazon's "Taste › taste great", "› good taste"…); a specific
    /// complaint stays its own child.
    #[test]
    fn synonymous_praise_is_one_child_and_a_specific_complaint_its_own() {
        let dim = 4;
        let mut x = Vec::new();
        let mut texts = Vec::new();
        let mut polarity = Vec::new();
        for i in 0..90 {
            let mut v = vec![1.0f32, 0.1 + (i % 7) as f32 * 0.01, 0.05, 0.0];
            crate::vecmath::l2_normalize(&mut v);
            x.extend(v);
            texts.push(["Great taste", "I love the taste", "Best taste ever"][i % 3]);
            polarity.push(1i8);
        }
        for i in 0..30 {
            let mut v = vec![0.2f32, 1.0, 0.05 + (i % 5) as f32 * 0.01, 0.0];
            crate::vecmath::l2_normalize(&mut v);
            x.extend(v);
            texts.push("Way too salty");
            polarity.push(-1);
        }
        let mut reader = super::super::label::OpinionReader::default();
        let said: Vec<Vec<(String, i8)>> = texts.iter().map(|t| reader.keys(t, false)).collect();
        let idx: Vec<usize> = (0..texts.len()).collect();
        let groups = idx.clone();
        let (lab, k, _) = said_children(
            &x,
            dim,
            &idx,
            &groups,
            &said,
            &polarity,
            texts.len() as f64,
            &TreeParams::default(),
            7,
        );
        assert_eq!(k, 2, "{lab:?}");
        assert!(lab[..90].iter().all(|&l| l == lab[0]), "{lab:?}");
        assert!(
            lab[90..].iter().all(|&l| l == lab[90] && l != lab[0]),
            "{lab:?}"
        );
    }

    /// Units on three synthetic directions: taste words, delivery words, and words of no aspect.
    #[test]
    fn ambiguous_and_unnamed_units_follow_the_data() {
        let dim = 4;
        let mut x = Vec::new();
        let mut texts = Vec::new();
        let mut groups = Vec::new();
        let row = |d: usize, noise: f32| {
            let mut v = vec![0.05f32; 4];
            v[d] = 1.0;
            v[3] = noise;
            crate::vecmath::l2_normalize(&mut v);
            v
        };
        for i in 0..40 {
            x.extend(row(0, 0.0));
            texts.push("tastes great");
            groups.push(i);
            x.extend(row(1, 0.0));
            texts.push("shipping was slow");
            groups.push(100 + i);
            x.extend(row(2, 0.0));
            texts.push("love it");
            groups.push(200 + i);
        }
        // "bag" is packaging or baggage, and neither is named alone anywhere: neither is present;
        // a unit as near the delivery units as they are to their centroid that says only "the
        // bag" joins delivery by its vector.
        x.extend(row(1, 0.0));
        texts.push("the bag");
        groups.push(999);
        let fams: Vec<Vec<usize>> = texts.iter().map(|t| families_of(t)).collect();
        let a = anchor(&x, dim, &groups, &fams, &TreeParams::default());
        let kind = |i: usize| a.kinds[a.parent_of[i]];
        let taste = FAMILIES.iter().position(|f| f.en == "Taste").unwrap();
        let delivery = FAMILIES.iter().position(|f| f.en == "Delivery").unwrap();
        assert_eq!(kind(0), ParentKind::Family(taste));
        assert_eq!(kind(1), ParentKind::Family(delivery));
        assert_eq!(kind(2), ParentKind::General);
        assert_eq!(kind(120), ParentKind::Family(delivery));
        assert!(a.named[0] && !a.named[2] && !a.named[120]);
        assert_eq!(a.kinds.len(), 3);
    }
}
