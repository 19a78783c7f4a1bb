"""Beam search's near-ties: where two backends may rightly pick different hypotheses.

NumPy only, so that the TF-free backend check (`legacy_rnn.tools.backend_check`) and the tests
share it.
"""
import numpy as np

# A tie decided by rounding is rare (8 of 200 rows in the worst case seen, an untrained decoder
# on JAX); a misread that kept the scores but changed the words would change nearly every row.
MOST_TIED = 0.1


def tied_rows(ids, scores, expected_ids, expected_scores, atol):
    """Beam search's (batch, time, beam) ids and scores against TF1's: the rows that differ, and
    those of them that do not differ by a tie. A row differs by a tie when, at the first step
    where its words differ, its beams' scores equal TF1's within `atol`: the two searches kept
    hypotheses of the same scores, in another order or with another word of the same score.
    Which of two candidates a fraction of an ulp apart comes first is decided by the last bits,
    which backends round differently (seen on PyTorch). Any other difference is a wrong search."""
    rows = sorted(set(np.argwhere(ids != expected_ids)[:, 0].tolist()))
    untied = []
    for row in rows:
        step = np.argwhere((ids[row] != expected_ids[row]).any(axis=-1))[0, 0]
        if not np.allclose(scores[row, step], expected_scores[row, step], rtol=0, atol=atol):
            untied.append(row)
    return rows, untied
