"""The seeds' reference numbers (SPEC.md), kept in one place for tables and the scorecard.

These are the published numbers the report compares against -- inputs to comparison, not
results. Sources are named per constant.
"""

#: Seed 003 ("influence of the KL coefficient"), 40 epochs, test set:
#: (c, test loss, reconstruction, KL), nats per sample.
E1_SEED_TABLE = [
    (0.0, 141.54, 141.54, 506.82),
    (0.02, 143.99, 143.38, 30.60),
    (0.1, 142.63, 141.41, 12.22),
    (0.5, 147.36, 143.77, 7.17),
    (1.0, 150.39, 144.17, 6.21),
    (2.0, 156.17, 146.00, 5.09),
    (10.0, 186.47, 161.85, 2.46),
    (20.0, 203.31, 189.72, 0.68),
]
#: Epochs behind :data:`E1_SEED_TABLE`.
E1_SEED_EPOCHS = 40
