//! Unit tests of the detectors (examples from issue 3) and property tests of [`detect`]'s
//! invariants. The scored evaluation is `tests/it/pii_eval.rs`.

use proptest::prelude::*;

use super::detect;
use crate::pii::{PiiKind, Span};

/// The (kind, text) pairs `detect` finds.
fn found(text: &str) -> Vec<(PiiKind, &str)> {
    detect(text)
        .into_iter()
        .map(|s| (s.kind, &text[s.start..s.end]))
        .collect()
}

#[track_caller]
fn one(text: &str, kind: PiiKind, value: &str) {
    assert_eq!(found(text), vec![(kind, value)], "in {text:?}");
}

#[track_caller]
fn none(text: &str) {
    assert_eq!(found(text), vec![], "in {text:?}");
}

#[test]
fn pii_emails() {
    one(
        "write to jean.dupont@example.fr.",
        PiiKind::Email,
        "jean.dupont@example.fr",
    );
    one(
        "<john+shop@mail.co.uk>",
        PiiKind::Email,
        "john+shop@mail.co.uk",
    );
    one(
        "?email=jean.dupont%40example.fr&x=1",
        PiiKind::Email,
        "jean.dupont%40example.fr",
    );
    none("follow @verbatim on the app");
    none("a@b");
    none("x@y.fr0612345678");
}

#[test]
fn pii_phones() {
    for p in [
        "06 12 34 56 78",
        "06.12.34.56.78",
        "0612345678",
        "06-12-34-56-78",
        "+33 6 12 34 56 78",
        "+33 (0)6 12 34 56 78",
        "+33612345678",
        "0033 6 12 34 56 78",
        "(415) 555-0123",
        "415-555-0123",
        "+1 415 555 0123",
        "+1 (415) 555-0123",
        "+44 20 7946 0958",
        "020 7946 0958",
        "07700 900123",
        "+49 30 12345678",
        "030 12345678",
        "0151 23456789",
        "+32 470 12 34 56",
        "0470 12 34 56",
        "02 123 45 67",
        "+34 612 34 56 78",
        "612 34 56 78",
        "+39 06 1234 5678",
        "333 123 4567",
        "%2B33612345678",
        "06%2012%2034%2056%2078",
    ] {
        one(&format!("call me at {p} please"), PiiKind::Phone, p);
    }
    none("order #123456789 and commande n° 4521789632");
    none("commande n° 0612345678");
    none("delivered on 12/03/2024 at 10:30");
    none("price 1 299,00 € or €1,299.00");
    none("tracking 1Z999AA10123456784, SKU-88231-B, postcode 75011");
    none("it costs 612 345 678 €");
}

#[test]
fn pii_iban_card_nir() {
    one(
        "IBAN FR76 3000 6000 0112 3456 7890 189 merci",
        PiiKind::Iban,
        "FR76 3000 6000 0112 3456 7890 189",
    );
    one(
        "iban: GB82WEST12345698765432.",
        PiiKind::Iban,
        "GB82WEST12345698765432",
    );
    none("IBAN FR76 3000 6000 0112 3456 7890 188");
    one(
        "card 4970 1012 3456 7893 exp 12/26",
        PiiKind::Card,
        "4970 1012 3456 7893",
    );
    one("amex 3782-822463-10005", PiiKind::Card, "3782-822463-10005");
    none("card 4970 1012 3456 7890");
    one(
        "NIR 1 84 12 75 123 456 40.",
        PiiKind::Nir,
        "1 84 12 75 123 456 40",
    );
    one("secu 184127512345640", PiiKind::Nir, "184127512345640");
    none("secu 1 84 12 75 123 456 41");
}

#[test]
fn pii_ips() {
    one("from 192.168.1.10:8080", PiiKind::Ip, "192.168.1.10");
    one(
        "ip 2001:db8::8a2e:370:7334 blocked",
        PiiKind::Ip,
        "2001:db8::8a2e:370:7334",
    );
    one(
        "ip 2001:0db8:85a3:0000:0000:8a2e:0370:7334",
        PiiKind::Ip,
        "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
    );
    one("link-local fe80::1 here", PiiKind::Ip, "fe80::1");
    none("v1.2.3 and version 2.0.1 and iOS 17.4.1 and version 1.2.3.4");
    none("at 12:30:45, mac 00:1A:2B:3C:4D:5E, 256.1.1.1");
}

