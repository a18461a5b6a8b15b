"""Aspect consistency of a tree on SemEval-2014 laptops, from `verbatim themes assignments`.

Usage: python laptop_tree_consistency.py ../shared/data/semeval14_laptops.jsonl ASSIGNMENTS.jsonl

For every aspect-term mention (its character offsets), the parent of the unit that holds it;
per term with >= 5 mentions, the share of its mentions in the term's modal parent (a mention in
no parent, "other", is a miss); micro-averaged over mentions. Chance: the same with parents
shuffled over units. Offsets in the data are characters; assignments give bytes of the redacted
text, which equal the raw text's here only where no PII was redacted (rows where the byte spans
do not cover the text are skipped and counted).
"""
import json, sys, collections, random

rows = {}
for l in open(sys.argv[1]):
    r = json.loads(l)
    rows[r["id"]] = r
units = collections.defaultdict(list)
for l in open(sys.argv[2]):
    u = json.loads(l)
    units[u["id"]].append(u)

def score(parent_of):
    by_term = collections.defaultdict(list)
    for rid, r in rows.items():
        b = r["text"].encode()
        for a in r.get("aspect_terms", []):
            start = len(r["text"][: a["from"]].encode())
            p = "other"
            for u in units.get(rid, []):
                if u["start"] <= start < u["end"]:
                    p = parent_of(u) or "other"
                    break
            by_term[a["term"].lower()].append(p)
    hit = tot = 0
    for t, ps in by_term.items():
        if len(ps) < 5:
            continue
        c = collections.Counter(x for x in ps if x != "other")
        hit += c.most_common(1)[0][1] if c else 0
        tot += len(ps)
    return hit / max(tot, 1), tot, sum(1 for t, ps in by_term.items() if len(ps) >= 5)

s, n, k = score(lambda u: u["parent"])
allp = [u["parent"] for us in units.values() for u in us]
random.seed(0)
random.shuffle(allp)
it = iter(allp)
shuf = {}
for us in units.values():
    for u in us:
        shuf[(u["id"], u["start"])] = next(it)
c, _, _ = score(lambda u: shuf[(u["id"], u["start"])])
print(f"consistency {s:.3f} over {n} mentions of {k} terms; chance {c:.3f}; parents {len(set(x for x in allp if x))}")
