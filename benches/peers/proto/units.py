"""Issue 14 prototype: opinion units (sentences, then clauses joined by contrast) and the unit
files the tree prototypes embed.  A simple Python equivalent of the Rust splitter
(src/themes/units.rs): good enough to compare clustering candidates, not the reference.

  python units.py airline OUT_DIR     # negative tweets, reason_confidence >= 0.7, not "Can't Tell"
  python units.py laptops OUT_DIR     # SemEval-2014 laptops sentences (one sentence = one row)
  python units.py amazon  OUT_DIR     # Amazon fine foods reviews

Writes OUT_DIR/NAME_units.jsonl: {"vid", "start", "end", "text", ...} (byte offsets are char
offsets here: the data is read as str) and OUT_DIR/NAME_docs.jsonl (one row per verbatim, its
label).  Nothing is written into the project: the data is evaluation-only.
"""
import json, re, sys

import os
SHARED = os.environ.get('SHARED_DATA', '../shared/data')   # run from the repository root
SENT = re.compile(r'(?<=[.!?])\s+|\n+')
CONTRAST = re.compile(r'(?i)(?:,\s*|\s+|;\s*)(?=(?:but|however|although|though|except|yet|whereas|'
                      r'mais|cependant|par contre|sauf que|pourtant)\b)')
MIN_CHARS = 12


def split(text):
    """Spans (start, end) of the units of text: sentences, then contrast clauses; pieces shorter
    than MIN_CHARS join their neighbour; a short text is one unit."""
    spans = []
    pos = 0
    for m in list(SENT.finditer(text)) + [None]:
        end = m.start() if m else len(text)
        nxt = m.end() if m else len(text)
        if text[pos:end].strip():
            s = pos
            for c in CONTRAST.finditer(text, pos, end):
                if c.start() > s:
                    spans.append((s, c.start()))
                    s = c.end()
            spans.append((s, end))
        pos = nxt
    out = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e <= s:
            continue
        if out and (e - s < MIN_CHARS or out[-1][1] - out[-1][0] < MIN_CHARS):
            out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out or [(0, len(text))]


def rows(path):
    with open(path) as f:
        for line in f:
            yield json.loads(line)


def main():
    name, out = sys.argv[1], sys.argv[2]
    docs, units = [], []
    if name == 'airline':
        for r in rows(f'{SHARED}/airline_tweets.jsonl'):
            if r['sentiment'] != 'negative' or r['reason'] in (None, "Can't Tell") \
                    or (r['reason_confidence'] or 0) < 0.7:
                continue
            docs.append({'id': r['id'], 'label': r['reason'], 'airline': r['airline']})
    elif name == 'laptops':
        for r in rows(f'{SHARED}/semeval14_laptops.jsonl'):
            docs.append({'id': r['id'], 'aspect_terms': r.get('aspect_terms', [])})
    elif name == 'amazon':
        for r in rows(f'{SHARED}/amazon_fine_foods.jsonl'):
            docs.append({'id': r['id'], 'label': r.get('label'), 'product_id': r.get('product_id')})
    texts = {r['id']: r['text'] for r in rows(f'{SHARED}/{ {"airline": "airline_tweets", "laptops": "semeval14_laptops", "amazon": "amazon_fine_foods"}[name] }.jsonl')}
    for vi, d in enumerate(docs):
        t = texts[d['id']]
        if name == 'airline':   # the @handle opening a tweet is addressing, not content
            t = re.sub(r'@\w+', lambda m: ' ' * len(m.group()), t)
        for s, e in split(t):
            units.append({'vid': vi, 'start': s, 'end': e, 'text': t[s:e]})
    with open(f'{out}/{name}_docs.jsonl', 'w') as f:
        for d in docs:
            f.write(json.dumps(d) + '\n')
    with open(f'{out}/{name}_units.jsonl', 'w') as f:
        for u in units:
            f.write(json.dumps(u) + '\n')
    print(name, len(docs), 'verbatims', len(units), 'units', file=sys.stderr)


if __name__ == '__main__':
    main()