#[test]
fn pii_dob() {
    one("I was born on 12/03/1985.", PiiKind::Dob, "12/03/1985");
    one("DOB: 1985-03-12", PiiKind::Dob, "1985-03-12");
    one("née le 3 mars 1985 à Lyon", PiiKind::Dob, "3 mars 1985");
    one("né(e) le 1er avril 1990", PiiKind::Dob, "1er avril 1990");
    one(
        "Date of birth: March 3, 1985",
        PiiKind::Dob,
        "March 3, 1985",
    );
    one("date de naissance : 03.12.1985", PiiKind::Dob, "03.12.1985");
    none("delivered on 12/03/2024, le 3 mars");
}

#[test]
fn pii_persons() {
    one("Bonjour, je suis M. Dupont.", PiiKind::Person, "Dupont");
    one(
        "Mme Marie-Claire DUVAL a appelé",
        PiiKind::Person,
        "Marie-Claire DUVAL",
    );
    one(
        "my name is Zoltan Kovacs and",
        PiiKind::Person,
        "Zoltan Kovacs",
    );
    one("je m'appelle Anouk.", PiiKind::Person, "Anouk");
    one("Dear Zbigniew,\nthe order", PiiKind::Person, "Zbigniew");
    one(
        "the product is fine.\nRegards, Tomasz Nowak",
        PiiKind::Person,
        "Tomasz Nowak",
    );
    one("Sarah's help was great", PiiKind::Person, "Sarah");
    one(
        "I spoke to Kevin Martin yesterday",
        PiiKind::Person,
        "Kevin Martin",
    );
    one(
        "Charles de Gaulle a fondé la Ve République",
        PiiKind::Person,
        "Charles de Gaulle",
    );
    // A place named after a person is a place (issue 12).
    none("Charles de Gaulle airport, aéroport Charles de Gaulle");
    none("Hello Support, hi team, Bonjour Madame, Dear Customer Service,");
    none("Mr <PERSON> and Dear <PERSON>, thanks <PERSON>");
    none("Will Amazon refund me? I live rue Victor Hugo.");
}

/// Issue 12: brands, chains and places named after people are not people.
#[test]
fn pii_persons_brands_and_places_named_after_people() {
    none("I buy my coffee at Trader Joe's every week.");
    none("Trader Joe's has it cheaper.");
    none("Dr. Pepper's new flavour is too sweet.");
    none("Dr. Bronner's soap is gentle.");
    none("King Arthur flour makes the best bread.");
    none("Paul Newman's Own salsa, and Newman's Own dressing.");
    none("Ben & Jerry's ice cream arrived melted.");
    none("Swiss Miss Cocoa is fine, Try Me Tiger Sauce is better.");
    none("My Jack Russell Terrier loves them; Graham Crackers were stale.");
    none("It grills well on my George Foreman grill.");
    none("Smoother than Craig 18. I love Annie's ingredients. Go Bob's!!");
    none("I was stuck in Jackson, MS for two days.");
    // French.
    none("Je fais mes courses chez Leclerc, jamais chez Monoprix.");
    none("Merci Monoprix !");
    none("Livré à Saint-Étienne avec trois jours de retard.");
    one(
        "Jean-Pierre Dupont m'a rappelé hier.",
        PiiKind::Person,
        "Jean-Pierre Dupont",
    );
    one("Me Dupont a plaidé.", PiiKind::Person, "Dupont");
}

