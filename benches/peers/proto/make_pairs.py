"""Synthetic 'two things' verbatims for the second-theme rule: concatenate two UCI sentences from
different domains (positives) or the same domain (controls).  Seeded."""
import json, numpy as np
rows = [json.loads(l) for l in open('/tmp/proto/uci.jsonl')]
rng = np.random.default_rng(0)
dom = np.array([r['domain'] for r in rows])
out = []
for kind in ('diff', 'same'):
    for _ in range(500):
        i = int(rng.integers(len(rows)))
        pool = np.where(dom != dom[i])[0] if kind == 'diff' else np.where((dom == dom[i]) & (np.arange(len(rows)) != i))[0]
        j = int(rng.choice(pool))
        out.append(dict(id=f'pair-{kind}-{len(out)}', text=rows[i]['text'].strip() + ' ' + rows[j]['text'].strip(),
                        kind=kind, a=i, b=j, label=f"{dom[i]}+{dom[j]}"))
with open('/tmp/proto/uci_pairs.jsonl', 'w') as f:
    for r in out: f.write(json.dumps(r) + '\n')
print(len(out))
