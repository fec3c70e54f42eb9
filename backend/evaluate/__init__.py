"""Evaluate: the harness apart from the product. Cycles ground truth (which never imports the renderer it judges),
reference assets, metrics, the forward and relight evaluations and the bench. Nothing in the product imports it."""