/// Issue 12: a lone first name (or a title and a name) with a possessive is a brand unless what
/// follows belongs to a person.
#[test]
fn pii_persons_possessive_brands() {
    none("Dr. Flynn's granola is stale, Mrs Leeper's Corn Pasta is fine.");
    none("For me, Mary's fit the bill, and Annie's was a close second.");
    none("I keep cans of Annie's in my desk; when Amy's does the right thing I'll buy again.");
    none("I preferred Henry and Peggy's tea; Uncle Dan's dressing is better.");
    none("My daughter LOVES Annie's crackers.");
    none("We flew out of Jackson, Wyoming.");
    one("Mr. Smith's attitude was rude.", PiiKind::Person, "Smith");
    assert_eq!(
        found("Mike and Linda's house is next door."),
        vec![(PiiKind::Person, "Mike"), (PiiKind::Person, "Linda")]
    );
    one("For Ella's 80th birthday", PiiKind::Person, "Ella");
    one(
        "DUPONT Jean's help was great",
        PiiKind::Person,
        "DUPONT Jean",
    );
}

/// Issue 12: an allowed phrase never hides a real name next to it.
#[test]
fn pii_persons_allowed_names_never_hide_a_person() {
    // The candidate runs past the phrase: kept whole.
    one("Trader Joe Smith called me.", PiiKind::Person, "Joe Smith");
    assert_eq!(
        found("Joe Smith from Trader Joe's was kind."),
        vec![(PiiKind::Person, "Joe Smith")]
    );
    // A phrase with "'s" needs it; bare first and family names are never listed.
    one("Wendy helped me at the counter.", PiiKind::Person, "Wendy");
    one("Mr. Newman was rude.", PiiKind::Person, "Newman");
    one("Arthur answered my call.", PiiKind::Person, "Arthur");
    one("Sarah's help was great", PiiKind::Person, "Sarah");
    one("Paul's explanation was clear", PiiKind::Person, "Paul");
    one("my Grandma Ella's 80th birthday", PiiKind::Person, "Ella");
    one("Thanks Marie!", PiiKind::Person, "Marie");
}

/// Issue 12: capitalised ordinary words after a sentence end, pets, routes and tags.
#[test]
fn pii_persons_sentence_starts_pets_routes_tags() {
    none("This tea is simply the best. Exceptional!");
    none("Great, thanks. Followed.");
    none("Thanks! Happy Chinese New Year!");
    none("Thanks Teisseire.");
    none("Dear Sirs:\nthe jar was broken");
    none("Our pup, Mr. Shimmy, loves these treats.");
    none("My chinchillas, Tank and Tony, drink a lot.");
    none("(our cat's name is Grandma)");
    none("any flights SAP->Mia or Mia -> New York? I flew from Bradley to BWI.");
    none("stuck @ Mia again, #Logan is a mess");
    // A real sign-off still counts.
    one("Thanks,\nTomasz Nowak", PiiKind::Person, "Tomasz Nowak");
}

/// Issue 12: initials and the surname after a detected name are part of it.
#[test]
fn pii_persons_initials_and_surnames_after_a_name() {
    one(
        "I spoke with Mary D. Corpus about the refund.",
        PiiKind::Person,
        "Mary D. Corpus",
    );
    one(
        "treated so poorly as Richard P. today",
        PiiKind::Person,
        "Richard P",
    );
    one("Kim Y says we leave soon", PiiKind::Person, "Kim Y");
    one("Scott F at BDL was great", PiiKind::Person, "Scott F");
    // "I" and "A" without a dot are words, not initials.
    one("Thanks to Kevin I got a refund", PiiKind::Person, "Kevin");
}

/// `privacy.allow_names`: names added for one workspace.
#[test]
fn pii_persons_extra_allowed_names() {
    use super::allow::AllowNames;
    use super::detect_with;
    let text = "We had lunch at Chez Marcel before the flight.";
    assert_eq!(found(text), vec![(PiiKind::Person, "Marcel")]);
    let names = AllowNames::with_extra(&["Chez Marcel".to_string()]).unwrap();
    assert_eq!(detect_with(text, &names), vec![]);
    // Still a person outside the phrase.
    let spans = detect_with("Marcel Pagnol wrote it.", &names);
    assert_eq!(spans.len(), 1);
    let err = AllowNames::with_extra(&["ok".to_string(), " -- ".to_string()]).unwrap_err();
    assert_eq!(err.index, 1);
    assert!(err.to_string().contains("privacy.allow_names[1]"), "{err}");
}

