"""Figures: each public function reads pipeline files and writes exactly one PNG."""

import matplotlib

matplotlib.use("Agg")
