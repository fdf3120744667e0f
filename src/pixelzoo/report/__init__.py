"""The comparison report: measure runs side by side (``compare``) or train and compare (``quick``)."""

from pixelzoo.report.compare import compare, quick
from pixelzoo.report.measure import KEYS, MeasureConfig

__all__ = ["KEYS", "MeasureConfig", "compare", "quick"]