/// Inputs the property tests once found where redacting left something to detect (a
/// neighbour glued to a span, or a candidate hidden by a longer one it overlapped).
#[test]
fn pii_redaction_leaves_nothing_on_past_counterexamples() {
    for text in [
        "born on 12/04/1987 06 12 34 56 78",
        "FR76 3000 6000 0112 3456 7890 189Jean<PERSON>",
        "1 84 12 75 123 456 40+4970 1012 3456 7893",
        "jean.dupont@example.fr+33 6 12 34 56 78<PERSON>",
        "Jean.+4970 1012 3456 7893",
        "Jean'FR76 3000 6000 0112 3456 7890 189<",
        "06 12 34 56 78,2001:db8::1",
        "jean.dupont@example.fr.Marie-Claire",
        "06 12 34 56 78.a@b.co",
    ] {
        check_invariants(text).unwrap();
    }
    // The value hidden behind the longer candidate is found in the end.
    assert_eq!(
        found("06 12 34 56 78.a@b.co"),
        vec![
            (PiiKind::Phone, "06 12 34 56 78"),
            (PiiKind::Email, "a@b.co")
        ]
    );
}

// ---- properties -------------------------------------------------------------------------------

/// Replaces every span with its placeholder.
fn redact_local(text: &str, spans: &[Span]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for s in spans {
        out.push_str(&text[at..s.start]);
        out.push_str(s.kind.placeholder());
        at = s.end;
    }
    out.push_str(&text[at..]);
    out
}

fn check_invariants(text: &str) -> Result<(), TestCaseError> {
    let spans = detect(text);
    let mut prev_end = 0;
    for s in &spans {
        prop_assert!(s.start < s.end && s.end <= text.len(), "{s:?}");
        prop_assert!(s.start >= prev_end, "overlap or unsorted: {spans:?}");
        prop_assert!(text.is_char_boundary(s.start) && text.is_char_boundary(s.end));
        prev_end = s.end;
    }
    let once = redact_local(text, &spans);
    let again = detect(&once);
    prop_assert!(again.is_empty(), "{once:?} still has {again:?}");
    prop_assert_eq!(redact_local(&once, &again), once.clone());
    Ok(())
}

/// Pieces that put structured values, context words and placeholders next to each other.
const PIECES: &[&str] = &[
    "06 12 34 56 78",
    "+33 6 12 34 56 78",
    "0612345678",
    "(415) 555-0123",
    "020 7946 0958",
    "jean.dupont@example.fr",
    "a@b.co",
    "%40",
    "%2B33",
    "%20",
    "FR76 3000 6000 0112 3456 7890 189",
    "4970 1012 3456 7893",
    "1 84 12 75 123 456 40",
    "192.168.1.10",
    "2001:db8::1",
    "fe80::",
    "::",
    ":",
    "born on ",
    "né le ",
    "12/03/1985",
    "3 mars 1985",
    "M. ",
    "Mme ",
    "Dr ",
    "Hello ",
    "Thanks, ",
    "Cordialement,\n",
    "Jean",
    "Dupont",
    "DUPONT",
    "Marie-Claire",
    "Kevin",
    "Will",
    "de ",
    "le ",
    "<PERSON>",
    "<PHONE>",
    "<EMAIL>",
    "<",
    ">",
    " ",
    "  ",
    "\n",
    ",",
    ".",
    "-",
    "/",
    "#",
    "n° ",
    "order ",
    "€",
    "7",
    "42",
    "2A",
    "é",
    "’s",
    "'",
    "(",
    ")",
    "+",
    "00",
    "v",
];

fn pieces() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(PIECES), 0..12).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn pii_invariants_on_arbitrary_text(text in any::<String>()) {
        check_invariants(&text)?;
    }

    #[test]
    fn pii_invariants_on_pii_like_text(text in pieces()) {
        check_invariants(&text)?;
    }

    #[test]
    fn pii_invariants_on_mixed_text(a in pieces(), b in "[ -~àéè’\n]{0,20}", c in pieces()) {
        check_invariants(&format!("{a}{b}{c}"))?;
    }
}
