#!/usr/bin/env python3
"""Calibrates `answer_min_cosine` (ask abstains under it) per embedding model.

Relevant pairs: each French Debian FAQ question against its own section, and 20 English
questions about product / film / restaurant reviews against the UCI sentences (best match).
Irrelevant: the Debian questions against the UCI reviews, and the review questions against the
Debian FAQ (best match). The threshold maximises (relevant kept + irrelevant refused).

  python3 benches/peers/calibrate_ask.py       # needs ../shared/data, numpy, target/release/verbatim

Result (2026-11-29): all-MiniLM-L6-v2 0.385 (85.5% of relevant kept, 97.6% of irrelevant
refused); multilingual-e5-small 0.845 (86.1% / 93.4%). In models/manifest.toml's profiles.
"""
import json, os, subprocess, sys, tempfile
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, '..', 'shared', 'data')
BIN = os.path.join(ROOT, 'target', 'release', 'verbatim')
QS = ['Is the battery life good?', 'How is the sound quality of the headset?', 'Was the food good?',
      'Was the service at the restaurant slow?', 'Is the movie worth watching?', 'How was the acting?',
      'Does the phone break easily?', 'Are the staff friendly?', 'Is the price fair?',
      'Do customers recommend the product?', 'Was the pizza cold?', 'Is the charger reliable?',
      'Did the plot make sense?', 'Is the screen easy to read?', 'How was the customer service?',
      'Was the waiter rude?', 'Is the case well made?', 'Were the actors convincing?',
      'Is the place clean?', 'Did the headset fit comfortably?']


def write(path, texts):
    with open(path, 'w') as f:
        for t in texts:
            f.write(json.dumps({'text': t}) + '\n')


def embed(tmp, name, texts, model, query):
    src = os.path.join(tmp, name + '.jsonl')
    out = os.path.join(tmp, name + '.npy')
    write(src, texts)
    subprocess.run([BIN, 'embed', src, '--out', out, '--model', model, '-q'] + (['--query'] if query else []),
                   check=True)
    return np.load(out)


def main():
    faq = [json.loads(l) for l in open(os.path.join(DATA, 'debian_faq_fr.jsonl'))]
    uci = [json.loads(l)['text'] for l in open(os.path.join(DATA, 'uci_sentiment_sentences.jsonl'))]
    for model in sys.argv[1:] or ['all-MiniLM-L6-v2', 'multilingual-e5-small']:
        with tempfile.TemporaryDirectory() as tmp:
            q = embed(tmp, 'q', [r['question'] for r in faq], model, True)
            s = embed(tmp, 's', [r['text'] for r in faq], model, False)
            uq = embed(tmp, 'uq', QS, model, True)
            u = embed(tmp, 'u', uci, model, False)
        rel = np.concatenate([(q * s).sum(1), (uq @ u.T).max(1)])
        irr = np.concatenate([(q @ u.T).max(1), (uq @ s.T).max(1)])
        t = max(np.arange(0.1, 0.95, 0.005), key=lambda t: (rel >= t).mean() + (irr < t).mean())
        print(json.dumps(dict(model=model, answer_min_cosine=round(float(t), 3),
                              relevant_kept=round(float((rel >= t).mean()), 3),
                              irrelevant_refused=round(float((irr < t).mean()), 3))))


if __name__ == '__main__':
    main()
