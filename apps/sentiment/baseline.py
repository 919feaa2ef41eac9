"""The classic baseline of the sentiment app: TF-IDF of unigrams and
bigrams, then L2-regularised logistic regression (scikit-learn).

It reads the same tokens as the recurrent models (the `standardize` of
`apps.sentiment.model`, split at whitespace), so the two see the same text.
"""

import numpy as np
import tensorflow as tf

from .model import standardize


def tokenize(texts, chunk=4096):
    """The tokens of each text, as the vectorizer sees them (uncut)."""
    out = []
    for i in range(0, len(texts), chunk):
        batch = standardize(tf.constant(list(texts[i : i + chunk]), tf.string))
        out.extend(t.decode("utf-8", "replace").split() for t in batch.numpy())
    return out


def tfidf_logreg(train_texts, train_labels, test_texts, c=10.0, ngrams=2):
    """Fits on the training texts and returns the test predictions (class
    indices). Needs scikit-learn (``pip install scikit-learn``)."""
    try:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the TF-IDF baseline needs scikit-learn: pip install scikit-learn"
        ) from err
    features = TfidfVectorizer(analyzer=lambda tokens: _ngrams(tokens, ngrams))
    x_train = features.fit_transform(tokenize(train_texts))
    model = LogisticRegression(C=c, max_iter=2000)
    model.fit(x_train, np.asarray(train_labels))
    return model.predict(features.transform(tokenize(test_texts)))


def _ngrams(tokens, n):
    grams = list(tokens)
    for k in range(2, n + 1):
        grams += [" ".join(tokens[i : i + k]) for i in range(len(tokens) - k + 1)]
    return grams
